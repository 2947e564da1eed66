// Palette shaping (--merge-delta-e, --min-share, --sort) on constructed palettes: what merges
// and into what, what is dropped and how the rest is renormalised, the orders.

#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <numeric>

#include "palette/error.hpp"
#include "palette/palette.hpp"

namespace palette {
namespace {

Palette make(std::vector<std::uint32_t> colors, std::vector<std::uint64_t> weights) {
  Palette p;
  p.colors = std::move(colors);
  p.weights = std::move(weights);
  p.total_weight = std::accumulate(p.weights.begin(), p.weights.end(), std::uint64_t{0});
  p.shares_e4 = round_shares(p.weights);
  return p;
}

TEST(PaletteShape, DefaultsChangeNothing) {
  Palette p = make({0x102030, 0xffffff, 0x000000}, {50, 30, 20});
  const Palette before = p;
  shape_palette(p, ShapeOptions{});
  EXPECT_EQ(p.colors, before.colors);
  EXPECT_EQ(p.weights, before.weights);
  EXPECT_EQ(p.shares_e4, before.shares_e4);
}

TEST(PaletteShape, LookAlikesMergeIntoTheirWeightedMeanInLab) {
  Palette p = make({0xff0000, 0x0000ff, 0xfa0505}, {60, 10, 30});
  ShapeOptions o;
  o.merge_delta_e = 5;
  shape_palette(p, o);
  // The two reds (ΔE00 about 2) are one colour now: 2/3 of the first, 1/3 of the second in
  // CIELAB, written back as sRGB.
  const auto a = srgb_to_lab(0xff0000), b = srgb_to_lab(0xfa0505);
  const std::uint32_t mean =
      to_rgb((a[0] * 60 + b[0] * 30) / 90 * 128, (a[1] * 60 + b[1] * 30) / 90 * 128,
             (a[2] * 60 + b[2] * 30) / 90 * 128, ColorSpace::kLab);
  EXPECT_EQ(p.colors, (std::vector<std::uint32_t>{mean, 0x0000ff}));
  EXPECT_EQ(p.weights, (std::vector<std::uint64_t>{90, 10}));
  EXPECT_EQ(p.shares_e4, (std::vector<std::uint32_t>{9000, 1000}));
  EXPECT_EQ(p.total_weight, 100u);
  // Nothing closer than the limit: nothing merges.
  Palette q = make({0xff0000, 0x0000ff}, {60, 40});
  shape_palette(q, o);
  EXPECT_EQ(q.colors.size(), 2u);
}

TEST(PaletteShape, TheClosestPairMergesFirst) {
  // Greys at L* ~ 50, 51 and 54: with a limit of 3.5, 50 and 51 merge first (ΔE ~1), and their
  // merge (~50.4) is then too far from 54 to merge again.
  const std::uint32_t g50 = 0x777777, g51 = 0x797979, g54 = 0x808080;
  ASSERT_LT(delta_e2000(srgb_to_lab(g50), srgb_to_lab(g51)),
            delta_e2000(srgb_to_lab(g51), srgb_to_lab(g54)));
  Palette p = make({g54, g51, g50}, {10, 10, 30});
  ShapeOptions o;
  o.merge_delta_e = 3.5;
  shape_palette(p, o);
  ASSERT_EQ(p.colors.size(), 2u);
  EXPECT_EQ(p.weights, (std::vector<std::uint64_t>{40, 10}));
  EXPECT_EQ(p.colors[1], g54);
  // A limit above everything leaves one colour with every pixel.
  Palette all = make({0xff0000, 0x00ff00, 0x0000ff, 0xffffff}, {1, 2, 3, 4});
  o.merge_delta_e = 100;
  shape_palette(all, o);
  EXPECT_EQ(all.colors.size(), 1u);
  EXPECT_EQ(all.shares_e4, std::vector<std::uint32_t>{10000});
}

TEST(PaletteShape, SmallColoursAreDroppedAndTheRestRenormalised) {
  Palette p = make({0x000000, 0xffffff, 0xff0000, 0x00ff00}, {60, 30, 6, 4});
  ShapeOptions o;
  o.min_share = 0.05;
  shape_palette(p, o);
  EXPECT_EQ(p.colors, (std::vector<std::uint32_t>{0x000000, 0xffffff, 0xff0000}));
  EXPECT_EQ(p.total_weight, 96u);
  EXPECT_EQ(p.shares_e4, (std::vector<std::uint32_t>{6250, 3125, 625}));
  // Everything under the limit: the heaviest stays, alone.
  Palette q = make({0x000000, 0xffffff}, {60, 40});
  o.min_share = 0.9;
  shape_palette(q, o);
  EXPECT_EQ(q.colors, std::vector<std::uint32_t>{0x000000});
  EXPECT_EQ(q.shares_e4, std::vector<std::uint32_t>{10000});
}

TEST(PaletteShape, MergingComesBeforeDropping) {
  // Two 4 % reds would be dropped alone; merged (8 %) they stay.
  Palette p = make({0x000000, 0xff0000, 0xfa0505}, {92, 4, 4});
  ShapeOptions o;
  o.merge_delta_e = 5;
  o.min_share = 0.05;
  shape_palette(p, o);
  EXPECT_EQ(p.colors.size(), 2u);
  EXPECT_EQ(p.weights, (std::vector<std::uint64_t>{92, 8}));
}

TEST(PaletteShape, SortedByLightnessAndByHue) {
  const std::uint32_t red = 0xff0000, yellow = 0xffff00, green = 0x00a000, blue = 0x0000ff,
                      grey = 0x808080, black = 0x000000;
  Palette p = make({grey, blue, yellow, black, green, red}, {30, 20, 15, 15, 10, 10});
  ShapeOptions o;
  o.sort = PaletteSort::kLightness;
  Palette l = p;
  shape_palette(l, o);
  // L*: black 0, blue 32.3, red 53.2, grey 53.6, green 57.3, yellow 97.1.
  EXPECT_EQ(l.colors, (std::vector<std::uint32_t>{black, blue, red, grey, green, yellow}));
  // Shares travel with their colours.
  EXPECT_EQ(l.shares_e4, (std::vector<std::uint32_t>{1500, 2000, 1000, 3000, 1000, 1500}));
  o.sort = PaletteSort::kHue;
  Palette h = p;
  shape_palette(h, o);
  // CIELCh hue: red ~40°, yellow ~103°, green ~136°, blue ~306°; neutrals last, darkest first.
  EXPECT_EQ(h.colors, (std::vector<std::uint32_t>{red, yellow, green, blue, black, grey}));
  o.sort = PaletteSort::kShare;
  o.min_share = 0.0001;  // active, drops nothing
  Palette s = h;
  shape_palette(s, o);
  EXPECT_EQ(s.colors, (std::vector<std::uint32_t>{grey, blue, black, yellow, green, red}));
  EXPECT_EQ(parse_palette_sort("hue"), PaletteSort::kHue);
  EXPECT_FALSE(parse_palette_sort("rainbow").has_value());
}

// The quality figure against a direct computation: each distinct colour's CIELAB distance to
// its nearest palette colour, weighted by its count.
TEST(PaletteQuality, MeanDistanceToTheNearestColourAndExcludedFraction) {
  Batch batch;
  ImagePoints pts;
  pts.rgb = {0x000000, 0x101010, 0xff0000, 0xffffff};
  pts.weight = {5, 3, 2, 10};
  pts.total_weight = 20;
  pts.x.assign(4, 0);
  pts.y.assign(4, 0);
  pts.z.assign(4, 0);
  batch.add(pts);
  Palette p = make({0x000000, 0xffffff}, {8, 12});  // red joined black's cluster, say
  add_quality(p, batch, 0, 25);
  const auto d = [](std::uint32_t a, std::uint32_t b) {
    const auto x = srgb_to_lab(a), y = srgb_to_lab(b);
    return std::sqrt((x[0] - y[0]) * (x[0] - y[0]) + (x[1] - y[1]) * (x[1] - y[1]) +
                     (x[2] - y[2]) * (x[2] - y[2]));
  };
  const double red = std::min(d(0xff0000, 0x000000), d(0xff0000, 0xffffff));
  EXPECT_NEAR(p.mean_delta_e, (3 * d(0x101010, 0x000000) + 2 * red) / 20, 1e-12);
  EXPECT_DOUBLE_EQ(p.excluded, 1.0 - 20.0 / 25.0);
}

// The table of every colour's weight (stats, --combined): points in colour order, weights
// scaled down by one divisor only when a sum passes 32 bits.
TEST(ColorWeights, PointsInColourOrderWithTheirWeights) {
  ColorWeights w;
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.points(ColorSpace::kLab).size(), 0u);
  w.add(0xffffff, 5);
  w.add(0x000010, 3);
  w.add(0xffffff, 2);
  ImagePoints p = w.points(ColorSpace::kLab);
  EXPECT_EQ(p.rgb, (std::vector<std::uint32_t>{0x000010, 0xffffff}));
  EXPECT_EQ(p.weight, (std::vector<std::uint32_t>{3, 7}));
  EXPECT_EQ(p.total_weight, 10u);
  EXPECT_EQ(p.x.size(), 2u);
  EXPECT_EQ(p.x[1], to_space(0xffffff, ColorSpace::kLab)[0]);
  w.reserve();                                         // the table now, for add_concurrent
  w.add_concurrent(0x123456, std::uint64_t{3} << 32);  // over 32 bits: divisor 4
  p = w.points(ColorSpace::kRgb);
  EXPECT_EQ(p.weight, (std::vector<std::uint32_t>{1, 3u << 30, 1}));
}

// The list form (a few colours) and the table (many, or reserve()) give the same points,
// whatever the order of the additions and however often colours repeat.
TEST(ColorWeights, TheListAndTheTableAgree) {
  ColorWeights list, table, grown;
  table.reserve();
  std::uint64_t state = 12345;
  const auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>(state >> 33);
  };
  for (int i = 0; i < 200000; ++i) {
    const std::uint32_t rgb = next() & (i % 3 ? 0x0000FF : 0xFFFFFF);  // many repeats, many not
    const std::uint64_t weight = 1 + next() % 1000;
    list.add(rgb, weight);
    table.add(rgb, weight);
  }
  // Past kListEntries colours added the list becomes the table by itself.
  for (std::uint32_t c = 0; c < ColorWeights::kListEntries + 10; ++c)
    grown.add(c * 7 % (1u << 24), 1);
  EXPECT_TRUE(!list.empty() && !table.empty());
  const ImagePoints a = list.points(ColorSpace::kLab), b = table.points(ColorSpace::kLab);
  EXPECT_EQ(a.rgb, b.rgb);
  EXPECT_EQ(a.weight, b.weight);
  EXPECT_EQ(a.total_weight, b.total_weight);
  EXPECT_EQ(a.x, b.x);
  const ImagePoints g = grown.points(ColorSpace::kRgb);
  ASSERT_EQ(g.size(), ColorWeights::kListEntries + 10);
  EXPECT_TRUE(std::is_sorted(g.rgb.begin(), g.rgb.end()));
}

// The colours as bytes (a sharded --combined run's parts, for merge): the same sums back, added
// to what a table holds already; the list and the table write the same bytes; anything damaged
// is refused whole, adding nothing.
TEST(ColorWeights, SerializedColoursAddUpAndDamageIsRefused) {
  ColorWeights a, b, both, table;
  a.add(0x000001, 4);
  a.add(0xFFFFFF, std::uint64_t{5} << 40);
  a.add(0x123456, 1);
  b.add(0x123456, 2);
  b.add(0x000000, 9);
  both.add_serialized(a.serialize());
  both.add_serialized(b.serialize());
  std::vector<std::pair<std::uint32_t, std::uint64_t>> got;
  both.visit([&](std::uint32_t c, std::uint64_t w) { got.emplace_back(c, w); });
  EXPECT_EQ(got, (std::vector<std::pair<std::uint32_t, std::uint64_t>>{
                     {0x000000, 9}, {0x000001, 4}, {0x123456, 3}, {0xFFFFFF, 5ull << 40}}));
  table.reserve();
  table.add_serialized(both.serialize());
  EXPECT_EQ(table.serialize(), both.serialize());
  ColorWeights none;
  const std::string empty = none.serialize();
  EXPECT_EQ(empty, std::string("PALETTE-COLOURS 1\n") + std::string(8, '\0'));
  none.add_serialized(empty);
  EXPECT_TRUE(none.empty());

  // 3 colours: 0x000001 (gap 1, weight 4), 0x123456 (gap 0x123454, weight 1), 0xFFFFFF (weight
  // 5 << 40): 1+1, 3+1, 4+7 bytes after the magic and the count.
  const std::string good = a.serialize();
  ASSERT_EQ(good.size(), 18u + 8 + 17);
  const std::size_t first = 18 + 8;  // the first colour's bytes
  EXPECT_EQ(good.substr(first, 2), std::string("\x01\x04", 2));
  std::vector<std::string> bad = {"",
                                  "PALETTE-COLOURS 1\n",
                                  good.substr(0, good.size() - 1),
                                  good + "x",
                                  "PALETTE-COLOURS 2" + good.substr(17),
                                  empty + std::string(1, '\0')};
  std::string s = good;
  s[first + 1] = 0;  // zero weight
  bad.push_back(s);
  // One colour, 0x1000000 (gap 2^24), and the largest, 0xFFFFFF, then one more past it.
  const std::string one = empty.substr(0, 18) + std::string("\x01", 1) + std::string(7, '\0');
  bad.push_back(one + std::string("\x80\x80\x80\x08\x01", 5));
  ColorWeights last;
  last.add_serialized(one + std::string("\xff\xff\xff\x07\x01", 5));
  EXPECT_EQ(last.serialize(), one + std::string("\xff\xff\xff\x07\x01", 5));
  bad.push_back(empty.substr(0, 18) + std::string("\x02", 1) + std::string(7, '\0') +
                std::string("\xff\xff\xff\x07\x01\x00\x01", 7));
  s = good;
  s[18] = 4;  // a count of 4 for 3 colours
  bad.push_back(s);
  s = good;
  s[18] = 2;  // a count of 2: bytes left over
  bad.push_back(s);
  s = good;
  s[18 + 7] = 1;  // a count past 2^24
  bad.push_back(s);
  // A number not in its shortest form: weight 4 as 0x84 0x00.
  bad.push_back(good.substr(0, first + 1) + std::string("\x84\x00", 2) + good.substr(first + 2));
  // 11 bytes of varint.
  bad.push_back(good.substr(0, first) + std::string(10, '\x80') + std::string(1, '\x01') +
                good.substr(first + 1));
  for (std::size_t i = 0; i < bad.size(); ++i) {
    ColorWeights w;
    EXPECT_THROW(w.add_serialized(bad[i]), Error) << "case " << i;
    EXPECT_TRUE(w.empty()) << "case " << i;
  }
}

}  // namespace
}  // namespace palette
