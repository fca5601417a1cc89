#!/bin/sh
# The embedded kernel source compiles with no warning under clang-15 -Wall
# -Wextra, for each of the four builds the runtime makes (MF_FP64, MF_CPU).
# Usage: kernel_warnings.sh build/generated/kernels_all.cl  (exit 77: skipped)
src="$1"
cc="${MOONFLOW_CLANG:-clang-15}"
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "skipped: $cc not found (it comes with pocl-opencl-icd)"
  exit 77
fi
[ -f "$src" ] || { echo "no kernel source at $src"; exit 1; }
rc=0
for defs in "" "-DMF_FP64" "-DMF_CPU" "-DMF_FP64 -DMF_CPU"; do
  # shellcheck disable=SC2086
  if ! "$cc" -x cl -cl-std=CL1.2 -Xclang -finclude-default-header -fsyntax-only -ferror-limit=0 \
      -Wall -Wextra -Werror $defs "$src" 2>"${TMPDIR:-/tmp}/mf_kernel_warnings.$$"; then
    echo "kernel source with [${defs:-no defines}]: $(grep -c 'error:' "${TMPDIR:-/tmp}/mf_kernel_warnings.$$") diagnostics"
    head -n 40 "${TMPDIR:-/tmp}/mf_kernel_warnings.$$"
    rc=1
  fi
done
rm -f "${TMPDIR:-/tmp}/mf_kernel_warnings.$$"
[ $rc -eq 0 ] && echo "kernel source: no warnings in the four builds"
exit $rc
