#pragma once
// Turning a backend's raw cluster statistics into the palette users see.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "palette/kmeans.hpp"
#include "palette/points.hpp"

namespace palette {

/// An image's dominant colours, sorted by share (descending, then by colour).
struct Palette {
  std::vector<std::uint32_t> colors;     ///< 0xRRGGBB, all distinct
  std::vector<std::uint64_t> weights;    ///< counted pixels per colour
  std::vector<std::uint32_t> shares_e4;  ///< shares in 1/10000, summing to exactly 10000
  std::uint64_t total_weight = 0;        ///< counted pixels of the image
  int iterations = 0;                    ///< Lloyd iterations run
  std::size_t distinct = 0;              ///< distinct colours clustered

  double share(std::size_t i) const {
    return static_cast<double>(weights[i]) / static_cast<double>(total_weight);
  }
};

/// Builds image `image`'s palette from `result`: centroids (exact sums / weights) converted back
/// to sRGB on the host, so every backend yields the same colours. If two centroids round to the
/// same hex colour, every cluster is represented by its heaviest member colour instead, which
/// are distinct by construction.
Palette make_palette(const Batch& batch, std::size_t image, const BatchResult& result);

/// Rounds shares to 1/10000 by largest remainder so that they sum to exactly 10000 and keep
/// their order. `weights` need not be sorted; the result is parallel to it.
std::vector<std::uint32_t> round_shares(const std::vector<std::uint64_t>& weights);

}  // namespace palette
