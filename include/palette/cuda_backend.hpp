#pragma once
// The CUDA backend's seam (defined in kernels/, built when PALETTE_WITH_CUDA). Plain C++: no CUDA
// header leaks out of kernels/.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

/// How the CUDA kernel runs Lloyd's iterations. All give identical results.
/// kColumns (the default): every thread adds into its own column of 32-bit sums in shared
/// memory, folded once per pass (kernels/lloyd_columns.hpp; k <= 16 and images whose weights
/// fit, else kWarp), and finds each point's nearest centroid from exact distances (8 operations
/// per centroid, as the CPU); 3.7x faster than kWarp at k = 8 on an H100. kColumnsFma: the same
/// column sums; nearest centroids from 3 fused multiply-adds per centroid, with exact distances
/// only where two centroids are too close to call, and points read packed in 8 bytes (a quarter
/// fewer instructions and a fifth fewer bytes per point and pass; not yet measured on a GPU).
/// kColumnsCluster: kColumnsFma by a thread-block cluster of 2-8 blocks per image, each holding
/// its share of the points in shared memory for the whole run, so that Lloyd's passes read no
/// device memory (kernels/lloyd_cluster.hpp; compute capability 9.0 and images that fit, else
/// kColumnsFma; not yet measured on a GPU).
/// kWarp: lanes with the same cluster combine through warp reductions, one shared atomic per
/// cluster and warp.
enum class CudaLloyd { kWarp, kColumns, kColumnsFma, kColumnsCluster };

/// "warp", "columns", "columns-fma" or "columns-cluster".
const char* to_string(CudaLloyd lloyd);

/// The variant called `name` (as to_string() writes it), if any.
std::optional<CudaLloyd> cuda_lloyd_from_name(std::string_view name);

/// The variant PALETTE_CUDA_LLOYD names (unset or empty: columns). Throws palette::Error for a
/// name that is none of them.
CudaLloyd cuda_lloyd_from_env();

/// The CUDA backend on device `device`. Throws palette::Error when that device is missing or
/// unusable. `host_threads` is unused for now (host work happens in the pipeline).
std::unique_ptr<Backend> make_cuda_backend(int device, int host_threads);

}  // namespace palette
