#include "palette/color_names.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "palette/color.hpp"

namespace palette {
namespace {

// The definition nearest_named_color must match: the first entry of minimum ΔE00.
const NamedColor& brute_force_nearest(const std::array<double, 3>& lab) {
  const auto colors = css_named_colors();
  std::size_t best = 0;
  double best_d = delta_e2000(lab, colors[0].lab);
  for (std::size_t i = 1; i < colors.size(); ++i) {
    const double d = delta_e2000(lab, colors[i].lab);
    if (d < best_d) {
      best_d = d;
      best = i;
    }
  }
  return colors[best];
}

const NamedColor& named(std::string_view name) {
  const NamedColor* c = find_named_color(name);
  EXPECT_NE(c, nullptr) << name;
  return c != nullptr ? *c : css_named_colors()[0];
}

TEST(ColorNames, TableHas148SortedLowerCaseUniqueNames) {
  const auto colors = css_named_colors();
  ASSERT_EQ(colors.size(), 148u);
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < colors.size(); ++i) {
    const auto name = colors[i].name;
    EXPECT_FALSE(name.empty());
    EXPECT_TRUE(std::all_of(name.begin(), name.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
        << name;
    EXPECT_LE(colors[i].rgb, 0xFFFFFFu) << name;
    if (i > 0) {
      EXPECT_LT(colors[i - 1].name, name);
    }
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 148u);
  EXPECT_EQ(colors.front().name, "aliceblue");
  EXPECT_EQ(colors.back().name, "yellowgreen");
  EXPECT_EQ(find_named_color("transparent"), nullptr);
  EXPECT_EQ(find_named_color("currentcolor"), nullptr);
}

TEST(ColorNames, KnownValuesAndAliases) {
  EXPECT_EQ(named("rebeccapurple").rgb, 0x663399u);
  EXPECT_EQ(named("black").rgb, 0x000000u);
  EXPECT_EQ(named("white").rgb, 0xFFFFFFu);
  EXPECT_EQ(named("gray").rgb, 0x808080u);
  EXPECT_EQ(named("lime").rgb, 0x00FF00u);
  EXPECT_EQ(named("green").rgb, 0x008000u);
  EXPECT_EQ(named("orange").rgb, 0xFFA500u);
  EXPECT_EQ(named("lightgoldenrodyellow").rgb, 0xFAFAD2u);
  EXPECT_EQ(named("aqua").rgb, named("cyan").rgb);
  EXPECT_EQ(named("fuchsia").rgb, named("magenta").rgb);
  // Every -grey name is an alias of its -gray name, with the same class.
  int greys = 0;
  for (const auto& c : css_named_colors()) {
    const std::string name(c.name);
    const auto pos = name.find("grey");
    if (pos == std::string::npos) continue;
    ++greys;
    const std::string gray = name.substr(0, pos) + "gray" + name.substr(pos + 4);
    EXPECT_EQ(named(gray).rgb, c.rgb) << name;
    EXPECT_EQ(named(gray).color_class, c.color_class) << name;
  }
  EXPECT_EQ(greys, 7);
}

TEST(ColorNames, LabIsPrecomputed) {
  for (const auto& c : css_named_colors()) {
    EXPECT_EQ(c.lab, srgb_to_lab(c.rgb)) << c.name;
  }
}

TEST(ColorNames, FindIsCaseInsensitiveAndExact) {
  const NamedColor* c = find_named_color("RebeccaPurple");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->name, "rebeccapurple");
  EXPECT_EQ(find_named_color("ALICEBLUE"), find_named_color("aliceblue"));
  EXPECT_EQ(find_named_color("YellowGreen")->name, "yellowgreen");
  for (const auto& n : css_named_colors()) EXPECT_EQ(find_named_color(n.name), &n);
  EXPECT_EQ(find_named_color(""), nullptr);
  EXPECT_EQ(find_named_color("notacolour"), nullptr);
  EXPECT_EQ(find_named_color("re"), nullptr);
  EXPECT_EQ(find_named_color("redd"), nullptr);
  EXPECT_EQ(find_named_color(" red"), nullptr);
  EXPECT_EQ(find_named_color("red "), nullptr);
  EXPECT_EQ(find_named_color("zzzzzz"), nullptr);
  EXPECT_EQ(find_named_color("dark gray"), nullptr);
  EXPECT_EQ(find_named_color(std::string_view("red\0", 4)), nullptr);
}

TEST(ColorClasses, NamesRoundTrip) {
  const std::vector<std::string_view> expected = {"black",  "white",  "grey",  "red",
                                                  "orange", "yellow", "green", "blue",
                                                  "purple", "pink",   "brown"};
  ASSERT_EQ(expected.size(), static_cast<std::size_t>(kColorClasses));
  for (int i = 0; i < kColorClasses; ++i) {
    const auto c = static_cast<ColorClass>(i);
    EXPECT_EQ(to_string(c), expected[i]);
    EXPECT_EQ(parse_color_class(to_string(c)), c);
  }
}

TEST(ColorClasses, ParseIsCaseInsensitiveAndAcceptsGray) {
  EXPECT_EQ(parse_color_class("gray"), ColorClass::kGrey);
  EXPECT_EQ(parse_color_class("Gray"), ColorClass::kGrey);
  EXPECT_EQ(parse_color_class("GREY"), ColorClass::kGrey);
  EXPECT_EQ(parse_color_class("Purple"), ColorClass::kPurple);
  EXPECT_EQ(parse_color_class("BROWN"), ColorClass::kBrown);
  EXPECT_FALSE(parse_color_class("").has_value());
  EXPECT_FALSE(parse_color_class("grayish").has_value());
  EXPECT_FALSE(parse_color_class(" red").has_value());  // nothing is trimmed
  EXPECT_FALSE(parse_color_class("red ").has_value());
  EXPECT_FALSE(parse_color_class("cyan").has_value());
  EXPECT_FALSE(parse_color_class("violet").has_value());
  EXPECT_FALSE(parse_color_class("rebeccapurple").has_value());
}

TEST(ColorClasses, SpotChecks) {
  const std::vector<std::pair<std::string_view, ColorClass>> cases = {
      {"navy", ColorClass::kBlue},
      {"maroon", ColorClass::kBrown},
      {"chocolate", ColorClass::kBrown},
      {"gold", ColorClass::kYellow},
      {"hotpink", ColorClass::kPink},
      {"silver", ColorClass::kGrey},
      {"black", ColorClass::kBlack},
      {"snow", ColorClass::kWhite},
      {"olive", ColorClass::kGreen},
      {"teal", ColorClass::kBlue},
      {"orange", ColorClass::kOrange},
      {"indigo", ColorClass::kPurple},
      {"red", ColorClass::kRed},
      {"crimson", ColorClass::kRed},
      {"lightsalmon", ColorClass::kRed},
      {"coral", ColorClass::kOrange},
      {"aquamarine", ColorClass::kGreen},
      {"turquoise", ColorClass::kBlue},
      {"aqua", ColorClass::kBlue},
      {"cyan", ColorClass::kBlue},
      {"gainsboro", ColorClass::kGrey},
      {"darkslategray", ColorClass::kGrey},
      {"white", ColorClass::kWhite},
      {"mistyrose", ColorClass::kWhite},
      {"fuchsia", ColorClass::kPurple},
      {"magenta", ColorClass::kPurple},
      {"rebeccapurple", ColorClass::kPurple},
      {"lavender", ColorClass::kPurple},
      {"mediumvioletred", ColorClass::kPink},
      {"khaki", ColorClass::kYellow},
      {"cornsilk", ColorClass::kBrown},
      {"mediumaquamarine", ColorClass::kGreen},
      {"lightseagreen", ColorClass::kBlue},
      {"darkslateblue", ColorClass::kPurple},
  };
  for (const auto& [name, cls] : cases) {
    EXPECT_EQ(to_string(named(name).color_class), to_string(cls)) << name;
  }
}

TEST(ColorClasses, EveryClassIsUsedWithExpectedCounts) {
  int count[kColorClasses] = {};
  for (const auto& c : css_named_colors()) {
    const int i = static_cast<int>(c.color_class);
    ASSERT_GE(i, 0);
    ASSERT_LT(i, kColorClasses);
    ++count[i];
  }
  for (int i = 0; i < kColorClasses; ++i) EXPECT_GT(count[i], 0) << to_string(ColorClass(i));
  // Wikipedia's groups, plus the cyan split (aquamarine to green, 11 to blue) and the grey/black
  // split (black alone), with both spellings of the grey names.
  EXPECT_EQ(count[static_cast<int>(ColorClass::kBlack)], 1);
  EXPECT_EQ(count[static_cast<int>(ColorClass::kGrey)], 16);
  EXPECT_EQ(count[static_cast<int>(ColorClass::kWhite)], 17);
  EXPECT_EQ(count[static_cast<int>(ColorClass::kPink)], 6);
  EXPECT_EQ(count[static_cast<int>(ColorClass::kRed)], 9);
  EXPECT_EQ(count[static_cast<int>(ColorClass::kOrange)], 5);
  EXPECT_EQ(count[static_cast<int>(ColorClass::kYellow)], 11);
  EXPECT_EQ(count[static_cast<int>(ColorClass::kBrown)], 17);
  EXPECT_EQ(count[static_cast<int>(ColorClass::kGreen)], 21);
  EXPECT_EQ(count[static_cast<int>(ColorClass::kBlue)], 26);
  EXPECT_EQ(count[static_cast<int>(ColorClass::kPurple)], 19);
}

// HSV hue in degrees of an sRGB colour.
double hsv_hue(std::uint32_t rgb) {
  const double r = (rgb >> 16) & 0xFF, g = (rgb >> 8) & 0xFF, b = rgb & 0xFF;
  const double mx = std::max({r, g, b}), mn = std::min({r, g, b});
  if (mx == mn) return 0.0;
  double h;
  if (mx == r) {
    h = 60.0 * (g - b) / (mx - mn);
  } else if (mx == g) {
    h = 120.0 + 60.0 * (b - r) / (mx - mn);
  } else {
    h = 240.0 + 60.0 * (r - g) / (mx - mn);
  }
  return h < 0.0 ? h + 360.0 : h;
}

TEST(ColorClasses, CyanAndGrayBlackRulesAsDocumented) {
  // Wikipedia's Cyan group: green below 170 degrees of HSV hue, blue from there.
  for (const auto* name :
       {"teal", "darkcyan", "lightseagreen", "cadetblue", "darkturquoise", "mediumturquoise",
        "turquoise", "aqua", "cyan", "aquamarine", "paleturquoise", "lightcyan"}) {
    const auto& c = named(name);
    EXPECT_EQ(c.color_class, hsv_hue(c.rgb) < 170.0 ? ColorClass::kGreen : ColorClass::kBlue)
        << name << " " << hsv_hue(c.rgb);
  }
  // Wikipedia's Gray/black group (both spellings): black below L* = 20, grey from there.
  for (const auto* name :
       {"black", "darkslategray", "darkslategrey", "dimgray", "dimgrey", "slategray", "slategrey",
        "gray", "grey", "lightslategray", "lightslategrey", "darkgray", "darkgrey", "silver",
        "lightgray", "lightgrey", "gainsboro"}) {
    const auto& c = named(name);
    EXPECT_EQ(c.color_class, c.lab[0] < 20.0 ? ColorClass::kBlack : ColorClass::kGrey) << name;
  }
}

TEST(ColorNames, EveryNamedColourNamesItself) {
  const auto colors = css_named_colors();
  for (const auto& c : colors) {
    const NamedColor& n = nearest_named_color(c.rgb);
    EXPECT_EQ(n.rgb, c.rgb) << c.name << " -> " << n.name;
    // Aliases resolve to the first of equal colours in table order.
    const auto first = std::find_if(colors.begin(), colors.end(),
                                    [&](const NamedColor& o) { return o.rgb == c.rgb; });
    EXPECT_EQ(&n, &*first) << c.name << " -> " << n.name;
    EXPECT_EQ(&nearest_named_color(c.lab), &n) << c.name;
  }
  EXPECT_EQ(nearest_named_color(0x00FFFF).name, "aqua");
  EXPECT_EQ(nearest_named_color(0xFF00FF).name, "fuchsia");
  EXPECT_EQ(nearest_named_color(0xA9A9A9).name, "darkgray");
  EXPECT_EQ(nearest_named_color(0x808080).name, "gray");
  EXPECT_EQ(nearest_named_color(0x000000).name, "black");
  EXPECT_EQ(nearest_named_color(0xFFFFFF).name, "white");
}

TEST(ColorNames, NearestIsExactlyTheBruteForceAnswer) {
  // Every 7th level of each channel (0, 7, ..., 252, and 255): 38^3 = 54,872 colours.
  std::vector<int> levels;
  for (int v = 0; v < 256; v += 7) levels.push_back(v);
  levels.push_back(255);
  std::size_t checked = 0;
  for (int r : levels) {
    for (int g : levels) {
      for (int b : levels) {
        const auto rgb = pack_rgb(r, g, b);
        const auto lab = srgb_to_lab(rgb);
        ASSERT_EQ(&nearest_named_color(rgb), &brute_force_nearest(lab)) << std::hex << rgb;
        ++checked;
      }
    }
  }
  // Random sRGB colours, and the named colours with each channel nudged by one.
  std::mt19937 rng(20240229);
  for (int i = 0; i < 50000; ++i) {
    const std::uint32_t rgb = rng() & 0xFFFFFF;
    ASSERT_EQ(&nearest_named_color(rgb), &brute_force_nearest(srgb_to_lab(rgb))) << std::hex << rgb;
    ++checked;
  }
  for (const auto& c : css_named_colors()) {
    for (int shift : {0, 8, 16}) {
      for (int delta : {-1, 1}) {
        const int v = static_cast<int>((c.rgb >> shift) & 0xFF) + delta;
        if (v < 0 || v > 255) continue;
        const std::uint32_t rgb =
            (c.rgb & ~(0xFFu << shift)) | (static_cast<std::uint32_t>(v) << shift);
        ASSERT_EQ(&nearest_named_color(rgb), &brute_force_nearest(srgb_to_lab(rgb)))
            << std::hex << rgb;
      }
    }
  }
  EXPECT_GT(checked, 100000u);
}

TEST(ColorNames, NearestFromLabMatchesBruteForceOffTheGamut) {
  // The Lab overload takes any point, in gamut or not; midpoints of named colours make ties
  // and near-ties likely.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> l(-10.0, 110.0), ab(-140.0, 140.0);
  for (int i = 0; i < 20000; ++i) {
    const std::array<double, 3> lab = {l(rng), ab(rng), ab(rng)};
    ASSERT_EQ(&nearest_named_color(lab), &brute_force_nearest(lab))
        << lab[0] << " " << lab[1] << " " << lab[2];
  }
  const auto colors = css_named_colors();
  for (std::size_t i = 0; i < colors.size(); ++i) {
    for (std::size_t j = i + 1; j < colors.size(); j += 5) {
      std::array<double, 3> mid;
      for (int k = 0; k < 3; ++k) mid[k] = (colors[i].lab[k] + colors[j].lab[k]) / 2.0;
      ASSERT_EQ(&nearest_named_color(mid), &brute_force_nearest(mid))
          << colors[i].name << " " << colors[j].name;
    }
  }
  // Far outside CIELAB's range (answered by brute force), and around the limits of the search.
  std::uniform_real_distribution<double> far_l(-300.0, 400.0), far_ab(-2000.0, 2000.0);
  for (int i = 0; i < 2000; ++i) {
    const std::array<double, 3> lab = {far_l(rng), far_ab(rng), far_ab(rng)};
    ASSERT_EQ(&nearest_named_color(lab), &brute_force_nearest(lab))
        << lab[0] << " " << lab[1] << " " << lab[2];
  }
  for (double l : {-16.5, -16.0, -15.9, 0.0, 100.0, 115.9, 116.0, 116.5}) {
    for (double a : {-1000.5, -1000.0, -300.0, 0.0, 300.0, 999.9, 1000.0}) {
      for (double b : {-1000.0, -50.0, 0.0, 50.0, 1000.0, 1000.1}) {
        const std::array<double, 3> lab = {l, a, b};
        ASSERT_EQ(&nearest_named_color(lab), &brute_force_nearest(lab))
            << l << " " << a << " " << b;
      }
    }
  }
  // Non-finite input: the first entry, as the brute force (no distance is less than NaN).
  EXPECT_EQ(&nearest_named_color({NAN, 0.0, 0.0}), &colors[0]);
  EXPECT_EQ(&nearest_named_color({50.0, INFINITY, 0.0}),
            &brute_force_nearest({50.0, INFINITY, 0.0}));
}

TEST(ColorNames, NearestIsThreadSafe) {
  // Threads racing to fill the same seed cells (CIELAB points, many outside the sRGB gamut, so
  // most cells are new) get the brute force's answers.
  std::vector<std::array<double, 3>> points;
  std::mt19937 rng(99);
  std::uniform_real_distribution<double> l(0.0, 100.0), ab(-128.0, 128.0);
  for (int i = 0; i < 4000; ++i) points.push_back({l(rng), ab(rng), ab(rng)});
  std::vector<const NamedColor*> expected;
  for (const auto& p : points) expected.push_back(&brute_force_nearest(p));
  std::vector<std::vector<const NamedColor*>> got(4);
  std::vector<std::thread> threads;
  for (auto& g : got) {
    threads.emplace_back([&points, &g] {
      for (const auto& p : points) g.push_back(&nearest_named_color(p));
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : got) EXPECT_EQ(g, expected);
}

TEST(ColorNames, BoundConstantsHold) {
  // The search's lower bound assumes T(h) <= 1.573 for CIEDE2000's hue weighting function T and
  // S_L <= 1 + 0.015|L-50|. T is checked on a 0.001 degree grid; |dT/dh| <= 2.41 * pi/180 < 0.0421
  // per degree, so between grid points T exceeds the grid maximum by under 0.0421 * 0.0005.
  constexpr double kDeg = 3.14159265358979323846 / 180.0;
  double t_max = -1.0, t_min = 2.0;
  for (int i = 0; i < 360000; ++i) {
    const double h = i / 1000.0;
    const double t = 1.0 - 0.17 * std::cos((h - 30.0) * kDeg) + 0.24 * std::cos(2.0 * h * kDeg) +
                     0.32 * std::cos((3.0 * h + 6.0) * kDeg) -
                     0.20 * std::cos((4.0 * h - 63.0) * kDeg);
    t_max = std::max(t_max, t);
    t_min = std::min(t_min, t);
  }
  EXPECT_LT(t_max + 0.0421 * 0.0005, 1.573);
  EXPECT_GT(t_min - 0.0421 * 0.0005, 0.0);  // S_H > 0
  double sl_max = 0.0;
  for (int i = -2000; i <= 12000; ++i) {
    const double l = i / 100.0, u = (l - 50.0) * (l - 50.0);
    const double sl = 1.0 + 0.015 * u / std::sqrt(20.0 + u);
    EXPECT_LE(sl, 1.0 + 0.015 * std::abs(l - 50.0));
    if (i >= 0 && i <= 10000) sl_max = std::max(sl_max, sl);
  }
  EXPECT_NEAR(sl_max, 1.7470, 1e-4);
}

}  // namespace
}  // namespace palette
