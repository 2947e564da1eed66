// Thumbnails and contact sheets (see sheet.hpp).

#include "palette/sheet.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

namespace palette {
namespace {

// 3x5 digits, a row per entry, bit 2 the leftmost pixel.
constexpr std::array<std::array<std::uint8_t, 5>, 10> kDigits{{
    {7, 5, 5, 5, 7},  // 0
    {2, 6, 2, 2, 7},  // 1
    {7, 1, 7, 4, 7},  // 2
    {7, 1, 3, 1, 7},  // 3
    {5, 5, 7, 1, 1},  // 4
    {7, 4, 7, 1, 7},  // 5
    {7, 4, 7, 5, 7},  // 6
    {7, 1, 2, 2, 2},  // 7
    {7, 5, 7, 5, 7},  // 8
    {7, 5, 7, 1, 7},  // 9
}};

struct Canvas {
  int width, height;
  std::vector<std::uint8_t>& px;

  void set(int x, int y, std::uint32_t c) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    std::uint8_t* q = &px[(static_cast<std::size_t>(y) * width + x) * 3];
    q[0] = static_cast<std::uint8_t>(c >> 16);
    q[1] = static_cast<std::uint8_t>(c >> 8);
    q[2] = static_cast<std::uint8_t>(c);
  }
  void fill(int x0, int y0, int w, int h, std::uint32_t c) {
    for (int y = y0; y < y0 + h; ++y) {
      for (int x = x0; x < x0 + w; ++x) set(x, y, c);
    }
  }
};

void draw_number(Canvas& canvas, int x, int y, std::size_t number, int max_width) {
  const std::string digits = std::to_string(number);
  constexpr int scale = SheetLayout::kDigitWidth / 3;
  const int advance = SheetLayout::kDigitWidth + SheetLayout::kDigitGap;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    const int x0 = x + static_cast<int>(i) * advance;
    if (x0 + SheetLayout::kDigitWidth > x + max_width) break;
    const auto& glyph = kDigits[static_cast<std::size_t>(digits[i] - '0')];
    for (int row = 0; row < 5; ++row) {
      for (int col = 0; col < 3; ++col) {
        if (glyph[static_cast<std::size_t>(row)] & (4 >> col)) {
          canvas.fill(x0 + col * scale, y + row * scale, scale, scale, 0x404040);
        }
      }
    }
  }
}

}  // namespace

Thumbnail make_thumbnail(const PixelView& image, int max_width, int max_height,
                         std::uint32_t background) {
  Thumbnail t;
  if (image.width <= 0 || image.height <= 0 || max_width <= 0 || max_height <= 0) return t;
  const double scale = std::min({1.0, static_cast<double>(max_width) / image.width,
                                 static_cast<double>(max_height) / image.height});
  t.width = std::clamp(static_cast<int>(std::lround(image.width * scale)), 1, max_width);
  t.height = std::clamp(static_cast<int>(std::lround(image.height * scale)), 1, max_height);
  t.width = std::min(t.width, image.width);
  t.height = std::min(t.height, image.height);
  t.rgb.resize(static_cast<std::size_t>(t.width) * t.height * 3);
  const std::uint32_t bg[3] = {background >> 16 & 0xFF, background >> 8 & 0xFF, background & 0xFF};
  for (int oy = 0; oy < t.height; ++oy) {
    const int y0 = static_cast<int>(static_cast<std::int64_t>(oy) * image.height / t.height);
    const int y1 = static_cast<int>(static_cast<std::int64_t>(oy + 1) * image.height / t.height);
    for (int ox = 0; ox < t.width; ++ox) {
      const int x0 = static_cast<int>(static_cast<std::int64_t>(ox) * image.width / t.width);
      const int x1 = static_cast<int>(static_cast<std::int64_t>(ox + 1) * image.width / t.width);
      std::uint64_t sum[3] = {0, 0, 0};
      for (int y = y0; y < y1; ++y) {
        const std::uint8_t* row = image.data + static_cast<std::size_t>(y) * image.stride;
        for (int x = x0; x < x1; ++x) {
          const std::uint8_t* p = row + static_cast<std::size_t>(x) * image.channels;
          const std::uint32_t a = image.channels == 4 ? p[3] : 255;
          for (int c = 0; c < 3; ++c) sum[c] += p[c] * a + bg[c] * (255 - a);
        }
      }
      const auto n =
          static_cast<std::uint64_t>(y1 - y0) * static_cast<std::uint64_t>(x1 - x0) * 255;
      std::uint8_t* q = &t.rgb[(static_cast<std::size_t>(oy) * t.width + ox) * 3];
      for (int c = 0; c < 3; ++c) q[c] = static_cast<std::uint8_t>((sum[c] + n / 2) / n);
    }
  }
  return t;
}

int SheetLayout::sheet_height(std::size_t cells) const {
  const std::size_t rows =
      (cells + static_cast<std::size_t>(columns) - 1) / static_cast<std::size_t>(columns);
  return margin + static_cast<int>(std::max<std::size_t>(rows, 1)) * (cell_height() + margin);
}

int SheetLayout::cell_x(std::size_t i) const {
  return margin + static_cast<int>(i % static_cast<std::size_t>(columns)) * (cell_width() + margin);
}

int SheetLayout::cell_y(std::size_t i) const {
  return margin +
         static_cast<int>(i / static_cast<std::size_t>(columns)) * (cell_height() + margin);
}

std::vector<std::uint8_t> contact_sheet(const std::vector<SheetCell>& cells,
                                        const SheetLayout& layout) {
  const int width = layout.sheet_width(), height = layout.sheet_height(cells.size());
  std::vector<std::uint8_t> px(static_cast<std::size_t>(width) * height * 3, 0xFF);
  Canvas canvas{width, height, px};
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const SheetCell& cell = cells[i];
    const int x = layout.cell_x(i), y = layout.cell_y(i);
    canvas.fill(x, y, layout.thumb_width, layout.thumb_height, kThumbBoxColor);
    const Thumbnail& t = cell.thumbnail;
    if (!t.empty()) {
      const int w = std::min(t.width, layout.thumb_width);
      const int h = std::min(t.height, layout.thumb_height);
      const int tx = x + (layout.thumb_width - w) / 2, ty = y + (layout.thumb_height - h) / 2;
      for (int yy = 0; yy < h; ++yy) {
        for (int xx = 0; xx < w; ++xx) {
          const std::uint8_t* p = &t.rgb[(static_cast<std::size_t>(yy) * t.width + xx) * 3];
          canvas.set(tx + xx, ty + yy,
                     static_cast<std::uint32_t>(p[0]) << 16 |
                         static_cast<std::uint32_t>(p[1]) << 8 | p[2]);
        }
      }
    }
    if (cell.failed) {
      // A red cross over the box: this image has no palette.
      const int n = std::min(layout.thumb_width, layout.thumb_height) / 3;
      const int cx = x + layout.thumb_width / 2, cy = y + layout.thumb_height / 2;
      for (int d = -n; d <= n; ++d) {
        for (int thick = -1; thick <= 1; ++thick) {
          canvas.set(cx + d + thick, cy + d, 0xCC2222);
          canvas.set(cx + d + thick, cy - d, 0xCC2222);
        }
      }
    }
    const int strip_y = y + layout.thumb_height + 2;
    if (!cell.palette.colors.empty()) {
      // A hairline frame, so a white band still shows where the strip ends.
      canvas.fill(x - 1, strip_y - 1, layout.thumb_width + 2, layout.strip_height + 2, 0xCCCCCC);
      const std::vector<std::uint8_t> strip =
          swatch_strip(cell.palette, layout.thumb_width, layout.strip_height);
      for (int yy = 0; yy < layout.strip_height; ++yy) {
        std::copy_n(&strip[static_cast<std::size_t>(yy) * layout.thumb_width * 3],
                    static_cast<std::size_t>(layout.thumb_width) * 3,
                    &px[(static_cast<std::size_t>(strip_y + yy) * width + x) * 3]);
      }
    }
    draw_number(canvas, x, strip_y + layout.strip_height + 4, cell.number, layout.thumb_width);
  }
  return px;
}

}  // namespace palette
