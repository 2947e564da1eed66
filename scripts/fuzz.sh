#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UndefinedBehaviorSanitizer) into
# build-fuzz/ and runs each for SECONDS on a scratch copy of its seed corpus (fuzz/corpus/<name>;
# the committed corpus never grows), as many at a time as there are cores. Prints a table and
# exits non-zero when any target found a crash, leak, timeout or out-of-memory; the inputs that
# did so are kept in the findings directory.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 30 s, every fuzz/fuzz_<name>.cpp
#
# Environment: PALETTE_FUZZ_BUILD (build-fuzz), PALETTE_FUZZ_FINDINGS (<build>/findings),
# PALETTE_FUZZ_JOBS (nproc). A finding replays with: build-fuzz/fuzz/fuzz_<name> <file>
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=30
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do
    n=${f#fuzz/fuzz_}
    targets+=("${n%.cpp}")
  done
fi
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_$t.cpp" ] || { echo "fuzz: no target '$t' (fuzz/fuzz_$t.cpp)" >&2; exit 2; }
done

build=${PALETTE_FUZZ_BUILD:-build-fuzz}
findings=${PALETTE_FUZZ_FINDINGS:-$build/findings}
jobs=${PALETTE_FUZZ_JOBS:-$(nproc)}

scripts/setup.sh fuzz
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# The configuration of scripts/sanitize.sh (with clang): one build serves both, and a
# build-fuzz/ that sanitize.sh left has nothing to rebuild here.
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DPALETTE_CUDA=OFF -DPALETTE_SANITIZE=ON \
  -DPALETTE_FUZZ=ON -DPALETTE_BUILD_TESTS=ON -DPALETTE_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target "${targets[@]/#/fuzz_}"

# Per target: longest input libFuzzer may make, and the dictionary (fuzz/dict).
max_len() {
  case $1 in
    sniff) echo 1024 ;;
    *) echo 16384 ;;
  esac
}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/palette-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
dict_for() {
  case $1 in
    jpeg_dc | jpeg) echo fuzz/dict/jpeg.dict ;;
    sniff | decode)
      cat fuzz/dict/*.dict >"$scratch/all.dict"
      echo "$scratch/all.dict"
      ;;
    *) [ -f "fuzz/dict/$1.dict" ] && echo "fuzz/dict/$1.dict" || true ;;
  esac
}

run_one() {
  local t=$1 corpus=$scratch/corpus/$1 log=$scratch/$1.log dict
  mkdir -p "$corpus" "$findings/$t"
  [ -d "fuzz/corpus/$t" ] && cp -r "fuzz/corpus/$t/." "$corpus/"
  dict=$(dict_for "$t")
  local start=$SECONDS rc=0
  # -malloc_limit_mb: one allocation over 512 MB is reported as out-of-memory, with its stack.
  # At the harnesses' 4-million-pixel limit no decoder needs a tenth of that, so a larger one
  # means a size taken from the file unchecked. The outer timeout is a backstop for a stuck run.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:symbolize=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    timeout -k 10 $((seconds + 120)) "$build/fuzz/fuzz_$t" -max_total_time="$seconds" \
    -print_final_stats=1 -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -max_len="$(max_len "$t")" \
    ${dict:+-dict="$dict"} -artifact_prefix="$findings/$t/" "$corpus" >"$log" 2>&1 || rc=$?
  echo "$rc $((SECONDS - start))" >"$scratch/$t.result"
}

echo "fuzz: ${#targets[@]} targets, ${seconds} s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

failed=0
bad=0
printf '%-10s %12s %8s  %s\n' target executions time result
for t in "${targets[@]}"; do
  read -r rc took <"$scratch/$t.result"
  log=$scratch/$t.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  result=ok
  if [ "$rc" -ne 0 ]; then
    failed=1
    bad=$((bad + 1))
    case $(grep -o -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]+|runtime error|out-of-memory|timeout' "$log" || true) in
      *LeakSanitizer*) result=leak ;;
      *timeout*) result=timeout ;;
      *out-of-memory* | *malloc-limit* | *rss-limit*) result=oom ;;
      '') result="failed (exit $rc)" ;;
      *) result=crash ;;
    esac
    cp "$log" "$findings/$t/fuzz.log"
  fi
  printf '%-10s %12s %7ss  %s\n' "$t" "${execs:-?}" "$took" "$result"
done
echo "fuzz: $((${#targets[@]} - bad)) passed, $bad failed"
for t in "${targets[@]}"; do
  read -r rc _ <"$scratch/$t.result"
  [ "$rc" -ne 0 ] || continue
  echo
  echo "==== fuzz_$t: exit $rc; log and inputs in $findings/$t/"
  # The report (stack) and the input, so a CI log alone is enough to reproduce.
  grep -E -A40 -m1 '^==[0-9]+==ERROR|runtime error|ALARM|out-of-memory|deadly signal' \
    "$scratch/$t.log" | head -60 || true
  for f in "$findings/$t"/crash-* "$findings/$t"/leak-* "$findings/$t"/timeout-* \
    "$findings/$t"/oom-*; do
    [ -f "$f" ] || continue
    echo "-- $f ($(stat -c %s "$f") bytes), base64:"
    head -c 4096 "$f" | base64 -w 100
  done
done
find "$findings" -mindepth 1 -type d -empty -delete 2>/dev/null || true
exit "$failed"
