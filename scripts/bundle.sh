#!/usr/bin/env bash
# Builds palette with CUDA and packs a relocatable bundle: the palette binary, the GPU test and
# benchmark binaries, their whole shared-library closure (glibc and its loader included, so the
# target's own glibc and packages do not matter) and gpu-check.sh. It runs on a GPU node with
# nothing but the NVIDIA driver:
#
#   tar xzf palette-bundle.tar.gz && palette/gpu-check.sh      # or palette/bin/palette ...
#
#   scripts/bundle.sh [CUDA architectures, default "80;86;89;90"]
# Output: out/palette-bundle.tar.gz (and the tree in out/bundle/palette).
set -euo pipefail
cd "$(dirname "$0")/.."
archs=${1:-"80;86;89;90"}
build=build-bundle
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# With MPI where its development files are here (scripts/setup.sh installs Open MPI's): the MPI
# side is a module, lib/palette/palette-mpi.so, linked with the MPI library's soname only
# (libmpi.so.40 for Open MPI, whose 4.1 and 5.x keep one C interface). The bundle carries
# no MPI library: under mpirun or srun the module loads the node's own, the one its launcher
# belongs to (README, "On a cluster").
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPALETTE_CUDA=ON \
  -DPALETTE_MPI=AUTO -DCMAKE_CUDA_ARCHITECTURES="$archs" >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target palette palette_gpu_tests \
  palette_parity_tests bench_kmeans bench_cuda_kmeans

root=out/bundle/palette
rm -rf out/bundle
mkdir -p "$root/bin" "$root/libexec" "$root/lib"
# No early exit in awk: ldconfig, cut off mid-output, would fail the pipe (pipefail, set -e).
mhd=$(ldconfig -p | awk '/libmicrohttpd\.so\.12 .*x86-64/ && !found {print $NF; found = 1}')
cp -L "$mhd" "$root/lib/"
programs=("$build/palette" "$build/tests/palette_gpu_tests" "$build/tests/palette_parity_tests"
          "$build/bench/bench_kmeans" "$build/bench/bench_cuda_kmeans")
for p in "${programs[@]}"; do
  name=$(basename "$p")
  cp "$p" "$root/libexec/$name"
  strip --strip-unneeded "$root/libexec/$name"
  # Each program runs through the bundled loader with the bundled libraries, then the node's
  # LD_LIBRARY_PATH (where a cluster's modules put its NVIDIA driver or its MPI).
  cat > "$root/bin/$name" <<WRAP
#!/bin/sh
here=\$(cd "\$(dirname "\$0")/.." && pwd)
exec "\$here/lib/ld-linux-x86-64.so.2" \\
  --library-path "\$here/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" --argv0 "\$0" \\
  "\$here/libexec/$name" "\$@"
WRAP
  chmod +x "$root/bin/$name"
  # Shared-library closure (the CUDA runtime is linked statically; libcuda comes from the
  # driver at run time and is never bundled), and libmicrohttpd's, which palette loads only for
  # `serve` (src/server/mhd_lazy.cpp).
  { ldd "$p"; ldd "$mhd"; } | awk '/=> \//{print $3} /^\s*\/lib.*ld-linux/{print $1}' |
    while read -r lib; do
      case "$(basename "$lib")" in
        libcuda.so*|libnvidia*) continue ;;
      esac
      cp -L -n "$lib" "$root/lib/" 2>/dev/null || true
    done
done
mpi=""
if [ -e "$build/palette-mpi.so" ]; then
  # Not its closure: the MPI library and its own are the node's (see above).
  mkdir -p "$root/lib/palette"
  cp "$build/palette-mpi.so" "$root/lib/palette/"
  strip --strip-unneeded "$root/lib/palette/palette-mpi.so"
  mpi=$(objdump -p "$build/palette-mpi.so" | awk '$1 == "NEEDED" && $2 ~ /^libmpi/ {print $2}')
fi
cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib/ld-linux-x86-64.so.2"
for lib in "$root"/lib/*.so*; do strip --strip-unneeded "$lib" 2>/dev/null || true; done
cp scripts/gpu-check.sh "$root/gpu-check.sh"
cp -r samples "$root/samples"
cat > "$root/README" <<'TXT'
palette, relocatable bundle. Needs only an x86-64 Linux with the NVIDIA driver (for the GPU).
  bin/palette extract DIR -o out.csv      # the tool (bin/palette --help)
  bin/palette info                        # backends and CUDA devices seen
  ./gpu-check.sh                          # GPU tests, parity, compute-sanitizer, benchmarks
Libraries in lib/ come from Debian 12 packages; their licences are those of the packages.
TXT
if [ -n "$mpi" ]; then
  cat >> "$root/README" <<TXT
  mpirun -n 8 bin/palette extract DIR -o out.csv   # across nodes (or srun --mpi=pmix ...)
Under mpirun or srun, lib/palette/palette-mpi.so loads the node's own MPI library, $mpi
(libmpi.so.40: Open MPI 4.1 or 5.x), from the system's library path or LD_LIBRARY_PATH (for
instance after module load openmpi).
TXT
fi
tar czf out/palette-bundle.tar.gz -C out/bundle palette
echo "bundle: out/palette-bundle.tar.gz ($(du -h out/palette-bundle.tar.gz | cut -f1)," \
  "$(ls "$root"/lib/*.so* | wc -l) libraries)"
