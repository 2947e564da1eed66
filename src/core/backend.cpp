#include "palette/backend.hpp"

#include "palette/error.hpp"

#ifdef PALETTE_WITH_CUDA
#include "palette/cuda_backend.hpp"
#endif

namespace palette {

std::optional<BackendKind> parse_backend_kind(std::string_view name) {
  if (name == "auto") return BackendKind::kAuto;
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  return std::nullopt;
}

bool cuda_compiled() {
#ifdef PALETTE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(BackendKind kind, int threads, int device) {
  if (kind == BackendKind::kCpu) return make_cpu_backend(threads);
#ifdef PALETTE_WITH_CUDA
  if (kind == BackendKind::kCuda) return make_cuda_backend(device, threads);
  if (cuda_device_count() > 0) return make_cuda_backend(device, threads);
  return make_cpu_backend(threads);
#else
  (void)device;
  if (kind == BackendKind::kCuda) {
    throw Error("this build of palette has no CUDA backend (rebuild with -DPALETTE_CUDA=ON)");
  }
  return make_cpu_backend(threads);
#endif
}

}  // namespace palette
