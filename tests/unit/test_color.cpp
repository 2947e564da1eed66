#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>

#include "palette/color.hpp"

namespace palette {
namespace {

TEST(Color, ParsesSpaceNames) {
  EXPECT_EQ(parse_color_space("rgb"), ColorSpace::kRgb);
  EXPECT_EQ(parse_color_space("oklab"), ColorSpace::kOklab);
  EXPECT_EQ(parse_color_space("lab"), ColorSpace::kLab);
  EXPECT_FALSE(parse_color_space("hsv").has_value());
  EXPECT_FALSE(parse_color_space("").has_value());
  for (auto s : {ColorSpace::kRgb, ColorSpace::kOklab, ColorSpace::kLab}) {
    EXPECT_EQ(parse_color_space(to_string(s)), s);
  }
}

TEST(Color, CubeRootMatchesLibmClosely) {
  EXPECT_EQ(cbrt_exact(0.0), 0.0);
  EXPECT_EQ(cbrt_exact(-1.0), 0.0);  // inputs are never negative; clamp rather than NaN
  for (double x = 1e-9; x < 4.0; x *= 1.001) {
    ASSERT_NEAR(cbrt_exact(x) / std::cbrt(x), 1.0, 1e-11) << x;
  }
}

TEST(Color, RgbSpaceIsScaledChannels) {
  const auto c = to_space(0x10ff00, ColorSpace::kRgb);
  EXPECT_EQ(c[0], 16 * 64);
  EXPECT_EQ(c[1], 255 * 64);
  EXPECT_EQ(c[2], 0);
}

TEST(Color, KnownLabValues) {
  // Reference values: scikit-image rgb2lab (D65, 2 degrees).
  const auto white = srgb_to_lab(0xffffff);
  EXPECT_NEAR(white[0], 100.0, 1e-3);
  EXPECT_NEAR(white[1], 0.0, 1e-2);
  EXPECT_NEAR(white[2], 0.0, 1e-2);
  const auto red = srgb_to_lab(0xff0000);
  EXPECT_NEAR(red[0], 53.2408, 2e-3);
  EXPECT_NEAR(red[1], 80.0925, 2e-3);
  EXPECT_NEAR(red[2], 67.2032, 2e-3);
  const auto black = srgb_to_lab(0x000000);
  EXPECT_EQ(black[0], 0.0);
  const auto lab = to_space(0xff0000, ColorSpace::kLab);
  EXPECT_NEAR(lab[0] / 128.0, red[0], 1.0 / 128);
  EXPECT_NEAR(lab[1] / 128.0, red[1], 1.0 / 128);
}

TEST(Color, KnownOklabValues) {
  // Reference: Ottosson's published values for sRGB white and red.
  const auto white = to_space(0xffffff, ColorSpace::kOklab);
  EXPECT_NEAR(white[0] / 32640.0, 1.0, 1e-4);
  EXPECT_NEAR(white[1] / 32640.0, 0.0, 1e-4);
  const auto red = to_space(0xff0000, ColorSpace::kOklab);
  EXPECT_NEAR(red[0] / 32640.0, 0.62796, 2e-4);
  EXPECT_NEAR(red[1] / 32640.0, 0.22486, 2e-4);
  EXPECT_NEAR(red[2] / 32640.0, 0.12585, 2e-4);
}

// Every 8-bit colour survives the trip to fixed-point coordinates and back unchanged, in every
// space: the quantisation is finer than an 8-bit step everywhere in the gamut.
TEST(Color, RoundTripIsExactForEverySampledColour) {
  for (auto space : {ColorSpace::kRgb, ColorSpace::kOklab, ColorSpace::kLab}) {
    int mismatches = 0;
    for (std::uint32_t rgb = 0; rgb < (1u << 24); rgb += 97) {
      const auto c = to_space(rgb, space);
      if (to_rgb(c[0], c[1], c[2], space) != rgb) ++mismatches;
    }
    EXPECT_EQ(mismatches, 0) << to_string(space);
  }
}

TEST(Color, BatchConversionMatchesScalar) {
  std::vector<std::uint32_t> rgb;
  for (std::uint32_t v = 0; v < (1u << 24); v += 7919) rgb.push_back(v);
  for (auto space : {ColorSpace::kRgb, ColorSpace::kOklab, ColorSpace::kLab}) {
    std::vector<std::int16_t> x(rgb.size()), y(rgb.size()), z(rgb.size());
    to_space(rgb, space, x, y, z);
    for (std::size_t i = 0; i < rgb.size(); ++i) {
      const auto c = to_space(rgb[i], space);
      ASSERT_EQ(x[i], c[0]);
      ASSERT_EQ(y[i], c[1]);
      ASSERT_EQ(z[i], c[2]);
    }
  }
}

TEST(Color, OutOfGamutCentroidsClamp) {
  EXPECT_EQ(to_rgb(-500, 0, 0, ColorSpace::kRgb), 0x000000u);
  EXPECT_EQ(to_rgb(99999, 99999, 99999, ColorSpace::kRgb), 0xffffffu);
  EXPECT_EQ(to_rgb(100 * 128, 200 * 128, 0, ColorSpace::kLab) >> 16, 0xffu);  // saturated red
}

TEST(Color, StepUnitsAreAboutOne255thOfTheRange) {
  EXPECT_DOUBLE_EQ(step_units(ColorSpace::kRgb), 64.0);
  EXPECT_NEAR(step_units(ColorSpace::kOklab), 128.0, 1e-9);
  EXPECT_NEAR(step_units(ColorSpace::kLab), 100.0 * 128 / 255, 1e-9);
}

// CIEDE2000 against the 34 test pairs of Sharma, Wu and Dalal (2005), Table 1 (published to
// four decimals), both ways round.
TEST(DeltaE2000, SharmaWuDalalTestData) {
  struct Pair {
    double l1, a1, b1, l2, a2, b2, de;
  };
  const Pair pairs[] = {
      {50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425},
      {50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615},
      {50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412},
      {50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000},
      {50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000},
      {50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000},
      {50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669},
      {50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669},
      {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792},
      {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792},
      {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195},
      {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195},
      {50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045},
      {50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045},
      {50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461},
      {50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065},
      {50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492},
      {50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977},
      {50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030},
      {50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535},
      {50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000},
      {50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000},
      {50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000},
      {50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000},
      {60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644},
      {63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630},
      {61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731},
      {35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645},
      {22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373},
      {36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146},
      {90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441},
      {90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381},
      {6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377},
      {2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082},
  };
  int n = 0;
  for (const Pair& p : pairs) {
    ++n;
    const std::array<double, 3> x{p.l1, p.a1, p.b1}, y{p.l2, p.a2, p.b2};
    EXPECT_NEAR(delta_e2000(x, y), p.de, 0.5e-4) << "pair " << n;
    EXPECT_NEAR(delta_e2000(y, x), p.de, 0.5e-4) << "pair " << n << " reversed";
  }
  EXPECT_EQ(n, 34);
}

TEST(DeltaE2000, ZeroForTheSameColourAndSymmetric) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> l(0, 100), ab(-120, 120);
  for (int i = 0; i < 2000; ++i) {
    const std::array<double, 3> x{l(rng), ab(rng), ab(rng)}, y{l(rng), ab(rng), ab(rng)};
    EXPECT_EQ(delta_e2000(x, x), 0.0);
    EXPECT_NEAR(delta_e2000(x, y), delta_e2000(y, x), 1e-9);
    EXPECT_GT(delta_e2000(x, y), 0.0);
  }
  // White and black: 100 apart in lightness, no chroma.
  EXPECT_NEAR(delta_e2000(srgb_to_lab(0xffffff), srgb_to_lab(0x000000)), 100.0, 1e-3);
}

}  // namespace
}  // namespace palette

namespace palette {
namespace {

TEST(Color, LightnessIsLabsFirstCoordinateBitForBit) {
  for (std::uint32_t rgb = 0; rgb < (1u << 24); rgb += 4099) {
    ASSERT_EQ(srgb_lightness(rgb), srgb_to_lab(rgb)[0]) << std::hex << rgb;
  }
  EXPECT_EQ(srgb_lightness(0xffffff), srgb_to_lab(0xffffff)[0]);
}

}  // namespace
}  // namespace palette
