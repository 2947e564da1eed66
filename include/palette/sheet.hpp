#pragma once
// Pictures of palettes for people: thumbnails of images and contact sheets of many images with
// their swatch strips (extract --contact-sheet). Host arithmetic only, no image library.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "palette/palette.hpp"
#include "palette/points.hpp"

namespace palette {

/// A small 8-bit RGB picture of an image, rows packed.
struct Thumbnail {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
  bool empty() const { return width == 0 || height == 0; }
};

/// Shrinks `image` (RGB, or RGBA composited over `background`, 0xRRGGBB) to fit inside
/// max_width x max_height, keeping its aspect ratio and never enlarging it: every output pixel
/// is the mean of the source pixels whose box it covers. An empty image gives an empty one.
Thumbnail make_thumbnail(const PixelView& image, int max_width, int max_height,
                         std::uint32_t background);

/// One image's cell on a contact sheet: its number (1-based, as in the output's rows), its
/// thumbnail (empty for an image that failed) and its palette.
struct SheetCell {
  std::size_t number = 0;
  Thumbnail thumbnail;
  Palette palette;
  bool failed = false;
};

/// The layout of a contact sheet: cells in rows of `columns`, each a thumbnail box of
/// thumb_width x thumb_height, the swatch strip under it, and the image's number under that.
struct SheetLayout {
  int columns = 10;
  int thumb_width = 160, thumb_height = 120;
  int strip_height = 16;
  int margin = 10;  ///< around the sheet and between cells
  static constexpr int kDigitWidth = 6, kDigitHeight = 10, kDigitGap = 2;

  int cell_width() const { return thumb_width; }
  int cell_height() const { return thumb_height + 2 + strip_height + 4 + kDigitHeight; }
  int sheet_width() const { return margin + columns * (cell_width() + margin); }
  int sheet_height(std::size_t cells) const;
  /// Where cell `i` (0-based on its sheet) begins.
  int cell_x(std::size_t i) const;
  int cell_y(std::size_t i) const;
};

/// Lays `cells` out on one sheet: RGB pixels of layout.sheet_width() x
/// layout.sheet_height(cells.size()). Thumbnails are centred in their box on a light grey,
/// a failed image's box shows a red cross, and each number is drawn in a small digit font.
std::vector<std::uint8_t> contact_sheet(const std::vector<SheetCell>& cells,
                                        const SheetLayout& layout);

/// The background of a sheet and of transparent parts of thumbnails.
inline constexpr std::uint32_t kSheetBackground = 0xFFFFFF;
inline constexpr std::uint32_t kThumbBoxColor = 0xEEEEEE;

}  // namespace palette
