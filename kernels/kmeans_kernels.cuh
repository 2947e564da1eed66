#pragma once
// Batched k-means on the GPU: one thread block per image, every step (greedy k-means++ seeding,
// Lloyd iterations, empty-cluster refill, convergence test) on the device, no host round trip
// per iteration. Same arithmetic as the CPU backend (kmeans_math.hpp): identical results.

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "lloyd_columns.hpp"
#include "palette/cuda_backend.hpp"
#include "palette/kmeans.hpp"
#include "seed_block.hpp"

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
  /// Points of the batch's largest image (CudaLloyd::kColumnsCluster sizes shared memory by
  /// it); 0: unknown, and that variant runs as kColumnsFma.
  std::uint32_t max_points = 0;
};

/// One point of an image's k-means++ subsample, gathered once so that seeding reads 16
/// contiguous bytes per point: coordinates, weight, squared distance to the nearest centre.
using SeedPoint = columns::SeedEntry;

/// Entries the subsample buffer needs per image beyond one per point (seed_block.hpp's runs,
/// used by CudaLloyd::kColumnsFma: image i's area starts at offsets[i] + i * kSeedAreaPadding).
inline constexpr std::size_t kSeedAreaPadding = 255;

/// Per-point working memory, one entry per point of the batch.
struct DeviceScratch {
  /// Image i's subsample: entries offsets[i] .. + min(n, kSeedSample), or for kColumnsFma
  /// offsets[i] + i * kSeedAreaPadding .. + seed_area(n); points + images * kSeedAreaPadding
  /// entries in all.
  SeedPoint* sample;
  std::uint8_t* label;  ///< cluster of each point (bit 7: moved into an empty cluster)
  /// The points packed for CudaLloyd::kColumnsFma (kPointPadding more entries than points).
  columns::PackedPoint* packed;
};

/// Points the coordinate and weight arrays must extend past the batch's last point: Lloyd's
/// passes read whole aligned groups of 4 (kernels/lloyd_columns.hpp).
inline constexpr std::size_t kPointPadding = 3;

/// Where results go: `clusters` holds images * k entries.
struct DeviceResults {
  ClusterStats* clusters;
  std::uint16_t* count;
  std::uint16_t* iterations;
};

/// What the kernel runs: everything; or, for tests, only the seeding, whose chosen point
/// indices then go to clusters[i * k + j].mode; or only the Lloyd iterations, from the seeds the
/// caller put there (CudaLloyd::kColumnsCluster alone, for the images it runs as clusters: the
/// others are left as they are, and an image it hands to one block, weights above 16 bits, is
/// seeded again).
enum class KernelMode { kFull, kSeedOnly, kLloydOnly };

/// Launches k-means for every image of the batch on `stream` (asynchronous; checks the launch).
/// `lloyd` picks how the Lloyd iterations sum clusters (see CudaLloyd); both give the same
/// results.
void launch_kmeans_batch(const DevicePoints& points, const DeviceScratch& scratch,
                         const KMeansParams& params, float shift_limit2, const DeviceResults& out,
                         cudaStream_t stream, KernelMode mode = KernelMode::kFull,
                         CudaLloyd lloyd = CudaLloyd::kColumns);

/// Blocks per image CudaLloyd::kColumnsCluster runs a batch of `images` images, the largest of
/// `max_points` points, at k colours with, on the current device: 2, 4 or 8; 0 when it runs
/// as kColumnsFma instead (compute capability below 9.0, k above 16, images too large). Only
/// images of at least 16 points per thread of a cluster (blocks * 4,096) run as clusters; the
/// smaller ones run as kColumnsFma in the same call.
int cluster_blocks(std::uint32_t images, std::uint32_t max_points, int k);

/// Launches a kernel that traps on `stream`: an unrecoverable device fault, after which every
/// CUDA call of the process fails. Only for testing what happens then (PALETTE_CUDA_FAULT_BATCH).
void launch_fault(cudaStream_t stream);

}  // namespace palette::cuda
