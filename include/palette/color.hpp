#pragma once
// Colour spaces and conversions between 8-bit sRGB and the fixed-point coordinates k-means
// works in. Conversions run on the host only (per distinct colour, and per final centroid), so
// the CPU and CUDA backends never depend on their own libm: they only ever see the integers.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace palette {

/// The space k-means clusters in. Each maps 8-bit sRGB to three int16 fixed-point coordinates.
enum class ColorSpace : std::uint8_t {
  kRgb,    ///< sRGB channel values, scaled by 64 (0..16320).
  kOklab,  ///< Oklab (Ottosson 2020), L in [0,1] scaled by 32640, a and b likewise.
  kLab,    ///< CIELAB (D65), L in [0,100] scaled by 128, a and b likewise.
};

/// Parses "rgb", "oklab" or "lab"; std::nullopt for anything else.
std::optional<ColorSpace> parse_color_space(std::string_view name);
/// The lower-case name parse_color_space accepts.
std::string_view to_string(ColorSpace space);

/// Fixed-point units per "step": 1/255 of the lightness (or channel) range of the space. The
/// --tol option is expressed in steps, so it means about the same in every space.
double step_units(ColorSpace space);

/// 0xRRGGBB of an 8-bit sRGB colour.
constexpr std::uint32_t pack_rgb(std::uint32_t r, std::uint32_t g, std::uint32_t b) {
  return (r << 16) | (g << 8) | b;
}

/// Fixed-point coordinates of one sRGB colour (0xRRGGBB) in `space`.
std::array<std::int16_t, 3> to_space(std::uint32_t rgb, ColorSpace space);

/// Batch form of to_space: converts rgb[i] into (x[i], y[i], z[i]). Spans have equal sizes.
void to_space(std::span<const std::uint32_t> rgb, ColorSpace space, std::span<std::int16_t> x,
              std::span<std::int16_t> y, std::span<std::int16_t> z);

/// The 8-bit sRGB colour (0xRRGGBB, rounded, clamped to the gamut) of a point given in the
/// (fractional) fixed-point coordinates of `space`, e.g. a centroid.
std::uint32_t to_rgb(double x, double y, double z, ColorSpace space);

/// CIELAB (D65, L in [0,100]) of an sRGB colour, in double precision. Used for quality figures.
std::array<double, 3> srgb_to_lab(std::uint32_t rgb);

/// L* of srgb_to_lab(rgb), the same bits, at a third of the cost (one cube root).
double srgb_lightness(std::uint32_t rgb);

/// CIEDE2000 colour difference (ΔE00, kL = kC = kH = 1) between two CIELAB colours, as
/// specified by CIE 142-2001 and implemented per Sharma, Wu and Dalal, "The CIEDE2000
/// Color-Difference Formula: Implementation Notes, Supplementary Test Data, and Mathematical
/// Observations", Color Research and Application 30(1), 2005. Symmetric in its arguments.
double delta_e2000(const std::array<double, 3>& lab1, const std::array<double, 3>& lab2);

/// Cube root by bit-level first guess and Newton steps: pure IEEE arithmetic, so it gives the
/// same bits on every machine and compiler (no libm involved). Accurate to ~1e-12 relative.
double cbrt_exact(double x);

}  // namespace palette
