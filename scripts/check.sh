#!/usr/bin/env bash
# Deep checks beyond the test suite; each mode installs and builds what it needs.
#   bash scripts/check.sh sanitize   every busted spec and C test under ASan + UBSan + LSan
#                                    (build-sanitize; tests/sanitize/run.sh)            ~3 min
#   bash scripts/check.sh gpu [spec] tests/gpu/*_spec.lua on oclgrind's simulated GPU: the GPU
#                                    and the CPU loop shapes under memcheck and data-race
#                                    detection, --uninitialized advisory (tests/gpu/run.sh) ~3 min
#   bash scripts/check.sh fuzz [N]   N mutated inputs for EACH of the six Lua loaders and N runs
#                                    of each libFuzzer harness (default 10000: ~30 s here;
#                                    1000000 for a long run; tests/fuzz/run.sh)
# Each mode first checks itself on a planted bug (a canary) where it can.
# Exit status: 0 when nothing was found, 1 on any finding, 2 on a usage or setup error.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-}"
shift || true

die() { echo "check.sh: $*" >&2; exit 2; }

# Debian packages beyond scripts/setup.sh's, installed the same way when missing
need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "check.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -y -qq install "${missing[@]}" >/dev/null
  else
    die "missing packages; run: sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get -y install ${missing[*]}"
  fi
}

# the Release build of scripts/setup.sh (packages of setup.sh included)
normal_build() {
  "$root/scripts/setup.sh" >&2
  build="${MOONFLOW_BUILD:-$root/build}"
}

case "$mode" in
  sanitize) source "$root/tests/sanitize/run.sh" ;;
  gpu) source "$root/tests/gpu/run.sh" ;;
  fuzz) source "$root/tests/fuzz/run.sh" ;;
  *) die "usage: bash scripts/check.sh sanitize | gpu | fuzz [count]" ;;
esac
