#pragma once
// What of an image is counted: a region of it (--region), and colours left out (--ignore white,
// black, grey, background). Both work on the image as decoded and shrunk; the colours are left
// out by distinct colour, after the pixels are merged, so they cost one CIELAB conversion per
// distinct colour.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "palette/points.hpp"

namespace palette {

/// A rectangle of the image: x, y, width, height, in pixels of the original image or (each value
/// ending in %) in percent of its width and height.
struct Region {
  double x = 0, y = 0, w = 0, h = 0;
  bool percent = false;
};

/// Parses "x,y,w,h" (whole pixels, w and h > 0) or "x%,y%,w%,h%" (0..100). std::nullopt
/// otherwise.
std::optional<Region> parse_region(std::string_view text);

/// The rectangle [x0, x1) x [y0, y1) of a `width` x `height` image shrunk from `source_width` x
/// `source_height` that a region covers, clamped to the image (possibly empty).
struct PixelRect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool empty() const { return x1 <= x0 || y1 <= y0; }
};
PixelRect region_rect(const Region& region, int width, int height, int source_width,
                      int source_height);

/// The colours left out. With threshold T (CIELAB units, default 8): white is L* > 100 - T with
/// chroma C*ab < T; black is L* < T; grey is C*ab < T (any lightness, white and black included);
/// background is every colour within ΔE*ab T of the border's colour, when one colour holds at
/// least half of the image's border (its outermost 3 %, at least one pixel).
struct IgnoreOptions {
  bool white = false, black = false, grey = false, background = false;
  double threshold = 8;
  bool any() const { return white || black || grey || background; }
};

/// The largest IgnoreOptions::threshold taken from users (--ignore-threshold, palette serve's
/// ignore_threshold).
inline constexpr double kMaxIgnoreThreshold = 100;

/// Parses a comma-separated list of white, black, grey (or gray), background. std::nullopt for
/// an unknown word.
std::optional<IgnoreOptions> parse_ignore(std::string_view list);

/// The colour of the image's border when one colour dominates it (see IgnoreOptions): pixels
/// whose alpha is under alpha_threshold are not looked at. std::nullopt when none does.
std::optional<std::uint32_t> border_color(const PixelView& image, int alpha_threshold);

/// Removes from `points` the colours `ignore` leaves out (background: within the threshold of
/// `background`, when given). total_weight drops with them; pixels stays.
void drop_ignored(ImagePoints& points, const IgnoreOptions& ignore,
                  std::optional<std::uint32_t> background);

}  // namespace palette
