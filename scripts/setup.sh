#!/usr/bin/env bash
# Installs the Debian packages moonflow needs (when missing) and builds it.
# Idempotent: a second run with nothing changed only checks and returns.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(lua5.4 liblua5.4-dev lua-busted libclblast-dev ocl-icd-opencl-dev opencl-headers
  pocl-opencl-icd cmake gcc make libpng-dev zlib1g-dev libzip-dev pkg-config libreadline-dev tmux
  dataset-fashion-mnist liblapacke-dev libopenmpi-dev openmpi-bin
  libopenblas0-pthread) # the host gemm of big CPU products (src/blas_host.c, opened at run time)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    echo "moonflow setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -y -qq install "${missing[@]}" >/dev/null
  else
    echo "moonflow setup: missing packages; run as root:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get -y install ${missing[*]}" >&2
    exit 1
  fi
fi

build="${MOONFLOW_BUILD:-$root/build}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j"$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\]|^(Consolidate|Scanning|Built target)|^-- ' || true
test -f "$build/lua/moonflow/core.so" || { echo "moonflow setup: build failed" >&2; exit 1; }
