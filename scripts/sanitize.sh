#!/usr/bin/env bash
# Builds palette and its tests with AddressSanitizer + UndefinedBehaviorSanitizer (CUDA off) and
# runs the unit and end-to-end tests, the server's included (the browser test too where Chromium
# and playwright-core are installed, else it reports skipped). A sanitizer report fails its test:
# UBSan stops at the first error, LeakSanitizer checks every process at exit.
#
#   scripts/sanitize.sh [CTEST ARGS...]      e.g. scripts/sanitize.sh -R Hostile
#
# With clang (the default where installed) this is the build scripts/fuzz.sh uses, build-fuzz/:
# the libFuzzer coverage instrumentation in it costs the tests nothing measurable, and CI builds
# the project once for both. PALETTE_SANITIZE_CXX=g++ builds build-asan/ with gcc instead.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh fuzz
cxx=${PALETTE_SANITIZE_CXX:-$(command -v clang++ >/dev/null && echo clang++ || echo g++)}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ $cxx == *clang* ]]; then
  build=build-fuzz
  fuzz=ON
else
  build=build-asan
  fuzz=OFF
fi
build=${PALETTE_SANITIZE_BUILD:-$build}
# Keep this configuration the same as scripts/fuzz.sh's, so the two share one build.
# -O1 -g: readable stacks at a bearable speed; no -DNDEBUG.
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DPALETTE_CUDA=OFF -DPALETTE_SANITIZE=ON \
  -DPALETTE_FUZZ="$fuzz" -DPALETTE_BUILD_TESTS=ON -DPALETTE_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --parallel "$(nproc)"

export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build" --output-on-failure --parallel "$(nproc)" --timeout 600 -L 'unit|e2e' "$@"
