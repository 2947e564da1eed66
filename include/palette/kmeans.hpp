#pragma once
// K-means parameters, the raw per-cluster results every backend returns, and the CPU reference
// implementation for one image (the oracle the CUDA backend is tested against).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "palette/color.hpp"
#include "palette/kmeans_math.hpp"

namespace palette {

inline constexpr int kMaxColors = 64;

/// Most candidates k-means++ tries for one centre (at k = kMaxColors).
inline constexpr int kMaxKmeansppTrials = math::kmeanspp_trials(kMaxColors);
static_assert(kMaxKmeansppTrials <= math::kDrawsPerCentre, "each candidate has its own draw");

/// Options of one k-means run (the same for every image of a batch).
struct KMeansParams {
  int k = 5;               ///< colours per image, 1..kMaxColors
  std::uint64_t seed = 0;  ///< RNG stream for k-means++ seeding
  int max_iter = 100;      ///< Lloyd iterations at most, >= 1
  double tol = 0.5;        ///< stop when no centroid moves more than this many steps
};

/// Throws palette::Error naming the first out-of-range field.
void validate(const KMeansParams& params);

/// Squared centroid shift (fixed-point units, float) at or under which Lloyd stops.
float shift_limit2(const KMeansParams& params, ColorSpace space);

/// One cluster's exact statistics: integer sums of weight*coordinate, total weight, and the
/// index (within its image) of its heaviest point, lowest index on ties.
struct ClusterStats {
  std::int64_t sum[3];
  std::uint64_t weight;
  std::uint32_t mode;
  std::uint32_t reserved;
};

/// What a backend returns for a batch: up to k clusters per image, image-major.
struct BatchResult {
  int k = 0;
  std::vector<ClusterStats> clusters;     ///< images() * k entries; image i at [i*k, i*k+count[i])
  std::vector<std::uint16_t> count;       ///< clusters found: min(k, distinct colours); 0 if none
  std::vector<std::uint16_t> iterations;  ///< Lloyd iterations run
  double host_cpu_seconds = 0;            ///< CPU time the backend spent on this batch
  double device_seconds = 0;              ///< GPU time (kernels and copies), 0 on the CPU

  std::size_t images() const { return count.size(); }
  void reset(std::size_t images, int k);
};

/// One image's points as plain pointers (a slice of a Batch).
struct PointsView {
  const std::int16_t* x;
  const std::int16_t* y;
  const std::int16_t* z;
  const std::uint32_t* weight;
  std::size_t n;
};

/// Reusable working memory of kmeans_image (one per thread).
struct KMeansScratch {
  std::vector<float> px, py, pz, best;
  std::vector<std::int32_t> label, next;
  std::vector<std::uint32_t> changed;
  struct {
    std::vector<std::int16_t> x, y, z;
    std::vector<std::uint32_t> weight;
  } sample;  // the seeding subsample of large images
  std::vector<std::uint32_t> closest;
  std::vector<std::uint64_t> cum;
};

/// Greedy k-means++ seeding alone (as kmeans_image does it, on at most math::kSeedSample
/// points): writes k point indices to `centers`. Needs points.n > k.
void kmeanspp_seeds(const PointsView& points, int k, std::uint64_t seed, KMeansScratch& scratch,
                    int* centers);

/// Lloyd iterations (with kmeans_image's empty-cluster rule) from the centroids at points
/// seeds[0..k) of an image with points.n > k; writes k clusters to `out`.
void lloyd_image(const PointsView& points, const KMeansParams& params, float shift_limit2,
                 const int* seeds, ClusterStats* out, int& iterations, KMeansScratch& scratch);

/// Runs greedy k-means++ seeding and Lloyd iterations on one image's points. Writes
/// min(k, n) clusters to `out` and returns how many; `iterations` receives the Lloyd count.
int kmeans_image(const PointsView& points, const KMeansParams& params, float shift_limit2,
                 ClusterStats* out, int& iterations, KMeansScratch& scratch);

}  // namespace palette
