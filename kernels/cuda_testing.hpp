#pragma once
// Entry points for the GPU unit tests: single kernel stages on a batch, results copied back.
// Plain C++; defined in cuda_testing.cu.

#include <cstddef>
#include <vector>

#include "palette/cuda_backend.hpp"
#include "palette/kmeans.hpp"
#include "palette/points.hpp"

namespace palette::cuda_testing {

/// The k-means++ seeds the device picks for every image of `batch` with more than k points
/// (point indices within the image, k per image; empty for the other images), with the seeding
/// of `lloyd`'s kernel (kColumnsFma for k <= 16: seed_block.hpp; otherwise tile by tile).
std::vector<std::vector<int>> seeds(const Batch& batch, const KMeansParams& params, int device,
                                    CudaLloyd lloyd = CudaLloyd::kWarp);

/// The whole kernel on `batch` through one synchronous launch (no backend, no streams).
BatchResult run(const Batch& batch, const KMeansParams& params, int device,
                CudaLloyd lloyd = CudaLloyd::kColumns);

/// The cluster kernel's Lloyd iterations alone (CudaLloyd::kColumnsCluster, KernelMode::kLloydOnly)
/// from the given seeds (k point indices per image), as lloyd_image() runs them on the host.
/// Every image must be one the kernel runs as a cluster (cluster_blocks() > 0, at least
/// blocks * 4,096 points, weights within 16 bits); throws palette::Error where it cannot run.
BatchResult run_from_seeds(const Batch& batch, const KMeansParams& params, int device,
                           const std::vector<std::vector<int>>& seeds);

/// Blocks per image CudaLloyd::kColumnsCluster runs `batch` with at k colours on `device` (0:
/// it runs as kColumnsFma there).
int cluster_blocks(const Batch& batch, int k, int device);

/// GPU time of the kernel on `batch` (uploaded once), timed with CUDA events over `reps`
/// launches after one warm-up: median and fastest, in milliseconds; and the iterations it ran.
struct KernelTiming {
  double median_ms = 0, min_ms = 0;
  double mean_iterations = 0;
};
/// seed_only: the kernel stops after k-means++ seeding (what seeding alone costs). result, when
/// given: what the last launch computed.
KernelTiming time_kernel(const Batch& batch, const KMeansParams& params, int device, int reps,
                         CudaLloyd lloyd = CudaLloyd::kColumns, bool seed_only = false,
                         BatchResult* result = nullptr);

/// Device memory bandwidth measured by a device-to-device copy of `bytes` (bytes read plus bytes
/// written, per second).
double copy_bandwidth(int device, std::size_t bytes);

}  // namespace palette::cuda_testing
