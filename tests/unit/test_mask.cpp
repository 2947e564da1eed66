// Regions and colours left out (--region, --ignore): parsing, the rectangle a region covers in
// a shrunk image, the border's colour, and which colours each rule drops.

#include "palette/mask.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace palette {
namespace {

TEST(Mask, RegionsParse) {
  const auto px = parse_region("10,20,30,40");
  ASSERT_TRUE(px);
  EXPECT_FALSE(px->percent);
  EXPECT_EQ(px->w, 30);
  const auto pc = parse_region("0%,50%,100%,50%");
  ASSERT_TRUE(pc);
  EXPECT_TRUE(pc->percent);
  EXPECT_EQ(pc->y, 50);
  for (const char* bad : {"", "1,2,3", "1,2,3,4,5", "1,2,0,4", "1%,2,3%,4%", "-1,0,2,2",
                          "0%,0%,101%,10%", "a,b,c,d", "1.5,0,2,2", "nan,0,1,1"}) {
    EXPECT_FALSE(parse_region(bad).has_value()) << bad;
  }
}

TEST(Mask, RegionsScaleToTheShrunkImage) {
  // A 2000x1000 image shrunk to 200x100: original pixels scale by 1/10.
  PixelRect r = region_rect(*parse_region("1000,0,1000,500"), 200, 100, 2000, 1000);
  EXPECT_EQ(r.x0, 100);
  EXPECT_EQ(r.y0, 0);
  EXPECT_EQ(r.x1, 200);
  EXPECT_EQ(r.y1, 50);
  r = region_rect(*parse_region("25%,25%,50%,50%"), 200, 100, 2000, 1000);
  EXPECT_EQ(r.x0, 50);
  EXPECT_EQ(r.x1, 150);
  EXPECT_EQ(r.y0, 25);
  EXPECT_EQ(r.y1, 75);
  // Clamped to the image, and outside it empty.
  r = region_rect(*parse_region("1500,500,5000,5000"), 200, 100, 2000, 1000);
  EXPECT_EQ(r.x1, 200);
  EXPECT_EQ(r.y1, 100);
  EXPECT_TRUE(region_rect(*parse_region("3000,0,10,10"), 200, 100, 2000, 1000).empty());
}

TEST(Mask, IgnoreListsParse) {
  const auto o = parse_ignore("white,gray,background");
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->white && o->grey && o->background && !o->black);
  EXPECT_FALSE(parse_ignore("white,pink").has_value());
  EXPECT_FALSE(parse_ignore("").has_value());
}

// A w x h RGB(A) image of one colour with an inner rectangle of another.
std::vector<std::uint8_t> framed(int w, int h, int channels, std::uint32_t outer,
                                 std::uint32_t inner, int border, std::uint8_t outer_alpha = 255) {
  std::vector<std::uint8_t> px(static_cast<std::size_t>(w * h * channels));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const bool in = x >= border && x < w - border && y >= border && y < h - border;
      const std::uint32_t c = in ? inner : outer;
      std::uint8_t* p = &px[static_cast<std::size_t>((y * w + x) * channels)];
      p[0] = c >> 16;
      p[1] = c >> 8 & 0xFF;
      p[2] = c & 0xFF;
      if (channels == 4) p[3] = in ? 255 : outer_alpha;
    }
  }
  return px;
}

TEST(Mask, TheBorderColourWhenOneDominates) {
  auto px = framed(100, 80, 3, 0xfafafa, 0xc02020, 10);
  EXPECT_EQ(border_color({px.data(), 100, 80, 3, 300}, 128), 0xfafafau);
  // Stripes along the border: no colour holds half of it.
  std::vector<std::uint8_t> stripes(100 * 80 * 3);
  for (int y = 0; y < 80; ++y) {
    for (int x = 0; x < 100; ++x) {
      const std::uint32_t c = x % 3 == 0 ? 0xff0000 : x % 3 == 1 ? 0x00ff00 : 0x0000ff;
      std::uint8_t* p = &stripes[static_cast<std::size_t>((y * 100 + x) * 3)];
      p[0] = c >> 16;
      p[1] = c >> 8 & 0xFF;
      p[2] = c & 0xFF;
    }
  }
  EXPECT_FALSE(border_color({stripes.data(), 100, 80, 3, 300}, 128).has_value());
  // A transparent border is not looked at: the inner colour is all there is.
  px = framed(100, 80, 4, 0xffffff, 0xc02020, 10, 0);
  EXPECT_FALSE(border_color({px.data(), 100, 80, 4, 400}, 128).has_value());
  px = framed(1, 1, 3, 0x123456, 0x123456, 0);
  EXPECT_EQ(border_color({px.data(), 1, 1, 3, 3}, 128), 0x123456u);
}

ImagePoints points(const std::vector<std::uint32_t>& rgb) {
  ImagePoints p;
  for (const auto c : rgb) {
    p.rgb.push_back(c);
    p.weight.push_back(10);
    p.x.push_back(0);
    p.y.push_back(0);
    p.z.push_back(0);
    p.total_weight += 10;
  }
  p.pixels = p.total_weight;
  return p;
}

TEST(Mask, EachRuleDropsItsColours) {
  const std::vector<std::uint32_t> all = {
      0xffffff, 0xfffafa /* snow */, 0x0a0a0a, 0x808080, 0xff0000, 0x2050c0, 0xf0e0a0};
  const auto kept = [&](const IgnoreOptions& o, std::optional<std::uint32_t> bg = {}) {
    ImagePoints p = points(all);
    drop_ignored(p, o, bg);
    EXPECT_EQ(p.total_weight, 10 * p.size());
    EXPECT_EQ(p.pixels, 70u);
    return p.rgb;
  };
  IgnoreOptions white;
  white.white = true;
  EXPECT_EQ(kept(white),
            (std::vector<std::uint32_t>{0x0a0a0a, 0x808080, 0xff0000, 0x2050c0, 0xf0e0a0}));
  white.threshold = 1;  // snow (L* 98.4) stays with a tight limit
  EXPECT_EQ(kept(white).size(), 6u);
  IgnoreOptions black;
  black.black = true;
  EXPECT_EQ(kept(black).size(), 6u);
  IgnoreOptions grey;
  grey.grey = true;
  EXPECT_EQ(kept(grey), (std::vector<std::uint32_t>{0xff0000, 0x2050c0, 0xf0e0a0}));
  IgnoreOptions bg;
  bg.background = true;
  EXPECT_EQ(kept(bg, 0xf2e2a2), (std::vector<std::uint32_t>{0xffffff, 0xfffafa, 0x0a0a0a, 0x808080,
                                                            0xff0000, 0x2050c0}));
  EXPECT_EQ(kept(bg).size(), all.size());  // no border colour, nothing dropped
}

}  // namespace
}  // namespace palette
