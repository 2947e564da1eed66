// palette info: what this build can do here.

#include <cstdio>
#include <string>

#include "commands.hpp"
#include "mpi.hpp"
#include "palette/backend.hpp"
#include "palette/image_io.hpp"
#include "palette/thread_pool.hpp"
#ifdef PALETTE_WITH_CUDA
#include "palette/cuda_backend.hpp"
#endif
#include <spdlog/version.h>

#include <CLI/Version.hpp>

namespace palette::cli {

std::function<int()> add_info(CLI::App& app) {
  app.add_subcommand("info", "Show the backends, CUDA devices and library versions of this build");
  return [] {
    std::printf("palette %s\n", PALETTE_VERSION);
    std::printf("backends: cpu (%s, %d threads)", cpu_model().c_str(), available_cpus());
#ifdef PALETTE_WITH_CUDA
    std::printf(", cuda (kernels for compute capability %s)\n", PALETTE_CUDA_ARCHS);
    std::printf("%s\n", cuda_versions().c_str());
    const auto devices = cuda_devices();
    if (devices.empty()) std::printf("CUDA devices: none\n");
    for (const auto& d : devices) {
      std::printf(
          "CUDA device %d: %s, %.1f GiB (%.1f GiB free), compute capability %d.%d, %d SMs%s\n",
          d.index, d.name.c_str(), d.total_memory / 1073741824.0, d.free_memory / 1073741824.0,
          d.cc_major, d.cc_minor, d.multiprocessors,
          d.usable ? "" : " (not usable: needs 8.0 or newer)");
    }
#else
    std::printf("; cuda: not in this build (configure with -DPALETTE_CUDA=ON)\n");
#endif
    std::printf("mpi: %s\n",
                mpi::built_in()
                    ? ("mpirun -n N palette extract ... (" + mpi::library_version() + ")").c_str()
                    : "not in this build (install libopenmpi-dev)");
    std::printf("libraries: %s, spdlog %d.%d.%d, CLI11 %s\n", image_io_versions().c_str(),
                SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH, CLI11_VERSION);
    return kExitOk;
  };
}

}  // namespace palette::cli
