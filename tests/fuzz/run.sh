# `scripts/check.sh fuzz [N]` (sourced by it: $root, need_packages, normal_build, die).
# N mutated inputs per loader (default 10000) for each of the six Lua loaders
# (tests/fuzz/fuzz.lua: safetensors, checkpoint with targets, npy, IDX, gzip, JSON) and N
# runs of each libFuzzer harness (tests/fuzz/harness: gzip, decode, png under ASan +
# UBSan), two jobs at a time. FUZZ_SEED picks another input stream (default 1).
count="${1:-10000}"
[[ "$count" =~ ^[0-9]+$ ]] || die "fuzz: the count must be a number, got $count"
seed="${FUZZ_SEED:-1}"
need_packages clang-15 libclang-common-15-dev
normal_build
fz="${MOONFLOW_FUZZ_BUILD:-$root/build-fuzz}"
if [ ! -f "$fz/CMakeCache.txt" ]; then
  CC=clang-15 cmake -S "$root" -B "$fz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOONFLOW_FUZZ=ON >/dev/null
fi
harnesses=(fuzz_gzip fuzz_decode fuzz_png)
cmake --build "$fz" -j"$(nproc)" --target "${harnesses[@]}" 2>&1 | grep -E 'error|warning' || true
for h in "${harnesses[@]}"; do [ -x "$fz/fuzz/$h" ] || die "fuzz: $h did not build"; done
[ -d "$root/tests/fuzz/corpus/json" ] ||
  MOONFLOW_ROOT="$root" MOONFLOW_BUILD="$build" lua5.4 "$root/tests/fuzz/gen_corpus.lua"

export MOONFLOW_ROOT="$root" MOONFLOW_BUILD="$build"
export ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
work="$fz/work"
loaders=(safetensors checkpoint npy idx gzip json)
jobs=()
for l in "${loaders[@]}"; do jobs+=("lua $l $count $seed $work/$l"); done
for h in "${harnesses[@]}"; do jobs+=("libfuzzer $fz/fuzz/$h $count $seed $work/$h"); done
echo "check.sh fuzz: $count inputs for each of ${#loaders[@]} loaders and ${#harnesses[@]} harnesses (seed $seed, work $work)" >&2
start=$(date +%s)
printf '%s\n' "${jobs[@]}" | xargs -P "${FUZZ_JOBS:-2}" -L 1 bash "$root/tests/fuzz/supervise.sh"
echo "check.sh fuzz: $(($(date +%s) - start)) s" >&2

# one line per loader; every count but inputs, accepted and rejected is a finding
status=0
printf '%-12s %8s %8s %8s %7s %5s %6s %7s %7s %12s %10s\n' loader inputs accepted rejected crashes hangs memory unclear garbage 'max+RSS KiB' 'RSS KiB'
for l in "${loaders[@]}"; do
  s="$work/$l/summary"
  [ -f "$s" ] || { echo "$l: no summary" >&2; status=1; continue; }
  sum() { grep -oE "(^| )$1=[0-9]+" "$s" | grep -oE '[0-9]+' | awk '{t += $1} END {print t + 0}'; }
  max() { grep -oE "(^| )$1=[0-9]+" "$s" | grep -oE '[0-9]+' | awk '$1 > m {m = $1} END {print m + 0}'; }
  printf '%-12s %8s %8s %8s %7s %5s %6s %7s %7s %12s %10s\n' "$l" "$(sum inputs)" "$(sum accepted)" \
    "$(sum rejected)" "$(sum crashes)" "$(sum hangs)" "$(sum memory)" "$(sum unclear)" "$(sum garbage)" \
    "$(max peak_kb)" "$(max rss_kb)"
  bad=$(($(sum crashes) + $(sum hangs) + $(sum memory) + $(sum unclear) + $(sum garbage)))
  [ "$bad" -eq 0 ] || status=1
done
for h in "${harnesses[@]}"; do
  s="$work/$h/summary"
  [ -f "$s" ] || { echo "$h: no summary" >&2; status=1; continue; }
  printf '%-12s %s\n' "${h#fuzz_}(C)" "$(cat "$s")"
  grep -qE 'crashes=0 hangs=0' "$s" || status=1
done
for d in "${loaders[@]}"; do
  if [ -s "$work/$d/findings.txt" ]; then
    echo "--- $d findings (inputs saved in $work/$d; reproduce input I with"
    echo "    MOONFLOW_ROOT=. MOONFLOW_BUILD=build lua5.4 tests/fuzz/fuzz.lua make $d I $seed x.bin"
    echo "    MOONFLOW_ROOT=. MOONFLOW_BUILD=build lua5.4 tests/fuzz/fuzz.lua replay $d x.bin):"
    head -n 20 "$work/$d/findings.txt"
  fi
done
for h in "${harnesses[@]}"; do
  if [ -s "$work/$h/findings.txt" ]; then
    echo "--- $h findings (reproduce: $fz/fuzz/$h $work/$h/artifacts/<file>):"
    head -n 20 "$work/$h/findings.txt"
    ls "$work/$h/artifacts"
  fi
done
if [ "$status" -ne 0 ]; then
  echo "check.sh fuzz: FINDINGS (details above and in $work)" >&2
  exit 1
fi
echo "check.sh fuzz: clean" >&2
