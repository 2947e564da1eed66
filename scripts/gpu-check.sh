#!/bin/sh
# GPU checks of a palette bundle (scripts/bundle.sh), on a machine with an NVIDIA GPU and its
# driver: GPU unit tests, CPU/CUDA parity tests, compute-sanitizer (memcheck and racecheck) on
# small batches when it is installed, the kernel benchmark, `palette bench` (also with
# --devices all), and the CSVs of the sample images through both backends, on every device and
# with --combined (the parity tests named *Fault* fault a device on purpose, each in a process of
# its own: the CPU fallback, and a multi-device backend, absorb it), and where the node has Open
# MPI, the samples under mpirun. Prints a short table at the
# end; logs go to $LOGS (default: ./gpu-check-logs). Exit status 1 if any check
# failed or was left out for time.
#
#   ./gpu-check.sh [--quick] [--profile]
#
# The whole check stays within $GPU_CHECK_BUDGET seconds (default 330, under the 6 minutes it is
# allowed; 560 with --profile): each check's time limit is cut to what is left, and checks past it are left out
# (noted in the table). Most telling first, so that a check that hangs costs the least: the
# GPU and parity tests (both Lloyd variants, columns and warp, inside each suite), the kernel
# benchmark (each row logged as it comes), `palette bench` and the CSVs, then the sanitizers.
#
# --quick: smaller benchmarks. --profile: also Nsight Compute (ncu, when installed) on one launch
# of the columns kernel for 2,000 images at k = 8 (about a minute).
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here" || exit 1
logs=${LOGS:-$here/gpu-check-logs}
mkdir -p "$logs"
quick=0
profile=0
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    --profile) profile=1 ;;
    *) echo "gpu-check.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
table=""
failed=0
budget=${GPU_CHECK_BUDGET:-$([ $profile -eq 1 ] && echo 560 || echo 330)}

note() { table="$table$(printf '%-46s %s' "$1" "$2")
"; }
# check NAME SECONDS COMMAND...: runs it (killed after SECONDS, or when the budget ends), logs
# it, notes pass/fail with the time it took.
check() {
  name=$1
  limit=$2
  shift 2
  t0=$(date +%s)
  left=$((start + budget - t0))
  if [ "$left" -lt 5 ]; then
    note "$name" "LEFT OUT: the ${budget} s budget is spent"
    failed=1
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1
  rc=$?
  t1=$(date +%s)
  if [ $rc -eq 0 ]; then
    note "$name" "ok ($((t1 - t0)) s)"
  else
    note "$name" "FAILED rc=$rc ($((t1 - t0)) s), see $name.log"
    failed=1
  fi
  return $rc
}
gtest_counts() {  # passed/skipped/failed from a gtest log
  p=$(grep -o '\[  PASSED  \] [0-9]*' "$1" | grep -o '[0-9]*$' || true)
  s=$(grep -o '\[  SKIPPED \] [0-9]*' "$1" | grep -o '[0-9]*$' || true)
  f=$(grep -o '\[  FAILED  \] [0-9]* test' "$1" | grep -o '[0-9]*' | head -1 || true)
  echo "passed ${p:-0}, skipped ${s:-0}, failed ${f:-0}"
}

start=$(date +%s)
nvidia-smi -L >"$logs/nvidia-smi.log" 2>&1 || true
gpu=$(head -1 "$logs/nvidia-smi.log")
timeout 30 bin/palette info >"$logs/info.log" 2>&1
cat "$logs/info.log"

# Tests named *Fault* make a device fault on purpose (a trapping kernel leaves the process's
# context on that device unusable): they run each in a process of their own, after the rest.
for suite in gpu parity; do
  rm -f "$logs/$suite-tests.log"
  check "$suite-tests" 150 "bin/palette_${suite}_tests" --gtest_filter='-*Fault*'
  [ -f "$logs/$suite-tests.log" ] && note "  $suite tests" "$(gtest_counts "$logs/$suite-tests.log")"
  for t in $(timeout 30 "bin/palette_${suite}_tests" --gtest_list_tests --gtest_filter='*Fault*' |
    awk '/^[^ ]/ { suite = $1 } /^  / { print suite $1 }'); do
    check "${t#*.}" 60 "bin/palette_${suite}_tests" --gtest_filter="$t"
  done
done

if [ $quick -eq 1 ]; then
  check kernel-bench 60 bin/bench_cuda_kmeans --images 1000 --reps 3 8
  check palette-bench 60 bin/palette bench --images 500
else
  check kernel-bench 240 bin/bench_cuda_kmeans --reps 3 --images 10000 --pixels 65536 --iterations 20 5 8 16
  check palette-bench 120 bin/palette bench --images 4000
fi

# --devices all: each device alone, then all of them at once (issue 17's per-device rate).
check palette-bench-devices 120 bin/palette bench --images 2000 --devices all

# The sample images through both backends, one device and every device, per image and as one
# combined palette (--combined): each pair of CSVs must be identical.
check samples-cpu 30 bin/palette extract samples --backend cpu -q -o "$logs/samples-cpu.csv"
check samples-cuda 30 bin/palette extract samples --backend cuda -q -o "$logs/samples-cuda.csv" &&
  check samples-csv-identical 10 cmp "$logs/samples-cpu.csv" "$logs/samples-cuda.csv"
check samples-devices 30 bin/palette extract samples --devices all -q -o "$logs/samples-dev.csv" &&
  check samples-devices-identical 10 cmp "$logs/samples-cpu.csv" "$logs/samples-dev.csv"
check combined-cpu 30 bin/palette extract samples --combined --backend cpu -q \
  -o "$logs/combined-cpu.csv"
check combined-cuda 30 bin/palette extract samples --combined --backend cuda -q \
  -o "$logs/combined-cuda.csv" &&
  check combined-csv-identical 10 cmp "$logs/combined-cpu.csv" "$logs/combined-cuda.csv"
# Under the node's own Open MPI (its mpirun: the bundle carries no MPI library), two ranks on
# the node's GPUs (local rank r takes GPU r mod their count), a chunk at a time: the same CSV.
if [ -e lib/palette/palette-mpi.so ] && command -v mpirun >/dev/null; then
  check samples-mpi 60 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    mpirun --oversubscribe -n 2 bin/palette extract samples --backend cuda --chunk 1 -q \
    -o "$logs/samples-mpi.csv" &&
    check samples-mpi-identical 10 cmp "$logs/samples-cpu.csv" "$logs/samples-mpi.csv"
else
  note "samples-mpi" "skipped: no mpirun on this node"
fi
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
if [ -n "$sanitizer" ]; then
  small='GpuKernel.FewPointsAndEmptyImages:GpuKernel.HeaviestMemberBreaksTiesTowardsTheLowestIndex'
  check synccheck 60 "$sanitizer" --tool synccheck --error-exitcode 3 bin/palette_gpu_tests \
    --gtest_filter="$small"
  # Both variants run inside each test; the seeding stage's own kernel too.
  check memcheck 120 "$sanitizer" --tool memcheck --error-exitcode 3 bin/palette_gpu_tests \
    --gtest_filter="$small:GpuKernel.SeedsMatchTheHost"
  check racecheck 150 "$sanitizer" --tool racecheck --error-exitcode 3 bin/palette_gpu_tests \
    --gtest_filter="$small:GpuKernel.SeedsMatchTheHost"
else
  note "compute-sanitizer" "not installed: skipped"
fi
if [ $profile -eq 1 ]; then
  ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
  if [ -n "$ncu" ]; then
    check ncu-columns 240 "$ncu" --section SpeedOfLight --section Occupancy \
      --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats \
      --launch-skip 1 --launch-count 1 bin/bench_cuda_kmeans --images 2000 --reps 1 \
      --lloyd columns --no-seeding 8
  else
    note "ncu" "not installed: skipped"
  fi
fi
end=$(date +%s)

echo
echo "== kernel benchmark ($gpu)"
cat "$logs/kernel-bench.log" 2>/dev/null
echo
echo "== palette bench"
cat "$logs/palette-bench.log" 2>/dev/null
echo
echo "== gpu-check: $gpu, $((end - start)) s"
printf '%s' "$table"
exit $failed
