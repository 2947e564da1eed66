#!/usr/bin/env bash
# palette extract across MPI ranks on this machine (CPU backend), one run, printed as Markdown:
#
#  1. strong scaling: the same photos (the JPEGs of ../shared/bench-images, repeated to
#     IMAGES inputs) with 1 rank and with 2 ranks of one thread each, and a plain run with
#     two threads beside them;
#  2. how fast rank 0 gathers and writes rows: ROWS inputs that cost nothing to process (paths
#     that do not exist: each rank turns its share into error rows at once), with 1, 2 and 4
#     ranks; rows/s is what rank 0 can take in from the others and write in order.
#
#   bench/bench_mpi.sh [IMAGES] [ROWS]       default: 240 images, 400000 rows
#
# Environment: PALETTE (default build/palette), PALETTE_BENCH_IMAGES (../shared/bench-images).
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-240}
rows=${2:-400000}
palette=${PALETTE:-build/palette}
src=${PALETTE_BENCH_IMAGES:-../shared/bench-images}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

mapfile -t jpegs < <(find "$src" -maxdepth 1 -name '*.jpg' | sort)
[ ${#jpegs[@]} -gt 0 ] || { echo "bench_mpi: no JPEGs in $src" >&2; exit 2; }
for ((i = 0; i < images; i++)); do echo "${jpegs[i % ${#jpegs[@]}]}"; done >"$tmp/photos.txt"
for ((i = 0; i < rows; i++)); do echo "/nonexistent/palette-bench/$i.jpg"; done >"$tmp/none.txt"

seconds() {  # command...: wall seconds of one run
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || true
  t1=$(date +%s.%N)
  awk "BEGIN {print $t1 - $t0}"
}

echo "palette extract under mpirun, $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| run | inputs | wall s | images/s |"
echo "| --- | --- | --- | --- |"
t=$(seconds "$palette" extract "@$tmp/photos.txt" -o "$tmp/plain.csv" --threads 2 -q)
echo "| plain, 2 threads | $images | $t | $(awk "BEGIN {printf \"%.1f\", $images / $t}") |"
for n in 1 2; do
  t=$(seconds mpirun -n "$n" "$palette" extract "@$tmp/photos.txt" -o "$tmp/mpi$n.csv" --threads 1 -q)
  same=$(cmp -s "$tmp/plain.csv" "$tmp/mpi$n.csv" && echo "identical" || echo "DIFFERENT")
  echo "| mpirun -n $n, 1 thread each ($same) | $images | $t | $(awk "BEGIN {printf \"%.1f\", $images / $t}") |"
done
echo
echo "| rank 0 gathering | rows | wall s | rows/s |"
echo "| --- | --- | --- | --- |"
t=$(seconds "$palette" extract "@$tmp/none.txt" -o "$tmp/none.csv" --threads 2 -q)
echo "| plain, 2 threads | $rows | $t | $(awk "BEGIN {printf \"%.0f\", $rows / $t}") |"
for n in 1 2 4; do
  t=$(seconds mpirun -n "$n" "$palette" extract "@$tmp/none.txt" -o "$tmp/none$n.csv" --threads 1 -q)
  echo "| mpirun -n $n | $rows | $t | $(awk "BEGIN {printf \"%.0f\", $rows / $t}") |"
done
