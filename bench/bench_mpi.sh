#!/usr/bin/env bash
# palette extract across MPI ranks on this machine (CPU backend), one run, printed as Markdown:
#
#  1. strong scaling: the same photos (the JPEGs of ../shared/bench-images, repeated to
#     IMAGES inputs) with 1 rank and with 2 ranks of one thread each, and a plain run with
#     two threads beside them;
#  2. how fast rank 0 gathers and writes rows: ROWS inputs that cost nothing to process (paths
#     that do not exist: each rank turns its share into error rows at once), with 1, 2 and 4
#     ranks; rows/s is what rank 0 can take in from the others and write in order. With -q, as
#     a run of real images logs no warning per row (these rows would each log one, which alone
#     takes a third of the rate).
#
# Rates are palette's own (its summary line: from the first input handed out to the last row
# written), since mpirun's start-up (0.3 to 2.5 s here) would swamp them; the wall time of the
# whole mpirun command is beside them.
#
#   bench/bench_mpi.sh [IMAGES] [ROWS]       default: 600 images, 1000000 rows
#
# Environment: PALETTE (default build/palette), PALETTE_BENCH_IMAGES (../shared/bench-images).
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-600}
rows=${2:-1000000}
palette=${PALETTE:-build/palette}
src=${PALETTE_BENCH_IMAGES:-../shared/bench-images}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

mapfile -t jpegs < <(find "$src" -maxdepth 1 -name '*.jpg' | sort)
[ ${#jpegs[@]} -gt 0 ] || { echo "bench_mpi: no JPEGs in $src" >&2; exit 2; }
for ((i = 0; i < images; i++)); do echo "${jpegs[i % ${#jpegs[@]}]}"; done >"$tmp/photos.txt"
seq -f "/nonexistent/palette-bench/%.0f.jpg" 1 "$rows" >"$tmp/none.txt"

# command...: "wall_s rate" (rate from palette's summary line "..., X images/s (...)").
measure() {
  local t0 t1 rate
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$tmp/log" || true
  t1=$(date +%s.%N)
  rate=$(grep -o '[0-9.]* images/s' "$tmp/log" | tail -1 | cut -d' ' -f1)
  echo "$(awk "BEGIN {printf \"%.2f\", $t1 - $t0}") ${rate:-?}"
}

echo "palette extract under mpirun, $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| run | photos | whole command s | palette's images/s | output |"
echo "| --- | --- | --- | --- | --- |"
read -r t r < <(measure "$palette" extract "@$tmp/photos.txt" -o "$tmp/plain.csv" --threads 2)
echo "| plain, 2 threads | $images | $t | $r | |"
for n in 1 2; do
  read -r t r < <(measure mpirun -n "$n" "$palette" extract "@$tmp/photos.txt" -o "$tmp/mpi$n.csv" --threads 1)
  same=$(cmp -s "$tmp/plain.csv" "$tmp/mpi$n.csv" && echo "identical" || echo "DIFFERENT")
  echo "| mpirun -n $n, 1 thread each | $images | $t | $r | $same |"
done
echo
echo "| rank 0 gathering | rows | whole command s | palette's rows/s | output |"
echo "| --- | --- | --- | --- | --- |"
read -r t r < <(measure "$palette" extract "@$tmp/none.txt" -o "$tmp/none.csv" --threads 2 -q --timings)
echo "| plain, 2 threads | $rows | $t | $r | |"
for n in 1 2 4; do
  read -r t r < <(measure mpirun -n "$n" "$palette" extract "@$tmp/none.txt" -o "$tmp/none$n.csv" \
    --threads 1 -q --timings)
  same=$(cmp -s "$tmp/none.csv" "$tmp/none$n.csv" && echo "identical" || echo "DIFFERENT")
  echo "| mpirun -n $n, 1 thread each | $rows | $t | $r | $same |"
done
