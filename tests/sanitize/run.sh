# `scripts/check.sh sanitize` (sourced by it: $root, need_packages, normal_build, die).
# Builds build-sanitize (MOONFLOW_SANITIZE=ON: -fsanitize=address,undefined on the C
# core, the Lua module and the C tests) and runs the whole ctest suite under it.
#
# What makes the stock lua5.4 work under ASan here (found by trying):
# - LD_PRELOAD=libasan: the ASan runtime must be the first library loaded; UBSan's
#   runtime (libubsan) comes in as an ordinary dependency of core.so.
# - LD_PRELOAD also holds core.so itself: lua_close() dlcloses C modules at exit,
#   before LeakSanitizer runs, so every allocation reachable only from moonflow's
#   statics (the runtime, PoCL's context behind it) became a "leak" with an
#   <unknown module> stack. Preloaded, the module stays mapped and its roots count.
# - PoCL links kernels by running ld as a child, which inherits LD_PRELOAD and leaks
#   at exit (by design): suppressed in tests/sanitize/lsan.supp, as are PoCL's,
#   LLVM's, the ICD loader's and CLBlast's process-lifetime allocations.
# - protect_shadow_gap=0 is not needed with PoCL's pthread device on this machine
#   (PoCL 3.1 / LLVM 15); detect_leaks=1 works with the defaults otherwise.
need_packages gcc libasan8 libubsan1
normal_build
san="${MOONFLOW_SANITIZE_BUILD:-$root/build-sanitize}"
if [ ! -f "$san/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$san" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOONFLOW_SANITIZE=ON >/dev/null
fi
cmake --build "$san" -j"$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\]|^(Consolidate|Scanning|Built target)' || true
test -f "$san/lua/moonflow/core.so" || die "sanitize build failed"

libasan="$(readlink -f "$(gcc -print-file-name=libasan.so)")"
[ -f "$libasan" ] || die "libasan not found (gcc -print-file-name=libasan.so)"
log="$san/sanitize.log"
# intercept_tls_get_addr=0: LSan's scan of dynamic TLS (GCC 12's runtime) crashes on a
# bogus DTLS range some runs leave (tensor_random_spec: "Tracer caught signal 11" after
# every test passed); without the interception DTLS is not a root, which can only add
# leak reports, never hide one
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1:check_initialization_order=1:intercept_tls_get_addr=0"
export LSAN_OPTIONS="suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# self-test first: the canary module's leak and overflow must both be reported
mkdir -p "$san/canary"
gcc -shared -fPIC -g -fsanitize=address,undefined -fno-omit-frame-pointer -I/usr/include/lua5.4 \
  -o "$san/canary/canary.so" "$root/tests/sanitize/canary.c" || die "sanitize: the canary did not build"
for f in leak overflow; do
  LD_PRELOAD="$libasan $san/lua/moonflow/core.so" lua5.4 \
    -e "package.cpath = '$san/canary/?.so;' .. package.cpath; require('canary').$f()" >"$san/canary/$f.log" 2>&1 || true
done
grep -q 'ERROR: LeakSanitizer' "$san/canary/leak.log" && grep -q 'heap-buffer-overflow' "$san/canary/overflow.log" ||
  die "sanitize: the canary's leak or overflow went unreported (see $san/canary); the setup cannot be trusted"

jobs="${MOONFLOW_TEST_JOBS:-2}"
status=0
echo "check.sh sanitize: busted specs (log: $log)" >&2
(cd "$san" && LD_PRELOAD="$libasan $san/lua/moonflow/core.so" \
  ctest -j"$jobs" -E '^test_' --output-on-failure --timeout 1800 "$@") >"$log" 2>&1 || status=1
echo "check.sh sanitize: C tests" >&2
(cd "$san" && ctest -R '^test_' --output-on-failure --timeout 1800 "$@") >>"$log" 2>&1 || status=1
grep -E 'Test +#' "$log" | grep -vE 'Passed' || true
grep -E 'tests passed' "$log" || true
# a report inside a child process that a spec tolerated still counts
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
  echo "check.sh sanitize: sanitizer reports:" >&2
  grep -nE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY:' "$log" | head -40 >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "check.sh sanitize: FAILED (full output in $log)" >&2
  exit 1
fi
echo "check.sh sanitize: clean" >&2
