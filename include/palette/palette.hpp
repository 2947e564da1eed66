#pragma once
// Turning a backend's raw cluster statistics into the palette users see.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
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
  // Quality figures (--stats), filled by add_quality():
  double mean_delta_e = -1;  ///< mean ΔE*ab of the counted pixels to their nearest colour
  double excluded = 0;       ///< fraction of the image's pixels not counted
  bool converged = false;    ///< Lloyd stopped before --max-iter

  double share(std::size_t i) const {
    return static_cast<double>(weights[i]) / static_cast<double>(total_weight);
  }
};

/// Builds image `image`'s palette from `result`: centroids (exact sums / weights) converted back
/// to sRGB on the host, so every backend yields the same colours. If two centroids round to the
/// same hex colour, every cluster is represented by its heaviest member colour instead, which
/// are distinct by construction.
Palette make_palette(const Batch& batch, std::size_t image, const BatchResult& result);

/// How a palette is reordered for its users (--sort).
enum class PaletteSort : std::uint8_t {
  kShare,      ///< largest share first (then by colour): make_palette()'s order
  kLightness,  ///< darkest first by CIELAB L* (then larger share, then colour)
  kHue,        ///< by CIELCh hue angle from 0° (red) round to 360°; neutral colours (chroma
               ///< under kNeutralChroma) after the others, darkest first
};
inline constexpr double kNeutralChroma = 5.0;

/// Parses "share", "lightness" or "hue".
std::optional<PaletteSort> parse_palette_sort(std::string_view name);

/// The largest merge_delta_e taken from users (--merge-delta-e, palette serve's merge_delta_e).
inline constexpr double kMaxMergeDeltaE = 100;

/// What happens to a palette after clustering (--merge-delta-e, --min-share, --sort), in this
/// order. The defaults change nothing.
struct ShapeOptions {
  double merge_delta_e = 0;  ///< merge colours closer than this (CIEDE2000); 0: never
  double min_share = 0;      ///< drop colours with a smaller share, and renormalise; 0: none
  PaletteSort sort = PaletteSort::kShare;
  bool active() const { return merge_delta_e > 0 || min_share > 0 || sort != PaletteSort::kShare; }
};

/// Shapes a palette in place. Merging joins the closest pair under merge_delta_e first (lowest
/// positions on ties), again and again: the merged colour is the weight-weighted mean of the
/// two in CIELAB, its weight their sum. Dropping keeps at least the heaviest colour; shares are
/// then of the colours kept. Host arithmetic only, so every backend gives the same result.
void shape_palette(Palette& palette, const ShapeOptions& options);

/// The quality figures of image `image`'s palette: the mean CIELAB distance (ΔE*ab) from each
/// counted pixel (each distinct colour, by its count) to the nearest colour of the palette as
/// written, and the fraction of the image's `pixels` not counted. Host arithmetic only.
void add_quality(Palette& palette, const Batch& batch, std::size_t image, std::uint64_t pixels);

/// A swatch strip: `width` x `height` 8-bit RGB pixels, a band per colour, in palette order,
/// as wide as its share (band edges at the rounded cumulative shares, so the bands fill the
/// strip exactly; a colour too small for a pixel gets none).
std::vector<std::uint8_t> swatch_strip(const Palette& palette, int width, int height);

/// Rounds shares to 1/10000 by largest remainder so that they sum to exactly 10000 and keep
/// their order. `weights` need not be sorted; the result is parallel to it.
std::vector<std::uint32_t> round_shares(const std::vector<std::uint64_t>& weights);

}  // namespace palette
