#!/usr/bin/env bash
# Sets up, builds, and runs every test (ctest: unit, e2e; GPU tests skip without a device).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
# The browser test's one npm package (playwright-core, which drives the system Chromium).
if [ ! -d tests/e2e/browser/node_modules/playwright-core ] ||
   [ tests/e2e/browser/package-lock.json -nt tests/e2e/browser/node_modules ]; then
  (cd tests/e2e/browser && npm ci --no-audit --no-fund --loglevel=error) ||
    echo "test: WARNING: npm ci failed (no registry?); the browser test will report skipped" >&2
fi
# PALETTE_CUDA=ON|OFF|AUTO (default AUTO: the CUDA backend is built when nvcc works; its GPU
# and parity tests report "skipped" on a machine without a GPU).
scripts/build.sh -DPALETTE_BUILD_TESTS=ON -DPALETTE_BUILD_BENCH=ON -DPALETTE_CUDA="${PALETTE_CUDA:-AUTO}"
ctest --test-dir build --output-on-failure --parallel "$(nproc)" --timeout 300
