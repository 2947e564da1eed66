#!/usr/bin/env bash
# Sets up, builds, and runs every test (ctest: unit, e2e; GPU tests skip without a device).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/build.sh -DPALETTE_BUILD_TESTS=ON -DPALETTE_BUILD_BENCH=ON
ctest --test-dir build --output-on-failure --parallel "$(nproc)" --timeout 300
