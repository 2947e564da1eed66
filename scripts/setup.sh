#!/usr/bin/env bash
# Installs what palette needs from the distribution's packages (Debian 12 / Ubuntu 24.04).
# Idempotent: installs only what is missing.
#
#   scripts/setup.sh run     build and run palette
#   scripts/setup.sh test    ... and build and run the tests
#   scripts/setup.sh bench   ... and the benchmarks (Google Benchmark, scikit-learn reference)
#   scripts/setup.sh fuzz    ... the tests, and clang with libFuzzer and the sanitizer runtimes
#                            (scripts/fuzz.sh, scripts/sanitize.sh)
set -euo pipefail

profile=${1:-run}
run_pkgs=(build-essential cmake ninja-build pkg-config
          libopencv-core-dev libopencv-imgproc-dev libjpeg-dev libpng-dev libdeflate-dev libtiff-dev libwebp-dev
          libspdlog-dev libcli11-dev libmicrohttpd-dev nlohmann-json3-dev)
test_pkgs=(libgtest-dev libopencv-imgcodecs-dev nlohmann-json3-dev libbenchmark-dev
           libcpp-httplib-dev
           python3 python3-pandas chromium
           libopenmpi-dev openmpi-bin)
# Node.js for the browser test: the distribution's, unless one is already there.
command -v node >/dev/null || test_pkgs+=(nodejs)
command -v npm >/dev/null || test_pkgs+=(npm)
bench_pkgs=(python3-sklearn python3-pil python3-numpy)
# The distribution's default clang; libclang-rt-dev (Debian 12: clang 14, Ubuntu 24.04: clang 18)
# holds libFuzzer and the sanitizer runtimes, only recommended by clang; llvm: llvm-symbolizer,
# for the function names and lines in sanitizer reports.
fuzz_pkgs=(clang libclang-rt-dev llvm)

case "$profile" in
  run) pkgs=("${run_pkgs[@]}") ;;
  test) pkgs=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) pkgs=("${run_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  fuzz) pkgs=("${run_pkgs[@]}" "${test_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
  *) echo "usage: $0 run|test|bench|fuzz" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#pkgs[@]} packages for '$profile' are installed"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "setup: no apt-get here; install these packages (or their equivalents): ${missing[*]}" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "setup: run as root, or install: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
