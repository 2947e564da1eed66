#!/usr/bin/env bash
# The relocatable bundle (scripts/bundle.sh) checked on a machine without a GPU: built for one
# CUDA architecture, unpacked into a directory with a space in its name, its palette must write
# the samples' CSV (CPU backend) that BUILD's palette writes, in one process and, where mpirun
# is here, under `mpirun -n 2` (its MPI module loading this machine's Open MPI through the
# bundle's own loader). Skipped without nvcc. CI runs it (.ci/run).
#
#   scripts/bundle-check.sh [BUILD]      # default: build (scripts/test.sh's)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
if ! command -v nvcc >/dev/null && ! [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "bundle-check: skipped (no nvcc: the bundle is a CUDA build)"
  exit 0
fi
export PATH="$PATH:/usr/local/cuda/bin"
work=$(mktemp -d "${TMPDIR:-/tmp}/palette bundle.XXXXXX")
trap 'rm -rf "$work"' EXIT
scripts/bundle.sh 90 >"$work/bundle.log" 2>&1 || { tail -30 "$work/bundle.log"; exit 1; }
tail -1 "$work/bundle.log"
tar xzf out/palette-bundle.tar.gz -C "$work"
bundle="$work/palette"
fail() {
  echo "bundle-check: FAILED: $*" >&2
  exit 1
}

"$bundle/bin/palette" info >"$work/info.txt" || fail "bin/palette info"
"$build/palette" extract samples --backend cpu -q -o "$work/want.csv"
"$bundle/bin/palette" extract samples --backend cpu -q -o "$work/one.csv" ||
  fail "bin/palette extract"
cmp "$work/want.csv" "$work/one.csv" || fail "the bundle's CSV differs from $build/palette's"
checked="one process"
if [ -e "$bundle/lib/palette/palette-mpi.so" ] && command -v mpirun >/dev/null; then
  grep -q "^mpi: mpirun" "$work/info.txt" || fail "bin/palette info names no MPI: $(cat "$work/info.txt")"
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
    mpirun -n 2 "$bundle/bin/palette" extract samples --backend cpu --chunk 1 -q \
    -o "$work/mpi.csv" || fail "mpirun -n 2 bin/palette extract"
  cmp "$work/want.csv" "$work/mpi.csv" || fail "the bundle's CSV under mpirun -n 2 differs"
  checked="$checked and mpirun -n 2"
fi
echo "bundle-check: ok (the samples' CSV, $checked, identical to $build/palette's)"
