# `scripts/check.sh gpu [spec ...]` (sourced by it: $root, need_packages, normal_build, die).
# Runs the specs of tests/gpu/ (small sizes, every kernel family) on oclgrind's simulated
# GPU, so moonflow builds its kernels without MF_CPU (the GPU loop shapes, CLBlast gemm).
# `oclgrind` replaces the OpenCL loader for the command it runs, so its device is the
# only one there; MOONFLOW_DEVICE=Oclgrind makes the choice explicit anyway.
#   pass 1 (fails the mode): memcheck (always on) + --data-races; every line oclgrind
#          logs is a diagnostic, and every spec must pass.
#   pass 2 (advisory): --uninitialized; reported, never fails the mode (the plugin
#          reports spurious uninitialized values around LLVM's `freeze` instruction).
# -cl-opt-disable: oclgrind 21.10 cannot execute the intrinsics LLVM 15's optimizer emits
# (`Undefined external function: llvm.abs.i32` for un_abs_i32, `freeze`); unoptimized
# kernels keep every access of the source, which is what memcheck should see anyway.
need_packages oclgrind
normal_build
work="$build/check-gpu"
rm -rf "$work"
mkdir -p "$work"
specs=("$@")
if [ "${#specs[@]}" -eq 0 ]; then
  for f in "$root"/tests/gpu/*_spec.lua; do specs+=("$f"); done
fi
export MOONFLOW_BUILD="$build" MOONFLOW_ROOT="$root" MOONFLOW_DEVICE=Oclgrind

# self-test: oclgrind must report the canary's out-of-bounds write and its data race
gcc -O1 -o "$work/canary" "$root/tests/gpu/canary.c" -lOpenCL || die "gpu: the canary did not build"
oclgrind --build-options -cl-opt-disable --data-races --log "$work/canary.log" "$work/canary" >/dev/null 2>&1 || true
if ! grep -q '^Invalid write' "$work/canary.log" || ! grep -q 'data race' "$work/canary.log"; then
  die "gpu: oclgrind did not report the canary's bugs (see $work/canary.log); its verdicts cannot be trusted"
fi

# moonflow's program as cmake/embed.cmake concatenates it: maps "input.cl" lines to cl/ files
for f in "$root/cl/common.cl" $(ls "$root"/cl/*.cl | grep -v '/common\.cl$' | LC_ALL=C sort); do
  printf '/* ---- %s ---- */\n' "$f"
  cat "$f"
  printf '\n'
done >"$work/program.cl"

# run_one <pass> <spec>: one oclgrind process per spec, its log beside the output
run_one() {
  local pass="$1" spec="$2" name opts
  name="$(basename "$spec" .lua)"
  if [ "$pass" = races ]; then opts=(--data-races); else opts=(--uninitialized); fi
  timeout "${GPU_TIMEOUT:-600}" oclgrind --build-options -cl-opt-disable "${opts[@]}" --max-errors 50 \
    --log "$work/$pass-$name.log" lua5.4 "$root/tests/run_busted.lua" "$spec" >"$work/$pass-$name.out" 2>&1
  echo $? >"$work/$pass-$name.rc"
}
export -f run_one
export work root

start=$(date +%s)
printf '%s\n' "${specs[@]}" | xargs -P "${GPU_JOBS:-2}" -I{} bash -c 'run_one races "$1"' _ {}
echo "check.sh gpu: pass 1 (memcheck + data races): $(($(date +%s) - start)) s" >&2
status=0
for spec in "${specs[@]}"; do
  name="$(basename "$spec" .lua)"
  rc="$(cat "$work/races-$name.rc")"
  n=$(grep -cE '^(Invalid|Read-write|Write-write|Uninitialized|Work-group|Work-item|Barrier|Atomic|OCLGRIND|Unaligned|Division|Undefined|Unsupported|Error|Warning)' "$work/races-$name.log" 2>/dev/null || true)
  result="$(grep -E 'successes? / ' "$work/races-$name.out" | tail -n 1)"
  printf '%-28s rc=%-3s diagnostics=%-3s %s\n' "$name" "$rc" "${n:-0}" "$result"
  if [ "$rc" != 0 ] || [ -s "$work/races-$name.log" ]; then
    status=1
    grep -E -A1 '^(Failure|Error) ->' "$work/races-$name.out" | head -n 20 || true
    # one block per distinct diagnostic: what, kernel, source line (and its cl/ file)
    awk -f "$root/tests/gpu/diagnostics.awk" "$work/races-$name.log" |
      awk -f "$root/tests/gpu/srcmap.awk" "$work/program.cl" - | head -n 80
  fi
done

if [ "${GPU_UNINITIALIZED:-1}" = 1 ]; then
  start=$(date +%s)
  printf '%s\n' "${specs[@]}" | xargs -P "${GPU_JOBS:-2}" -I{} bash -c 'run_one uninit "$1"' _ {}
  echo "check.sh gpu: pass 2 (--uninitialized, advisory): $(($(date +%s) - start)) s" >&2
  for spec in "${specs[@]}"; do
    name="$(basename "$spec" .lua)"
    n=$(grep -cE '^Uninitialized' "$work/uninit-$name.log" 2>/dev/null || true)
    f=$(grep -c 'Unsupported instruction' "$work/uninit-$name.log" 2>/dev/null || true)
    printf '%-28s uninitialized=%-4s unsupported-instruction=%s (advisory; %s)\n' "$name" "${n:-0}" "${f:-0}" \
      "$work/uninit-$name.log"
  done
fi
if [ "$status" -ne 0 ]; then
  echo "check.sh gpu: FINDINGS (logs in $work; rerun one: bash scripts/check.sh gpu tests/gpu/<name>.lua)" >&2
  exit 1
fi
echo "check.sh gpu: clean" >&2
