// Thumbnails and contact sheets (palette/sheet.hpp).

#include "palette/sheet.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace palette {
namespace {

std::uint32_t at(const std::vector<std::uint8_t>& px, int width, int x, int y) {
  const std::uint8_t* p = &px[(static_cast<std::size_t>(y) * width + x) * 3];
  return static_cast<std::uint32_t>(p[0]) << 16 | static_cast<std::uint32_t>(p[1]) << 8 | p[2];
}

TEST(Thumbnail, AveragesTheBoxesItShrinks) {
  // 4x2: the left half 0 and 100, the right half 200 and 255, per channel the same.
  const std::vector<std::uint8_t> rgb = {0,   0,   0,   100, 100, 100, 200, 200,
                                         200, 255, 255, 255, 100, 100, 100, 0,
                                         0,   0,   255, 255, 255, 200, 200, 200};
  const PixelView view{rgb.data(), 4, 2, 3, 12};
  const Thumbnail t = make_thumbnail(view, 2, 2, 0);
  ASSERT_EQ(t.width, 2);  // 4x2 into 2x2 keeps its aspect: 2x1
  ASSERT_EQ(t.height, 1);
  EXPECT_EQ(at(t.rgb, 2, 0, 0), 0x323232u);  // (0+100+100+0)/4 = 50
  EXPECT_EQ(at(t.rgb, 2, 1, 0), 0xe4e4e4u);  // (200+255+255+200)/4 = 227.5 -> 228
}

TEST(Thumbnail, NeverEnlargesAndCompositesAlpha) {
  // 2x1 RGBA: opaque red, then fully transparent green.
  const std::vector<std::uint8_t> rgba = {255, 0, 0, 255, 0, 255, 0, 0};
  const PixelView view{rgba.data(), 2, 1, 4, 8};
  const Thumbnail t = make_thumbnail(view, 100, 100, 0x0000ff);
  ASSERT_EQ(t.width, 2);
  ASSERT_EQ(t.height, 1);
  EXPECT_EQ(at(t.rgb, 2, 0, 0), 0xff0000u);
  EXPECT_EQ(at(t.rgb, 2, 1, 0), 0x0000ffu);  // the background shows through
  EXPECT_TRUE(make_thumbnail(PixelView{}, 10, 10, 0).empty());
}

TEST(Thumbnail, KeepsTheAspectOfTallImages) {
  std::vector<std::uint8_t> rgb(10 * 400 * 3, 7);
  const Thumbnail t = make_thumbnail(PixelView{rgb.data(), 10, 400, 3, 30}, 160, 120, 0);
  EXPECT_EQ(t.height, 120);
  EXPECT_EQ(t.width, 3);  // 10 * 120 / 400
  for (auto v : t.rgb) ASSERT_EQ(v, 7);
}

TEST(ContactSheet, PlacesThumbnailsStripsCrossesAndNumbers) {
  SheetLayout layout;
  layout.columns = 2;
  std::vector<SheetCell> cells(3);
  cells[0].number = 1;
  cells[0].thumbnail = {2, 2, std::vector<std::uint8_t>(12, 0x80)};
  cells[0].palette.colors = {0xff0000, 0x00ff00};
  cells[0].palette.shares_e4 = {7500, 2500};
  cells[1].number = 2;
  cells[1].failed = true;
  cells[2].number = 10;
  cells[2].palette.colors = {0x0000ff};
  cells[2].palette.shares_e4 = {10000};
  const auto px = contact_sheet(cells, layout);
  const int w = layout.sheet_width();
  ASSERT_EQ(w, 10 + 2 * 170);
  ASSERT_EQ(layout.sheet_height(3), 10 + 2 * (layout.cell_height() + 10));
  ASSERT_EQ(px.size(), static_cast<std::size_t>(w) * layout.sheet_height(3) * 3);
  EXPECT_EQ(at(px, w, 0, 0), kSheetBackground);
  // Cell 0: the box, the thumbnail in its middle, the strip 3/4 red then green.
  EXPECT_EQ(at(px, w, 10, 10), kThumbBoxColor);
  EXPECT_EQ(at(px, w, 10 + 79, 10 + 59), 0x808080u);
  const int strip_y = 10 + 120 + 2 + 8;
  EXPECT_EQ(at(px, w, 10, strip_y), 0xff0000u);
  EXPECT_EQ(at(px, w, 10 + 119, strip_y), 0xff0000u);
  EXPECT_EQ(at(px, w, 10 + 120, strip_y), 0x00ff00u);
  EXPECT_EQ(at(px, w, 10 + 159, strip_y), 0x00ff00u);
  // Cell 1 (failed): a red cross through the middle of its box, no strip.
  EXPECT_EQ(at(px, w, 180 + 80, 10 + 60), 0xcc2222u);
  EXPECT_EQ(at(px, w, 180 + 80, strip_y), kSheetBackground);
  // Cell 2 starts the second row; its number "10" is drawn under the strip.
  const int y2 = layout.cell_y(2);
  EXPECT_EQ(layout.cell_x(2), 10);
  EXPECT_EQ(at(px, w, 10 + 5, y2 + 122 + 8), 0x0000ffu);
  const int digits_y = y2 + 122 + 16 + 4;
  // "1" is 010/110/010/010/111 at scale 2: its top row's middle pixel is set, its corner not.
  EXPECT_EQ(at(px, w, 10 + 2, digits_y), 0x404040u);
  EXPECT_EQ(at(px, w, 10, digits_y), kSheetBackground);
  // "0" begins at 6 + 2 pixels: its top-left corner is set.
  EXPECT_EQ(at(px, w, 10 + 8, digits_y), 0x404040u);
}

}  // namespace
}  // namespace palette
