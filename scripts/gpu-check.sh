#!/bin/sh
# GPU checks of a palette bundle (scripts/bundle.sh), on a machine with an NVIDIA GPU and its
# driver: GPU unit tests, CPU/CUDA parity tests, compute-sanitizer (memcheck and racecheck) on
# small batches when it is installed, the kernel benchmark, `palette bench`, the CSV of the
# sample images through both backends, and a run that survives a device fault. Prints a short
# table at the end; logs go to $LOGS (default: ./gpu-check-logs). Exit status 1 if any check
# failed or was left out for time.
#
#   ./gpu-check.sh [--quick] [--profile]
#
# The whole check stays within $GPU_CHECK_BUDGET seconds (default 330, under the 6 minutes it is
# allowed; 560 with --profile): each check's time limit is cut to what is left, and checks past it are left out
# (noted in the table). Most telling first, so that a check that hangs costs the least: the
# default variant's tests, the kernel benchmark (every variant, each row logged as it comes),
# `palette bench` and the CSVs, then the other variants' tests and the sanitizers.
#
# --quick: smaller benchmarks. --profile: also Nsight Compute (ncu, when installed) on one launch
# of the columns, columns-fma and columns-cluster kernels for 2,000 images at k = 8 (about a
# minute each).
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

# Every Lloyd variant of the kernel (PALETTE_CUDA_LLOYD: columns, the default; warp; columns-fma;
# columns-cluster).
variants="columns warp columns-fma columns-cluster"
suites() {  # the GPU and parity suites under variant $1
  for suite in gpu parity; do
    rm -f "$logs/$suite-tests-$1.log"
    check "$suite-tests-$1" 150 env PALETTE_CUDA_LLOYD="$1" "bin/palette_${suite}_tests"
    [ -f "$logs/$suite-tests-$1.log" ] &&
      note "  $suite tests ($1)" "$(gtest_counts "$logs/$suite-tests-$1.log")"
  done
}
suites columns

if [ $quick -eq 1 ]; then
  check kernel-bench 60 bin/bench_cuda_kmeans --images 1000 --reps 3 8
  check palette-bench 60 bin/palette bench --images 500
else
  check kernel-bench 240 bin/bench_cuda_kmeans --reps 3 --images 10000 --pixels 65536 --iterations 20 5 8 16
  check palette-bench 120 bin/palette bench --images 4000
fi

# The sample images through both backends (every variant): the CSVs must be identical.
check samples-cpu 30 bin/palette extract samples --backend cpu -q -o "$logs/samples-cpu.csv"
for v in $variants; do
  check "samples-cuda-$v" 30 env PALETTE_CUDA_LLOYD="$v" bin/palette extract samples \
    --backend cuda -q -o "$logs/samples-cuda-$v.csv" &&
    check "samples-csv-identical-$v" 10 cmp "$logs/samples-cpu.csv" "$logs/samples-cuda-$v.csv"
done

# A device fault in the middle of a run (a trapping kernel before the third of five batches):
# the CPU takes over the batches in flight and the rest; exit 0 and the same CSV.
check failover-run 60 env PALETTE_CUDA_FAULT_BATCH=2 bin/palette extract samples --backend cuda \
  --batch 1 -o "$logs/samples-fault.csv"
check failover-csv-identical 10 cmp "$logs/samples-cpu.csv" "$logs/samples-fault.csv"

for v in $variants; do
  [ "$v" = columns ] || suites "$v"
done

sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
if [ -n "$sanitizer" ]; then
  small='GpuKernel.FewPointsAndEmptyImages:GpuKernel.HeaviestMemberBreaksTiesTowardsTheLowestIndex'
  check synccheck 60 "$sanitizer" --tool synccheck --error-exitcode 3 bin/palette_gpu_tests \
    --gtest_filter="$small"
  # SeedsMatchTheHost runs both seedings (tile by tile, and seed_block.hpp's) whatever the variant.
  # The cluster kernel takes only large images (the small tests run as columns-fma under
  # columns-cluster): ClusterKernelOnOneImage under both tools; under memcheck only, the larger
  # ones: ClusterVariantRuns... (a 65,536-point image and 20 smaller ones, 20 passes), the refills
  # and the heavy images (folds, images handed to one block).
  cluster=":GpuKernel.ClusterKernelOnOneImage"
  for v in $variants; do
    extra=$([ "$v" = columns ] && echo ":GpuKernel.SeedsMatchTheHost" || true)
    [ "$v" = columns-cluster ] && extra="$cluster:GpuKernel.ClusterVariantRuns*:GpuKernel.ClusterKernelRefills*:GpuKernel.ClusterKernelOnHeavy*"
    check "memcheck-$v" 120 env PALETTE_CUDA_LLOYD="$v" "$sanitizer" --tool memcheck \
      --error-exitcode 3 bin/palette_gpu_tests --gtest_filter="$small$extra"
    extra=$([ "$v" = columns-fma ] && echo ":GpuKernel.SeedsMatchTheHost" || true)
    [ "$v" = columns-cluster ] && extra=$cluster
    check "racecheck-$v" 150 env PALETTE_CUDA_LLOYD="$v" "$sanitizer" --tool racecheck \
      --error-exitcode 3 bin/palette_gpu_tests --gtest_filter="$small$extra"
  done
else
  note "compute-sanitizer" "not installed: skipped"
fi
if [ $profile -eq 1 ]; then
  ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
  if [ -n "$ncu" ]; then
    for v in columns columns-fma columns-cluster; do
      # The cluster variant's launches alternate seeding and the cluster kernel: profile the latter.
      only=$([ "$v" = columns-cluster ] && echo "--kernel-name regex:cluster" || true)
      check "ncu-$v" 240 "$ncu" --section SpeedOfLight --section Occupancy \
        --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats \
        $only --launch-skip 1 --launch-count 1 bin/bench_cuda_kmeans --images 2000 --reps 1 \
        --lloyd $v --no-seeding 8
    done
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
