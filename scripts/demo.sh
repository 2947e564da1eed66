#!/usr/bin/env bash
# The main job on the sample images: sets up, builds, and prints the 5 dominant colours of each
# image in samples/ as CSV (also written to out/samples.csv).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
scripts/build.sh -DPALETTE_BUILD_TESTS=OFF -DPALETTE_BUILD_BENCH=OFF
mkdir -p out
build/palette extract samples -k 5 -o out/samples.csv --timings
cat out/samples.csv
