# `scripts/check.sh gpu [spec ...]` (sourced by it: $root, need_packages, normal_build, die).
# Runs the specs of tests/gpu/ (small sizes, every kernel family) on oclgrind's simulated
# GPU, so moonflow builds its kernels without MF_CPU (the GPU loop shapes, CLBlast gemm).
# `oclgrind` replaces the OpenCL loader for the command it runs, so its device is the
# only one there; MOONFLOW_DEVICE=Oclgrind makes the choice explicit anyway.
#   pass 1 (fails the mode): memcheck (always on) + --data-races; every line oclgrind
#          logs is a diagnostic, and every spec must pass.
#   pass 2 (fails the mode): the same with the kernels built with -DMF_CPU, i.e. the
#          CPU loop shapes (PoCL's), under memcheck and --data-races as well.
#   pass 3 (advisory): --uninitialized; reported, never fails the mode (the plugin
#          reports spurious uninitialized values around LLVM's `freeze` instruction;
#          with -cl-opt-disable there is no `freeze`, and it has reported nothing so far).
# --num-threads 1: oclgrind 21.10's --inst-counts plugin (the coverage report) crashes
# with "double free or corruption" under its default worker threads; two specs run at
# once instead.
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

# moonflow's program, the very text the library embeds (cmake/embed.cmake writes it
# beside the C string, each file after a #line marker): maps line numbers to cl/ files
cp "$build/generated/kernels_all.cl" "$work/program.cl" || die "gpu: no $build/generated/kernels_all.cl"
# its kernels as a GPU device builds them (src/runtime.c: no -DMF_CPU; fp64 on oclgrind)
oclgrind "$work/canary" "$work/program.cl" "-cl-std=CL1.2 -DMF_FP64" | sort -u >"$work/kernels.all" ||
  die "gpu: oclgrind could not build moonflow's program (see $work)"

# run_one <pass> <spec>: one oclgrind process per spec, its log beside the output.
# Passes: races (the GPU shapes: memcheck, --data-races, --inst-counts for coverage),
# cpu (the same with -DMF_CPU: the CPU loop shapes PoCL runs, memchecked here although
# the host launches them with a GPU's grid), uninit (--uninitialized, advisory).
run_one() {
  local pass="$1" spec="$2" name opts build_opts=-cl-opt-disable
  name="$(basename "$spec" .lua)"
  case "$pass" in
    races) opts=(--data-races --inst-counts) ;;
    cpu) opts=(--data-races) build_opts="-cl-opt-disable -DMF_CPU" ;;
    uninit) opts=(--uninitialized) ;;
  esac
  timeout "${GPU_TIMEOUT:-600}" oclgrind --num-threads 1 --build-options "$build_opts" "${opts[@]}" \
    --max-errors 50 --log "$work/$pass-$name.log" lua5.4 "$root/tests/run_busted.lua" "$spec" \
    >"$work/$pass-$name.out" 2>&1
  echo $? >"$work/$pass-$name.rc"
}
export -f run_one
export work root

# check_pass <pass> <title>: runs every spec, two at a time; a failed spec or any line in
# oclgrind's log fails the mode, with each distinct diagnostic shown once
status=0
check_pass() {
  local pass="$1" start name rc n result
  start=$(date +%s)
  printf '%s\n' "${specs[@]}" | xargs -P "${GPU_JOBS:-2}" -I{} bash -c 'run_one "$0" "$1"' "$pass" {}
  echo "check.sh gpu: $2: $(($(date +%s) - start)) s" >&2
  for spec in "${specs[@]}"; do
    name="$(basename "$spec" .lua)"
    rc="$(cat "$work/$pass-$name.rc")"
    n=$(grep -cE '^(Invalid|Read-write|Write-write|Uninitialized|Work-group|Work-item|Barrier|Atomic|OCLGRIND|Unaligned|Division|Undefined|Unsupported|Error|Warning)' "$work/$pass-$name.log" 2>/dev/null || true)
    result="$(grep -E 'successes? / ' "$work/$pass-$name.out" | tail -n 1 || true)"
    printf '  %-24s rc=%-3s diagnostics=%-3s %s\n' "$name" "$rc" "${n:-0}" "$result"
    if [ "$rc" != 0 ] || [ -s "$work/$pass-$name.log" ]; then
      status=1
      grep -E -A1 '^(Failure|Error) ->' "$work/$pass-$name.out" | head -n 20 || true
      awk -f "$root/tests/gpu/diagnostics.awk" "$work/$pass-$name.log" |
        awk -f "$root/tests/gpu/srcmap.awk" "$work/program.cl" - | head -n 80
    fi
  done
}
check_pass races "pass 1, GPU loop shapes (memcheck + data races)"
check_pass cpu "pass 2, CPU loop shapes (-DMF_CPU; memcheck + data races)"

# coverage: kernels that ran in pass 1, per family (file of cl/); a family with none fails
cat "$work"/races-*.out | grep -oE "Instructions executed for kernel '[A-Za-z0-9_]+'" |
  sed -E "s/.*'(.*)'/\1/" | sort -u >"$work/kernels.ran"
echo "check.sh gpu: $(wc -l <"$work/kernels.ran") of $(wc -l <"$work/kernels.all") kernels ran" >&2
family() { grep -oE "^(${2})" "$work/$1" | wc -l; }
for fam in "elementwise:un_|bin_|bins_|where_|clamp_|fill_|arange_|copy_" "reduce:red_|redc_" "random:rand_" \
  "diffusion:diff_|rf_" "optim:optim_" "nn:nn_|nnwg_|lnm_" "softmax:sm_|smwg_" "attention:at_" "index:gather_|index_|scatter_" "sampler:smp_|oracle_" \
  "data:toy2d" "metrics:pair_dist"; do
  ran=$(family kernels.ran "${fam#*:}") all=$(family kernels.all "${fam#*:}")
  printf '  %-12s %3d of %3d kernels ran\n' "${fam%%:*}" "$ran" "$all"
  if [ "$ran" -eq 0 ]; then echo "check.sh gpu: no ${fam%%:*} kernel ran" >&2; status=1; fi
done
printf '  %-12s %3d CLBlast kernels ran (src/blas.c uses CLBlast on GPU devices)\n' gemm \
  "$(cat "$work"/races-*.out | grep -oE "Instructions executed for kernel 'X[a-zA-Z]+'" | sort -u | wc -l)"
comm -23 "$work/kernels.all" "$work/kernels.ran" >"$work/kernels.never"
echo "  never run (list in $work/kernels.never): $(wc -l <"$work/kernels.never")"

if [ "${GPU_UNINITIALIZED:-1}" = 1 ]; then
  start=$(date +%s)
  printf '%s\n' "${specs[@]}" | xargs -P "${GPU_JOBS:-2}" -I{} bash -c 'run_one uninit "$1"' _ {}
  echo "check.sh gpu: pass 3 (GPU loop shapes, --uninitialized, advisory): $(($(date +%s) - start)) s" >&2
  for spec in "${specs[@]}"; do
    name="$(basename "$spec" .lua)"
    n=$(grep -cE '^Uninitialized' "$work/uninit-$name.log" 2>/dev/null || true)
    f=$(grep -c 'Unsupported instruction' "$work/uninit-$name.log" 2>/dev/null || true)
    printf '  %-24s uninitialized=%-4s unsupported-instruction=%s (advisory; %s)\n' "$name" "${n:-0}" "${f:-0}" \
      "$work/uninit-$name.log"
  done
fi
if [ "$status" -ne 0 ]; then
  echo "check.sh gpu: FINDINGS (logs in $work; rerun one: bash scripts/check.sh gpu tests/gpu/<name>.lua)" >&2
  exit 1
fi
echo "check.sh gpu: clean" >&2
