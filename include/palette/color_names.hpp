#pragma once
// The CSS Color Module 4 named colours (148 names, with their aliases), each in one of the 11
// basic colour classes of Berlin and Kay, and the nearest named colour of any sRGB colour.
// Sources of the names and the classes, and the whole table: docs/colour-names.md.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace palette {

/// The 11 basic colour terms of English (Berlin and Kay 1969).
enum class ColorClass : std::uint8_t {
  kBlack,
  kWhite,
  kGrey,
  kRed,
  kOrange,
  kYellow,
  kGreen,
  kBlue,
  kPurple,
  kPink,
  kBrown,
};
inline constexpr int kColorClasses = 11;

/// Lower-case English name: "black", ..., "grey", ..., "brown".
std::string_view to_string(ColorClass c);
/// Parses a class name, case-insensitive; "gray" is accepted for grey. std::nullopt otherwise.
std::optional<ColorClass> parse_color_class(std::string_view name);

struct NamedColor {
  std::string_view name;  ///< CSS name, lower case ("rebeccapurple").
  std::uint32_t rgb;      ///< 0xRRGGBB.
  ColorClass color_class;
  std::array<double, 3> lab;  ///< srgb_to_lab(rgb), precomputed.
};

/// Every CSS Color Module 4 named colour (148: aliases such as aqua/cyan and gray/grey included;
/// not transparent or currentcolor), in the specification's (alphabetical) order. The classes
/// are the X11 colour groups of Wikipedia's "Web colors" (Cyan split by HSV hue: aquamarine
/// green, the rest blue; Gray and black split by L*: black alone is black).
std::span<const NamedColor> css_named_colors();

/// The named colour of a CSS name, ASCII case-insensitive, exact (nothing trimmed); nullptr when
/// there is none.
const NamedColor* find_named_color(std::string_view name);

/// The named colour nearest to an sRGB colour by CIEDE2000 (ties: the first in table order, so
/// aliases such as aqua/cyan resolve to the first). Exactly the answer of a scan of the whole
/// table, in well under a microsecond (a pruned search). Thread-safe.
const NamedColor& nearest_named_color(std::uint32_t rgb);
/// The same from the colour's CIELAB (srgb_to_lab), when the caller already has it. Any point is
/// accepted; a non-finite one gets the first entry (no distance compares less than NaN).
const NamedColor& nearest_named_color(const std::array<double, 3>& lab);

}  // namespace palette
