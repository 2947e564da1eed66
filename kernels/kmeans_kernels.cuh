#pragma once
// Batched k-means on the GPU: one thread block per image, every step (greedy k-means++ seeding,
// Lloyd iterations, empty-cluster refill, convergence test) on the device, no host round trip
// per iteration. Same arithmetic and rules as the CPU backend (kmeans_math.hpp): identical
// results.

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "columns_layout.hpp"
#include "lloyd_variant.hpp"
#include "palette/kmeans.hpp"

namespace palette::cuda {

/// A batch in device memory, laid out as palette::Batch: image i owns points
/// [offsets[i], offsets[i+1]). x, y, z and weight start where cudaMalloc puts them (aligned)
/// and hold kPointPadding more entries than the batch has points (any values).
struct DevicePoints {
  const std::int16_t* x;
  const std::int16_t* y;
  const std::int16_t* z;
  const std::uint32_t* weight;
  const std::uint32_t* offsets;  ///< images + 1 entries
  std::uint32_t images;
};

/// Points the coordinate and weight arrays must extend past the batch's last point: Lloyd's
/// passes read whole aligned groups of columns::kQuad.
inline constexpr std::size_t kPointPadding = columns::kQuad - 1;

/// One point of an image's k-means++ subsample, gathered once so that seeding reads 16
/// contiguous bytes per point: coordinates, weight, squared distance to the nearest centre.
struct alignas(16) SeedPoint {
  std::int16_t x, y, z, pad;
  std::uint32_t w;
  std::uint32_t closest;
};

/// Per-point working memory, one entry per point of the batch.
struct DeviceScratch {
  SeedPoint* sample;    ///< image i's subsample: entries offsets[i] .. + min(n, kSeedSample)
  std::uint8_t* label;  ///< cluster of each point (warp path; bit 7: moved into an empty cluster)
};

/// Device bytes per point: coordinates, weight and DeviceScratch.
inline constexpr std::size_t kDeviceBytesPerPoint =
    3 * sizeof(std::int16_t) + sizeof(std::uint32_t) + sizeof(SeedPoint) + sizeof(std::uint8_t);

/// Where results go: `clusters` holds images * k entries.
struct DeviceResults {
  ClusterStats* clusters;
  std::uint16_t* count;
  std::uint16_t* iterations;
};

/// Launches k-means for every image of the batch on `stream` (asynchronous; checks the launch).
void launch_kmeans_batch(const DevicePoints& points, const DeviceScratch& scratch,
                         const KMeansParams& params, float shift_limit2, const DeviceResults& out,
                         cudaStream_t stream, LloydVariant lloyd = LloydVariant::kColumns);

}  // namespace palette::cuda
