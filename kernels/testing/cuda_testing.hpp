#pragma once
// Entry points for the GPU tests and the kernel benchmark (the test-only library
// palette_cuda_testing): the kernel, or its seeding stage alone, on a batch through one
// synchronous launch, results copied back. Plain C++.

#include <cstddef>
#include <vector>

#include "lloyd_variant.hpp"
#include "palette/kmeans.hpp"
#include "palette/points.hpp"

namespace palette::cuda_testing {

using cuda::LloydVariant;

/// The k-means++ seeds the device picks for every image of `batch` with more than k points
/// (point indices within the image, k per image; empty for the other images).
std::vector<std::vector<int>> seeds(const Batch& batch, const KMeansParams& params, int device);

/// The whole kernel on `batch` through one synchronous launch (no backend, no streams).
BatchResult run(const Batch& batch, const KMeansParams& params, int device,
                LloydVariant lloyd = LloydVariant::kColumns);

/// GPU time of the kernel on `batch` (uploaded once), timed with CUDA events over `reps`
/// launches after one warm-up: median and fastest, in milliseconds; and the iterations it ran.
struct KernelTiming {
  double median_ms = 0, min_ms = 0;
  double mean_iterations = 0;
};
/// seed_only: the seeding stage alone (what seeding costs). result, when given: what the last
/// launch computed.
KernelTiming time_kernel(const Batch& batch, const KMeansParams& params, int device, int reps,
                         LloydVariant lloyd = LloydVariant::kColumns, bool seed_only = false,
                         BatchResult* result = nullptr);

/// Device memory bandwidth measured by a device-to-device copy of `bytes` (bytes read plus bytes
/// written, per second).
double copy_bandwidth(int device, std::size_t bytes);

}  // namespace palette::cuda_testing
