#!/usr/bin/env bash
# Configures and builds palette into build/ (Release). Extra arguments go to CMake, e.g.
#   scripts/build.sh -DPALETTE_BUILD_TESTS=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ -f build/CMakeCache.txt ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${generator[1]:-Unix Makefiles}" build/CMakeCache.txt; then
  rm -rf build  # generator changed
fi
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build --parallel "$(nproc)"
