#!/usr/bin/env bash
# Times `palette find` and `palette stats` over a synthetic results file of ROWS rows (k = 5;
# bench/make_results.py, deterministic), CSV and JSON Lines: the whole process, median of RUNS
# runs each, the file in the page cache (one untimed read first). Prints a Markdown table.
#
#   bench/bench_find.sh [ROWS] [RUNS]     default: 1000000 rows, 5 runs
#
# Environment: PALETTE (the binary, default build/palette), PALETTE_BENCH_DIR (where the
# results files are generated and kept between runs, default /tmp/palette-bench-find).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
runs=${2:-5}
palette=${PALETTE:-build/palette}
dir=${PALETTE_BENCH_DIR:-/tmp/palette-bench-find}
mkdir -p "$dir"
for format in csv jsonl; do
  f=$dir/results-$rows.$format
  [ -s "$f" ] || python3 bench/make_results.py "$rows" "$f" --format "$format"
  cat "$f" >/dev/null
done
csv=$dir/results-$rows.csv
jsonl=$dir/results-$rows.jsonl
# A row of the file, for --like (one that is in the results).
like=$(sed -n 2p "$csv" | cut -d, -f1)

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
time_it() {  # label, command...: prints "| label | median s | min s |"
  local label=$1
  shift
  local times=()
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    times+=("$(awk "BEGIN {print $t1 - $t0}")")
  done
  printf '| %s | %.2f | %.2f |\n' "$label" "$(printf '%s\n' "${times[@]}" | median)" \
    "$(printf '%s\n' "${times[@]}" | sort -n | head -1)"
}

echo "palette find / stats, $rows rows (k = 5), median and best of $runs runs, whole process"
echo "($(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
echo "| query | median s | best s |"
echo "| --- | --- | --- |"
time_it "--color '#2050c0' --top 10 (CSV)" "$palette" find "$csv" --color '#2050c0' --top 10
time_it "--color '#2050c0', every match (CSV)" "$palette" find "$csv" --color '#2050c0'
time_it "--color '#2050c0' --top 10 (JSON Lines)" "$palette" find "$jsonl" --color '#2050c0' --top 10
time_it "--color blue (class) --top 10 (CSV)" "$palette" find "$csv" --color blue --top 10
time_it "--colors '#2050c0:40,#f0e0d0:20' --top 10 (CSV)" \
  "$palette" find "$csv" --colors '#2050c0:40,#f0e0d0:20' --top 10
time_it "--palette (5 colours) --top 10 (CSV)" \
  "$palette" find "$csv" --palette '#2050c0:40,#f0e0d0:20,#303030:20,#c04020:10,#80a040:10'
time_it "--like ROW --top 10 (CSV)" "$palette" find "$csv" --like "$like" --top 10
time_it "--like ROW --top 10 (JSON Lines)" "$palette" find "$jsonl" --like "$like" --top 10
time_it "stats (CSV)" "$palette" stats "$csv"
