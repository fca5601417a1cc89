#!/usr/bin/env bash
# One fuzz job of `scripts/check.sh fuzz`, watched from outside:
#   supervise.sh lua <loader> <count> <seed> <workdir>       tests/fuzz/fuzz.lua on a loader
#   supervise.sh libfuzzer <binary> <count> <seed> <workdir>  a harness of tests/fuzz/harness
# A Lua worker that dies (signal, abort, exit without finishing) is a crash at the input
# its trace names last; one whose trace stops moving for HANG_WALL seconds is killed
# and counted as a hang. Each is saved and the worker restarts after that input.
# Writes <workdir>/summary: "inputs crashes hangs" plus the worker's stats lines.
set -uo pipefail
kind="$1" what="$2" count="$3" seed="$4" work="$5"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HANG_WALL="${FUZZ_HANG_WALL:-60}"
# address space of one Lua worker: moonflow + PoCL take ~0.5 GiB of mappings; 2 GiB
# more lets a 1 MiB input use its MEM_PER_BYTE budget while a bomb hits the limit
AS_KB="${FUZZ_AS_KB:-$((2560 * 1024))}"
rm -rf "$work"
mkdir -p "$work"
crashes=0 hangs=0

if [ "$kind" = libfuzzer ]; then
  corpus="$work/corpus"
  mkdir -p "$corpus" "$work/artifacts"
  cp "$here/corpus/$(basename "$what" | sed 's/^fuzz_//')"/* "$corpus/"
  # per-input: 10 s; memory: 256 MiB per malloc, 1 GiB RSS (inputs are at most 64 KiB);
  # libFuzzer stops at its first finding (crash-*, oom-*, leak-*, timeout-* in artifacts/)
  "$what" -runs="$count" -seed="$seed" -max_len=65536 -timeout=10 -rss_limit_mb=1024 \
    -malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$corpus" >"$work/log" 2>&1
  rc=$?
  inputs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/log" | grep -oE '[0-9]+$' || echo 0)
  peak=$(grep -oE 'stat::peak_rss_mb: *[0-9]+' "$work/log" | grep -oE '[0-9]+$' || echo 0)
  crashes=$(ls "$work/artifacts" | grep -cE '^(crash|oom|leak)-' || true)
  hangs=$(ls "$work/artifacts" | grep -cE '^timeout-' || true)
  if [ "$rc" -ne 0 ] && [ $((crashes + hangs)) -eq 0 ]; then crashes=1; fi
  echo "inputs=${inputs:-0} crashes=$crashes hangs=$hangs peak_rss_mb=${peak:-0}" >"$work/summary"
  grep -E '^==[0-9]+==ERROR|runtime error|SUMMARY|out-of-memory|Test unit written' "$work/log" \
    >"$work/findings.txt" || true
  exit 0
fi

: >"$work/trace"
: >"$work/findings.txt"
next=1
while [ "$next" -le "$count" ]; do
  (ulimit -v "$AS_KB"; exec lua5.4 "$here/fuzz.lua" run "$what" "$next" $((count - next + 1)) "$seed" "$work") \
    2>>"$work/stderr" &
  pid=$!
  hung=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    age=$(($(date +%s) - $(stat -c %Y "$work/trace")))
    if [ "$age" -gt "$HANG_WALL" ]; then
      kill -9 "$pid" 2>/dev/null
      hung=1
    fi
  done
  wait "$pid"
  rc=$?
  last="$(tail -n 1 "$work/trace")"
  [ "$last" = done ] && break
  if ! [[ "$last" =~ ^[0-9]+$ ]]; then # died before its first input
    echo "crash before any input (exit $rc): $(tail -n 3 "$work/stderr" | tr '\n' ' ')" >>"$work/findings.txt"
    crashes=$((crashes + 1))
    break
  fi
  if [ "$hung" -eq 1 ]; then
    hangs=$((hangs + 1))
    cp "$work/cur.bin" "$work/finding-hang-$last.bin"
    echo "hang input $last: no progress for ${HANG_WALL}s (killed)" >>"$work/findings.txt"
  else
    crashes=$((crashes + 1))
    cp "$work/cur.bin" "$work/finding-crash-$last.bin"
    echo "crash input $last: exit status $rc: $(tail -n 3 "$work/stderr" | tr '\n' ' ')" >>"$work/findings.txt"
  fi
  next=$((last + 1))
done
inputs=$(grep -cE '^[0-9]+$' "$work/trace")
echo "inputs=$inputs crashes=$crashes hangs=$hangs" >"$work/summary"
cat "$work"/stats.* >>"$work/summary" 2>/dev/null || true
