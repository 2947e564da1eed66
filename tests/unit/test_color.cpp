#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
}  // namespace palette
