// The CSS Color Module 4 named colours, their basic colour classes, and an exact, fast search
// for the named colour nearest (by CIEDE2000) to any colour. docs/colour-names.md lists the table
// and explains where the names and the classes come from.

#include "palette/color_names.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>

#include "palette/color.hpp"

namespace palette {
namespace {

struct Entry {
  std::string_view name;
  std::uint32_t rgb;
  ColorClass color_class;
};

// CSS Color Module 4, section 6.1 "Named Colors", in its (alphabetical) order, as copied by the
// npm package color-name 2.1.1: 148 names, of which 7 are -grey spellings of -gray names and 2
// are the aliases cyan (= aqua) and magenta (= fuchsia). Classes: the X11 colour groups of
// Wikipedia's "Web colors", with two rules of ours (docs/colour-names.md):
//  - the Cyan group goes to green when its HSV hue is under 170 degrees (aquamarine only, at
//    159.8), and to blue otherwise (teal, darkcyan, lightseagreen, cadetblue, darkturquoise,
//    mediumturquoise, turquoise, aqua, cyan, paleturquoise, lightcyan: 174 to 182 degrees);
//  - the Gray/black group goes to black when its CIELAB L* is under 20 (black only, L* = 0; the
//    next darkest, darkslategray, has L* = 31.3), and to grey otherwise (gainsboro included).
constexpr Entry kTable[] = {
    {"aliceblue", 0xf0f8ff, ColorClass::kWhite},
    {"antiquewhite", 0xfaebd7, ColorClass::kWhite},
    {"aqua", 0x00ffff, ColorClass::kBlue},
    {"aquamarine", 0x7fffd4, ColorClass::kGreen},
    {"azure", 0xf0ffff, ColorClass::kWhite},
    {"beige", 0xf5f5dc, ColorClass::kWhite},
    {"bisque", 0xffe4c4, ColorClass::kBrown},
    {"black", 0x000000, ColorClass::kBlack},
    {"blanchedalmond", 0xffebcd, ColorClass::kBrown},
    {"blue", 0x0000ff, ColorClass::kBlue},
    {"blueviolet", 0x8a2be2, ColorClass::kPurple},
    {"brown", 0xa52a2a, ColorClass::kBrown},
    {"burlywood", 0xdeb887, ColorClass::kBrown},
    {"cadetblue", 0x5f9ea0, ColorClass::kBlue},
    {"chartreuse", 0x7fff00, ColorClass::kGreen},
    {"chocolate", 0xd2691e, ColorClass::kBrown},
    {"coral", 0xff7f50, ColorClass::kOrange},
    {"cornflowerblue", 0x6495ed, ColorClass::kBlue},
    {"cornsilk", 0xfff8dc, ColorClass::kBrown},
    {"crimson", 0xdc143c, ColorClass::kRed},
    {"cyan", 0x00ffff, ColorClass::kBlue},
    {"darkblue", 0x00008b, ColorClass::kBlue},
    {"darkcyan", 0x008b8b, ColorClass::kBlue},
    {"darkgoldenrod", 0xb8860b, ColorClass::kBrown},
    {"darkgray", 0xa9a9a9, ColorClass::kGrey},
    {"darkgreen", 0x006400, ColorClass::kGreen},
    {"darkgrey", 0xa9a9a9, ColorClass::kGrey},
    {"darkkhaki", 0xbdb76b, ColorClass::kYellow},
    {"darkmagenta", 0x8b008b, ColorClass::kPurple},
    {"darkolivegreen", 0x556b2f, ColorClass::kGreen},
    {"darkorange", 0xff8c00, ColorClass::kOrange},
    {"darkorchid", 0x9932cc, ColorClass::kPurple},
    {"darkred", 0x8b0000, ColorClass::kRed},
    {"darksalmon", 0xe9967a, ColorClass::kRed},
    {"darkseagreen", 0x8fbc8f, ColorClass::kGreen},
    {"darkslateblue", 0x483d8b, ColorClass::kPurple},
    {"darkslategray", 0x2f4f4f, ColorClass::kGrey},
    {"darkslategrey", 0x2f4f4f, ColorClass::kGrey},
    {"darkturquoise", 0x00ced1, ColorClass::kBlue},
    {"darkviolet", 0x9400d3, ColorClass::kPurple},
    {"deeppink", 0xff1493, ColorClass::kPink},
    {"deepskyblue", 0x00bfff, ColorClass::kBlue},
    {"dimgray", 0x696969, ColorClass::kGrey},
    {"dimgrey", 0x696969, ColorClass::kGrey},
    {"dodgerblue", 0x1e90ff, ColorClass::kBlue},
    {"firebrick", 0xb22222, ColorClass::kRed},
    {"floralwhite", 0xfffaf0, ColorClass::kWhite},
    {"forestgreen", 0x228b22, ColorClass::kGreen},
    {"fuchsia", 0xff00ff, ColorClass::kPurple},
    {"gainsboro", 0xdcdcdc, ColorClass::kGrey},
    {"ghostwhite", 0xf8f8ff, ColorClass::kWhite},
    {"gold", 0xffd700, ColorClass::kYellow},
    {"goldenrod", 0xdaa520, ColorClass::kBrown},
    {"gray", 0x808080, ColorClass::kGrey},
    {"green", 0x008000, ColorClass::kGreen},
    {"greenyellow", 0xadff2f, ColorClass::kGreen},
    {"grey", 0x808080, ColorClass::kGrey},
    {"honeydew", 0xf0fff0, ColorClass::kWhite},
    {"hotpink", 0xff69b4, ColorClass::kPink},
    {"indianred", 0xcd5c5c, ColorClass::kRed},
    {"indigo", 0x4b0082, ColorClass::kPurple},
    {"ivory", 0xfffff0, ColorClass::kWhite},
    {"khaki", 0xf0e68c, ColorClass::kYellow},
    {"lavender", 0xe6e6fa, ColorClass::kPurple},
    {"lavenderblush", 0xfff0f5, ColorClass::kWhite},
    {"lawngreen", 0x7cfc00, ColorClass::kGreen},
    {"lemonchiffon", 0xfffacd, ColorClass::kYellow},
    {"lightblue", 0xadd8e6, ColorClass::kBlue},
    {"lightcoral", 0xf08080, ColorClass::kRed},
    {"lightcyan", 0xe0ffff, ColorClass::kBlue},
    {"lightgoldenrodyellow", 0xfafad2, ColorClass::kYellow},
    {"lightgray", 0xd3d3d3, ColorClass::kGrey},
    {"lightgreen", 0x90ee90, ColorClass::kGreen},
    {"lightgrey", 0xd3d3d3, ColorClass::kGrey},
    {"lightpink", 0xffb6c1, ColorClass::kPink},
    {"lightsalmon", 0xffa07a, ColorClass::kRed},
    {"lightseagreen", 0x20b2aa, ColorClass::kBlue},
    {"lightskyblue", 0x87cefa, ColorClass::kBlue},
    {"lightslategray", 0x778899, ColorClass::kGrey},
    {"lightslategrey", 0x778899, ColorClass::kGrey},
    {"lightsteelblue", 0xb0c4de, ColorClass::kBlue},
    {"lightyellow", 0xffffe0, ColorClass::kYellow},
    {"lime", 0x00ff00, ColorClass::kGreen},
    {"limegreen", 0x32cd32, ColorClass::kGreen},
    {"linen", 0xfaf0e6, ColorClass::kWhite},
    {"magenta", 0xff00ff, ColorClass::kPurple},
    {"maroon", 0x800000, ColorClass::kBrown},
    {"mediumaquamarine", 0x66cdaa, ColorClass::kGreen},
    {"mediumblue", 0x0000cd, ColorClass::kBlue},
    {"mediumorchid", 0xba55d3, ColorClass::kPurple},
    {"mediumpurple", 0x9370db, ColorClass::kPurple},
    {"mediumseagreen", 0x3cb371, ColorClass::kGreen},
    {"mediumslateblue", 0x7b68ee, ColorClass::kPurple},
    {"mediumspringgreen", 0x00fa9a, ColorClass::kGreen},
    {"mediumturquoise", 0x48d1cc, ColorClass::kBlue},
    {"mediumvioletred", 0xc71585, ColorClass::kPink},
    {"midnightblue", 0x191970, ColorClass::kBlue},
    {"mintcream", 0xf5fffa, ColorClass::kWhite},
    {"mistyrose", 0xffe4e1, ColorClass::kWhite},
    {"moccasin", 0xffe4b5, ColorClass::kYellow},
    {"navajowhite", 0xffdead, ColorClass::kBrown},
    {"navy", 0x000080, ColorClass::kBlue},
    {"oldlace", 0xfdf5e6, ColorClass::kWhite},
    {"olive", 0x808000, ColorClass::kGreen},
    {"olivedrab", 0x6b8e23, ColorClass::kGreen},
    {"orange", 0xffa500, ColorClass::kOrange},
    {"orangered", 0xff4500, ColorClass::kOrange},
    {"orchid", 0xda70d6, ColorClass::kPurple},
    {"palegoldenrod", 0xeee8aa, ColorClass::kYellow},
    {"palegreen", 0x98fb98, ColorClass::kGreen},
    {"paleturquoise", 0xafeeee, ColorClass::kBlue},
    {"palevioletred", 0xdb7093, ColorClass::kPink},
    {"papayawhip", 0xffefd5, ColorClass::kYellow},
    {"peachpuff", 0xffdab9, ColorClass::kYellow},
    {"peru", 0xcd853f, ColorClass::kBrown},
    {"pink", 0xffc0cb, ColorClass::kPink},
    {"plum", 0xdda0dd, ColorClass::kPurple},
    {"powderblue", 0xb0e0e6, ColorClass::kBlue},
    {"purple", 0x800080, ColorClass::kPurple},
    {"rebeccapurple", 0x663399, ColorClass::kPurple},
    {"red", 0xff0000, ColorClass::kRed},
    {"rosybrown", 0xbc8f8f, ColorClass::kBrown},
    {"royalblue", 0x4169e1, ColorClass::kBlue},
    {"saddlebrown", 0x8b4513, ColorClass::kBrown},
    {"salmon", 0xfa8072, ColorClass::kRed},
    {"sandybrown", 0xf4a460, ColorClass::kBrown},
    {"seagreen", 0x2e8b57, ColorClass::kGreen},
    {"seashell", 0xfff5ee, ColorClass::kWhite},
    {"sienna", 0xa0522d, ColorClass::kBrown},
    {"silver", 0xc0c0c0, ColorClass::kGrey},
    {"skyblue", 0x87ceeb, ColorClass::kBlue},
    {"slateblue", 0x6a5acd, ColorClass::kPurple},
    {"slategray", 0x708090, ColorClass::kGrey},
    {"slategrey", 0x708090, ColorClass::kGrey},
    {"snow", 0xfffafa, ColorClass::kWhite},
    {"springgreen", 0x00ff7f, ColorClass::kGreen},
    {"steelblue", 0x4682b4, ColorClass::kBlue},
    {"tan", 0xd2b48c, ColorClass::kBrown},
    {"teal", 0x008080, ColorClass::kBlue},
    {"thistle", 0xd8bfd8, ColorClass::kPurple},
    {"tomato", 0xff6347, ColorClass::kOrange},
    {"turquoise", 0x40e0d0, ColorClass::kBlue},
    {"violet", 0xee82ee, ColorClass::kPurple},
    {"wheat", 0xf5deb3, ColorClass::kBrown},
    {"white", 0xffffff, ColorClass::kWhite},
    {"whitesmoke", 0xf5f5f5, ColorClass::kWhite},
    {"yellow", 0xffff00, ColorClass::kYellow},
    {"yellowgreen", 0x9acd32, ColorClass::kGreen},
};
constexpr std::size_t kCount = std::size(kTable);
static_assert(kCount == 148);

constexpr std::string_view kClassNames[kColorClasses] = {
    "black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
};

char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_lower(std::string_view s, std::string_view lower) {
  return s.size() == lower.size() && std::equal(s.begin(), s.end(), lower.begin(),
                                                [](char a, char b) { return lower_ascii(a) == b; });
}

// ---------------------------------------------------------------------------------------------
// Nearest named colour.
//
// The answer is defined by brute force: the first entry (in table order) of minimum
// delta_e2000(query, entry.lab). The search below returns exactly that entry while computing
// delta_e2000 for only a few entries: it skips every entry for which a *lower bound* on ΔE00
// exceeds the best distance found so far. The bounds follow CIEDE2000 term by term (notation of
// Sharma, Wu and Dalal 2005, as in delta_e2000; 1 = the query, 2 = the entry):
//
//   ΔE00² = tl² + Q,  Q = tc² + th² + R_T·tc·th,  tl = ΔL'/S_L, tc = ΔC'/S_C, th = ΔH'/S_H.
//
//  - tl: ΔL' = ΔL* and S_L = 1 + 0.015u/sqrt(20+u) with u = (L̄-50)². As u/sqrt(20+u) <=
//    sqrt(u), S_L <= 1 + 0.015|L̄-50| (1.75 for L̄ in [0,100]; the exact maximum is 1.7470),
//    so |tl| >= |ΔL|/(1 + 0.015|L̄-50|). For a query L* in [-16.6, 116.6] this grows
//    monotonically as the entry's L* moves away from the query's L1 (the numerator of its
//    derivative in |ΔL| is at least 1 - 0.015|L1 - 50| > 0), so the entries that pass it form a
//    window of the table sorted by L*. Queries outside that range get the brute force.
//  - tc: exact: G, a' = (1+G)a, C', S_C = 1 + 0.045·C̄' are computed as delta_e2000 does.
//  - th: ΔH' = 2·sqrt(C1'C2')·sin(Δh'/2), so ΔH'² = 2·C1'C2'·(1 - cos Δh') =
//    2·(C1'C2' - a1'a2' - b1b2), without trigonometry. S_H = 1 + 0.015·C̄'·T with
//    0.362 <= T(h̄') <= 1.5725 for every hue (the unit test checks kTMax = 1.573 on a 0.001 degree
//    grid; |dT/dh| < 0.0421 per degree bounds T between grid points), so S_H > 0 and
//    |th| >= x := |ΔH'| / (1 + 0.015·C̄'·kTMax).
//  - R_T = -sin(2Δθ)·R_C, R_C = 2·sqrt(C̄'^7/(C̄'^7 + 25^7)) < 2 (computed exactly), and
//    Δθ = 30·exp(-((h̄'-275)/25)²) degrees, in (0, 30]: so |R_T| <= ρ := R_C·s with
//    s = sin(60°) in general (hence |R_T| < sqrt(3) < 2), and s = min(sin 60°, 2·Δθ_max in
//    radians) (as sin x <= x) where the hue mean h̄' is known to lie in an interval at distance d
//    from 275 degrees:
//    Δθ_max = 30/(1 + t + t²/2 + t³/6) >= 30·exp(-t), t = (d/25)². That interval comes from the
//    hues of the query and the entry: h' = atan2(b, (1+G)a) lies between atan2(b, a) and
//    atan2(b, 1.5a) whatever G in [0, 0.5] is (scaling a moves the hue monotonically within its
//    quadrant), and delta_e2000's rule for h̄' is followed when the intervals decide its branch.
//    (When C1'C2' = 0, ΔH' = 0 and Q = tc², which every bound below is at most.)
//
// Lower bounds on Q, since R_T <= 0:
//  - in general Q >= tc² + th² - ρ|tc||th| =: f(|th|), a parabola in |th| with its minimum
//    tc²(1 - ρ²/4) >= 0 at |th| = ρ|tc|/2: so Q >= f(x) when x >= ρ|tc|/2, else tc²(1 - ρ²/4).
//    (Q >= 0 as |R_T| < 2: hence also ΔE00 >= |tl|, the lightness bound alone.)
//  - when ΔC' and ΔH' provably have opposite signs, R_T·tc·th >= 0 and Q >= tc² + x². The sign
//    of ΔH' is that of sin(h2' - h1'), of a1·b2 - b1·a2; both signs count as known only when
//    far (relative 1e-9) from zero, well beyond rounding.
//  - cheaply (no square root, to screen entries first): Q >= (1 - ρ/2)(tc² + th²), and
//    tc² + th² >= (ΔC'² + ΔH'²)/S_C² (S_H < S_C, as 0.015·kTMax < 0.045) = (Δa'² + Δb²)/S_C²
//    >= (Δa² + Δb²)/(1 + 0.045·0.75·(C1 + C2))², as a' = (1+G)a with G in [0, 0.5].
//
// An entry is skipped only when its bound exceeds the best distance by a margin (kRelMargin,
// kAbsMargin) far larger than the rounding errors of either computation, so every entry that
// could beat or tie the best is evaluated exactly (hue intervals are widened by kHueMargin).
//
// The search: (1) a seed: the nearest entry to the centre of the query's cell of a coarse CIELAB
// grid, found once per cell (an exact search seeded by the ΔE76-nearest entry) and kept; its
// ΔE00 is the first best; (2) the window of entries passing the lightness bound; (3) the cheap
// bound, then the full bound, of each entry in the window; (4) delta_e2000 for the survivors in
// increasing order of their full bounds, stopping at the first bound over the best. Ties go to
// the lower table index.

constexpr double kDeg = 3.14159265358979323846 / 180.0;
constexpr double k25Pow7 = 6103515625.0;  // 25^7
constexpr double kTMax = 1.573;
constexpr double kSin60 = 0.86602540378443865;
constexpr double kRelMargin = 1e-6, kAbsMargin = 1e-6, kHueMargin = 1e-6, kSignMargin = 1e-9;

double pow7(double v) {
  const double v2 = v * v, v3 = v2 * v;
  return v3 * v3 * v;
}

// Hue angle in degrees in [0, 360), as delta_e2000 computes it.
double hue_deg(double b, double a) {
  if (b == 0.0 && a == 0.0) return 0.0;
  const double h = std::atan2(b, a) / kDeg;
  return h < 0.0 ? h + 360.0 : h;
}

// A colour as the search sees it: CIELAB, chroma C*ab, and the interval of its CIEDE2000 hue h'.
struct Point {
  double l, a, b, c, h_lo, h_hi;
};

Point make_point(const std::array<double, 3>& lab) {
  const double h1 = hue_deg(lab[2], lab[1]), h15 = hue_deg(lab[2], 1.5 * lab[1]);
  return {lab[0],
          lab[1],
          lab[2],
          std::hypot(lab[1], lab[2]),
          std::min(h1, h15) - kHueMargin,
          std::max(h1, h15) + kHueMargin};
}

// Whether a squared lower bound proves ΔE00 > best (best2 = best²), with a safety margin.
bool exceeds(double bound2, double best2) {
  return bound2 * (1.0 - kRelMargin) - kAbsMargin > best2;
}

// Lower bound on tl², i.e. (ΔL'/S_L)².
double lightness_bound2(double l1, double l2) {
  const double dl = l2 - l1;
  const double sl_max = 1.0 + 0.015 * std::abs((l1 + l2) / 2.0 - 50.0);
  return (dl * dl) / (sl_max * sl_max);
}

// Not under ThreadSanitizer (see color.cpp).
#ifdef __SANITIZE_THREAD__
#define PALETTE_NAMES_CLONES
#else
#define PALETTE_NAMES_CLONES __attribute__((target_clones("avx2", "default")))
#endif

// The entries sorted by L*, as columns (for the cheap bounds' vectorised loop).
struct Columns {
  std::array<double, kCount> l, a, b, c, h_lo, h_hi;
};

// For sorted positions [lo, hi): rot[i], an upper bound on sin(2Δθ) for the pair of q and entry
// lo + i (so |R_T| <= R_C·rot[i]), from the hue intervals; and cheap[i], the cheap lower bound on
// ΔE00² (no square root). Branch-free, so that it vectorises.
PALETTE_NAMES_CLONES void cheap_bounds(const Columns& e, const Point& query, std::size_t lo,
                                       std::size_t hi, double* __restrict cheap,
                                       double* __restrict rot) {
  const Point q = query;  // a copy: the stores cannot alias it, so the loop vectorises
  for (std::size_t p = lo; p < hi; ++p) {
    // The interval of h̄', by delta_e2000's rule, where the intervals of h1' - h2' and h1' + h2'
    // decide its branch; otherwise no bound better than sin 60°.
    const double d_lo = q.h_lo - e.h_hi[p], d_hi = q.h_hi - e.h_lo[p];
    const double s_lo = q.h_lo + e.h_lo[p], s_hi = q.h_hi + e.h_hi[p];
    const bool near = (d_lo >= -180.0) & (d_hi <= 180.0);
    const bool far = (d_lo > 180.0) | (d_hi < -180.0);
    const bool below = s_hi < 360.0, above = s_lo >= 360.0;
    const bool decided = near | (far & (below | above));
    const double shift = near ? 0.0 : (below ? 360.0 : -360.0);
    const double mean_lo = (s_lo + shift) / 2.0, mean_hi = (s_hi + shift) / 2.0;
    const double d = std::max(0.0, std::max(mean_lo - 275.0, 275.0 - mean_hi));
    const double t = (d / 25.0) * (d / 25.0);
    const double dtheta_max = 30.0 / (1.0 + t * (1.0 + t * (0.5 + t / 6.0)));
    const double r = decided ? std::min(kSin60, 2.0 * dtheta_max * kDeg) : kSin60;
    rot[p - lo] = r;
    // Lightness bound plus (1 - ρ/2)(Δa² + Δb²)/S_C,max², with ρ <= 2r (R_C < 2), 1 - r > 0.
    const double dl = e.l[p] - q.l, da = e.a[p] - q.a, db = e.b[p] - q.b;
    const double sl_max = 1.0 + 0.015 * std::abs((q.l + e.l[p]) / 2.0 - 50.0);
    const double sc_max = 1.0 + 0.03375 * (q.c + e.c[p]);
    const double sl2 = sl_max * sl_max, sc2 = sc_max * sc_max;
    cheap[p - lo] = (dl * dl * sc2 + (1.0 - r) * (da * da + db * db) * sl2) / (sl2 * sc2);
  }
}

// Lower bound on ΔE00². rot: from cheap_bounds.
double bound2(const Point& q, const Point& e, double rot) {
  const double c_mean = (q.c + e.c) / 2.0;
  const double c_mean7 = pow7(c_mean);
  const double g = 0.5 * (1.0 - std::sqrt(c_mean7 / (c_mean7 + k25Pow7)));
  const double a1p = (1.0 + g) * q.a, a2p = (1.0 + g) * e.a;
  const double c1p = std::sqrt(a1p * a1p + q.b * q.b), c2p = std::sqrt(a2p * a2p + e.b * e.b);
  const double cp_mean = (c1p + c2p) / 2.0;
  const double sc = 1.0 + 0.045 * cp_mean;
  const double sh_max = 1.0 + 0.015 * cp_mean * kTMax;
  const double dc = c2p - c1p;
  const double tc2 = (dc * dc) / (sc * sc);
  const double dh2 = std::max(0.0, 2.0 * (c1p * c2p - a1p * a2p - q.b * e.b));
  const double x2 = dh2 / (sh_max * sh_max);
  const double cross = q.a * e.b - q.b * e.a;  // sign of ΔH'
  double quad;
  if (std::abs(cross) > kSignMargin * q.c * e.c && std::abs(dc) > kSignMargin * (c1p + c2p) &&
      (cross > 0.0) != (dc > 0.0)) {
    quad = tc2 + x2;
  } else {
    const double cp_mean7 = pow7(cp_mean);
    const double rho = 2.0 * std::sqrt(cp_mean7 / (cp_mean7 + k25Pow7)) * rot;
    // f(x) = tc² + x² - ρ|tc|x is increasing for x >= ρ|tc|/2, i.e. x² >= ρ²tc²/4.
    quad = x2 * 4.0 >= rho * rho * tc2 ? tc2 + x2 - rho * std::sqrt(tc2 * x2)
                                       : tc2 * (1.0 - rho * rho / 4.0);
  }
  return lightness_bound2(q.l, e.l) + std::max(0.0, quad);
}

struct Index {
  std::array<NamedColor, kCount> colors;
  std::array<Point, kCount> sorted;        // the entries sorted by L* (ties: table order)
  Columns columns;                         // the same, as columns
  std::array<std::uint8_t, kCount> id;     // sorted position -> table index
  std::array<std::uint8_t, kCount> where;  // table index -> sorted position
};

Index build_index() {
  Index x;
  for (std::size_t i = 0; i < kCount; ++i) {
    x.colors[i] = {kTable[i].name, kTable[i].rgb, kTable[i].color_class,
                   srgb_to_lab(kTable[i].rgb)};
  }
  std::array<std::uint8_t, kCount> order;
  for (std::size_t i = 0; i < kCount; ++i) order[i] = static_cast<std::uint8_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](std::uint8_t u, std::uint8_t v) {
    return x.colors[u].lab[0] < x.colors[v].lab[0];
  });
  for (std::size_t p = 0; p < kCount; ++p) {
    x.id[p] = order[p];
    x.where[order[p]] = static_cast<std::uint8_t>(p);
    const Point e = make_point(x.colors[order[p]].lab);
    x.sorted[p] = e;
    x.columns.l[p] = e.l;
    x.columns.a[p] = e.a;
    x.columns.b[p] = e.b;
    x.columns.c[p] = e.c;
    x.columns.h_lo[p] = e.h_lo;
    x.columns.h_hi[p] = e.h_hi;
  }
  return x;
}

const Index& index() {
  static const Index x = build_index();
  return x;
}

// The definition: the first entry (table index) of minimum delta_e2000(lab, entry).
std::size_t brute_force(const Index& x, const std::array<double, 3>& lab) {
  std::size_t best_id = 0;
  double best = delta_e2000(lab, x.colors[0].lab);
  for (std::size_t i = 1; i < kCount; ++i) {
    const double d = delta_e2000(lab, x.colors[i].lab);
    if (d < best) {
      best = d;
      best_id = i;
    }
  }
  return best_id;
}

// The same answer as brute_force for `lab` with L* in [-16, 116] and |a*|, |b*| <= 1000 (see
// nearest_named_color), q = make_point(lab), searching from the entry at sorted position `seed`.
std::size_t search(const Index& x, const std::array<double, 3>& lab, const Point& q,
                   std::size_t seed) {
  std::size_t best_id = x.id[seed];
  double best = delta_e2000(lab, x.colors[best_id].lab);
  double best2 = best * best;

  // (2) The window [lo, hi) of sorted positions passing the lightness bound.
  const auto mid =
      static_cast<std::size_t>(std::partition_point(x.sorted.begin(), x.sorted.end(),
                                                    [&](const Point& e) { return e.l < q.l; }) -
                               x.sorted.begin());
  std::size_t lo = mid, hi = mid;
  while (lo > 0 && !exceeds(lightness_bound2(q.l, x.sorted[lo - 1].l), best2)) --lo;
  while (hi < kCount && !exceeds(lightness_bound2(q.l, x.sorted[hi].l), best2)) ++hi;

  // (3) The cheap bound, then the full bound; the survivors.
  std::array<double, kCount> cheap, rot;
  cheap_bounds(x.columns, q, lo, hi, cheap.data(), rot.data());
  struct Candidate {
    double bound2;
    std::size_t p;
  };
  std::array<Candidate, kCount> cand;
  std::size_t n = 0;
  for (std::size_t p = lo; p < hi; ++p) {
    if (p == seed || exceeds(cheap[p - lo], best2)) continue;
    const double b2 = bound2(q, x.sorted[p], rot[p - lo]);
    if (!exceeds(b2, best2)) cand[n++] = {b2, p};
  }

  // (4) Exact distances, most promising first.
  std::sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(n),
            [](const Candidate& u, const Candidate& v) { return u.bound2 < v.bound2; });
  for (std::size_t k = 0; k < n; ++k) {
    if (exceeds(cand[k].bound2, best2)) break;
    const std::size_t id = x.id[cand[k].p];
    const double d = delta_e2000(lab, x.colors[id].lab);
    if (d < best || (d == best && id < best_id)) {
      best = d;
      best2 = d * d;
      best_id = id;
    }
  }
  return best_id;
}

// (1) Seeds: a grid over CIELAB, 5 units of L* by 8 of a* and b* (the outer cells extend to
// infinity), each cell holding 1 + the table index of the entry nearest to its centre, or 0 until
// first needed. Filled lazily by whichever thread needs a cell first; racing threads compute and
// store the same value.
constexpr int kGridL = 20, kGridAb = 32;
constexpr double kCellL = 100.0 / kGridL, kCellAb = 256.0 / kGridAb;
std::atomic<std::uint8_t> g_seeds[kGridL * kGridAb * kGridAb];

int grid_cell(double v, double origin, double size, int cells) {
  const double i = std::floor((v - origin) / size);
  return i < 0.0 ? 0 : (i >= cells ? cells - 1 : static_cast<int>(i));
}

std::size_t seed_position(const Index& x, const Point& q) {
  const int il = grid_cell(q.l, 0.0, kCellL, kGridL);
  const int ia = grid_cell(q.a, -128.0, kCellAb, kGridAb);
  const int ib = grid_cell(q.b, -128.0, kCellAb, kGridAb);
  auto& slot = g_seeds[(il * kGridAb + ia) * kGridAb + ib];
  if (const std::uint8_t s = slot.load(std::memory_order_relaxed); s != 0) {
    return x.where[s - 1u];
  }
  const std::array<double, 3> centre = {(il + 0.5) * kCellL, -128.0 + (ia + 0.5) * kCellAb,
                                        -128.0 + (ib + 0.5) * kCellAb};
  const Point c = make_point(centre);
  std::size_t e76 = 0;  // sorted position nearest to the centre by ΔE76
  double e76_d2 = INFINITY;
  for (std::size_t p = 0; p < kCount; ++p) {
    const Point& e = x.sorted[p];
    const double d2 =
        (e.l - c.l) * (e.l - c.l) + (e.a - c.a) * (e.a - c.a) + (e.b - c.b) * (e.b - c.b);
    if (d2 < e76_d2) {
      e76_d2 = d2;
      e76 = p;
    }
  }
  const std::size_t id = search(x, centre, c, e76);
  slot.store(static_cast<std::uint8_t>(id + 1), std::memory_order_relaxed);
  return x.where[id];
}

}  // namespace

std::string_view to_string(ColorClass c) {
  const auto i = static_cast<std::size_t>(c);
  return i < std::size(kClassNames) ? kClassNames[i] : "?";
}

std::optional<ColorClass> parse_color_class(std::string_view name) {
  if (equals_lower(name, "gray")) return ColorClass::kGrey;
  for (std::size_t i = 0; i < std::size(kClassNames); ++i) {
    if (equals_lower(name, kClassNames[i])) return static_cast<ColorClass>(i);
  }
  return std::nullopt;
}

std::span<const NamedColor> css_named_colors() { return index().colors; }

const NamedColor* find_named_color(std::string_view name) {
  const auto& colors = index().colors;
  // The table is sorted by name: binary search with an ASCII case-insensitive comparison.
  auto less = [](std::string_view entry, std::string_view key) {
    return std::lexicographical_compare(
        entry.begin(), entry.end(), key.begin(), key.end(),
        [](char u, char v) { return lower_ascii(u) < lower_ascii(v); });
  };
  const auto it =
      std::lower_bound(colors.begin(), colors.end(), name,
                       [&](const NamedColor& e, std::string_view k) { return less(e.name, k); });
  return it != colors.end() && equals_lower(name, it->name) ? &*it : nullptr;
}

const NamedColor& nearest_named_color(std::uint32_t rgb) {
  return nearest_named_color(srgb_to_lab(rgb & 0xFFFFFF));
}

const NamedColor& nearest_named_color(const std::array<double, 3>& lab) {
  const Index& x = index();
  // The search needs a sensible point: its lightness window relies on the lightness bound growing
  // away from the query's L*, true for L* in [-16.6, 116.6]. Anything else (NaN included: then
  // no distance is less than the first, and the first entry is the answer) gets the definition.
  if (!(lab[0] >= -16.0 && lab[0] <= 116.0 && std::abs(lab[1]) <= 1000.0 &&
        std::abs(lab[2]) <= 1000.0)) {
    return x.colors[brute_force(x, lab)];
  }
  const Point q = make_point(lab);
  return x.colors[search(x, lab, q, seed_position(x, q))];
}

}  // namespace palette
