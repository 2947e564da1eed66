#pragma once
// The CUDA backend's seam (defined in kernels/, built when PALETTE_WITH_CUDA). Plain C++: no CUDA
// header leaks out of kernels/.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "palette/backend.hpp"

namespace palette {

/// A CUDA device as the runtime reports it.
struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  std::size_t total_memory = 0, free_memory = 0;  ///< bytes
  int cc_major = 0, cc_minor = 0;                 ///< compute capability
  int multiprocessors = 0;
  bool usable = false;  ///< this build has kernels for it (compute capability 8.0 or newer)
};

/// Devices the runtime sees. Empty (not an error) without a driver or a GPU.
std::vector<CudaDeviceInfo> cuda_devices();

/// Devices palette can run on (usable ones).
int cuda_device_count();

/// "CUDA runtime 13.0, driver 13.0" (driver "none" when there is no driver).
std::string cuda_versions();

/// The CUDA backend on device `device`. Throws palette::Error when that device is missing or
/// unusable.
std::unique_ptr<Backend> make_cuda_backend(int device);

}  // namespace palette
