// Colour conversions. Every transcendental here (sRGB transfer curve, cube roots) is computed
// with plain IEEE arithmetic (Newton/Halley steps from a bit-level guess), never with libm, so a
// colour maps to the same fixed-point coordinates on every machine, compiler and C library.

#include "palette/color.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace palette {
namespace {

// n-th root of x > 0 from a log-domain bit guess and Newton steps (quadratic convergence).
double root_newton(double x, int n, int steps) {
  if (!(x > 0.0)) return 0.0;
  constexpr std::int64_t kOne = 0x3FF0000000000000LL;  // bits of 1.0
  const auto bits = std::bit_cast<std::int64_t>(x);
  double r = std::bit_cast<double>(kOne + (bits - kOne) / n);
  for (int i = 0; i < steps; ++i) {
    double p = 1.0;  // r^(n-1)
    for (int j = 1; j < n; ++j) p = p * r;
    r = (static_cast<double>(n - 1) * r + x / p) / static_cast<double>(n);
  }
  return r;
}

// sRGB transfer curve, decoding: 8-bit value -> linear light in [0,1].
struct LinearTable {
  double v[256];
  LinearTable() {
    for (int i = 0; i < 256; ++i) {
      const double c = i / 255.0;
      if (c <= 0.04045) {
        v[i] = c / 12.92;
      } else {
        const double t = (c + 0.055) / 1.055;   // t^2.4 = (t^(1/5))^12
        const double r = root_newton(t, 5, 8);  // t^(1/5)
        const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
        v[i] = r8 * r4;
      }
    }
  }
};
const LinearTable& linear_table() {
  static const LinearTable table;
  return table;
}

// sRGB transfer curve, encoding: linear light -> 8-bit value (rounded, clamped).
std::uint32_t encode_srgb(double l) {
  double c;
  if (!(l > 0.0)) {
    c = 0.0;
  } else if (l <= 0.0031308) {
    c = 12.92 * l;
  } else if (l >= 1.0) {
    c = 1.0;
  } else {
    const double l5 = l * l * l * l * l;  // l^(1/2.4) = (l^5)^(1/12)
    c = 1.055 * root_newton(l5, 12, 12) - 0.055;
  }
  const double v = std::floor(c * 255.0 + 0.5);
  return static_cast<std::uint32_t>(std::clamp(v, 0.0, 255.0));
}

std::int16_t quantize(double v) {
  const double r = std::floor(v + 0.5);
  return static_cast<std::int16_t>(std::clamp(r, -32768.0, 32767.0));
}

constexpr double kOklabScale = 32640.0;
constexpr double kLabScale = 128.0;
constexpr double kRgbScale = 64.0;

// CIELAB companding with D65 white (as scikit-image's rgb2lab).
constexpr double kXn = 0.95047, kYn = 1.0, kZn = 1.08883;
double lab_f(double t) {
  return t > 0.008856451679035631 ? cbrt_exact(t) : t * 7.787037037037037 + 16.0 / 116.0;
}
double lab_f_inv(double f) {
  return f > 6.0 / 29.0 ? f * f * f : (f - 16.0 / 116.0) / 7.787037037037037;
}

void rgb_to_linear(std::uint32_t rgb, double& r, double& g, double& b) {
  const auto& lin = linear_table().v;
  r = lin[(rgb >> 16) & 0xFF];
  g = lin[(rgb >> 8) & 0xFF];
  b = lin[rgb & 0xFF];
}

void linear_to_lab(double r, double g, double b, double out[3]) {
  const double x = 0.412453 * r + 0.357580 * g + 0.180423 * b;
  const double y = 0.212671 * r + 0.715160 * g + 0.072169 * b;
  const double z = 0.019334 * r + 0.119193 * g + 0.950227 * b;
  const double fx = lab_f(x / kXn), fy = lab_f(y / kYn), fz = lab_f(z / kZn);
  out[0] = 116.0 * fy - 16.0;
  out[1] = 500.0 * (fx - fy);
  out[2] = 200.0 * (fy - fz);
}

// Not under ThreadSanitizer: its instrumentation of the ifunc resolver runs before the runtime
// is set up, and the process crashes at load.
#ifdef __SANITIZE_THREAD__
#define PALETTE_COLOR_CLONES
#else
#define PALETTE_COLOR_CLONES __attribute__((target_clones("avx2", "default")))
#endif

// Cube roots of n values (>= 0; anything else gives 0), in place. A float bit-level guess
// (within ~3%) and three Halley steps (cubic convergence). Plain IEEE arithmetic throughout, so
// every machine gets the same bits, and the loop vectorises.
PALETTE_COLOR_CLONES void cbrt_many(double* v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const double x = v[i];
    const auto xf = static_cast<float>(x);
    std::uint32_t bits;
    std::memcpy(&bits, &xf, sizeof bits);
    bits = bits / 3u + 709921077u;
    float yf;
    std::memcpy(&yf, &bits, sizeof yf);
    double y = yf;
    double y3 = y * y * y;
    y = y * (y3 + 2.0 * x) / (2.0 * y3 + x);
    y3 = y * y * y;
    y = y * (y3 + 2.0 * x) / (2.0 * y3 + x);
    y3 = y * y * y;
    y = y * (y3 + 2.0 * x) / (2.0 * y3 + x);
    v[i] = x > 0.0 ? y : 0.0;
  }
}

constexpr std::size_t kBlock = 64;

// Last stage of a Lab conversion: t = X/Xn etc. and their cube roots -> fixed-point L, a, b.
PALETTE_COLOR_CLONES void lab_stage(const double* tx, const double* ty, const double* tz,
                                    const double* cx, const double* cy, const double* cz,
                                    std::size_t n, std::int16_t* x, std::int16_t* y,
                                    std::int16_t* z) {
  constexpr double kEps = 0.008856451679035631, kK = 7.787037037037037, kC = 16.0 / 116.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double fx = tx[i] > kEps ? cx[i] : tx[i] * kK + kC;
    const double fy = ty[i] > kEps ? cy[i] : ty[i] * kK + kC;
    const double fz = tz[i] > kEps ? cz[i] : tz[i] * kK + kC;
    x[i] = quantize((116.0 * fy - 16.0) * kLabScale);
    y[i] = quantize(500.0 * (fx - fy) * kLabScale);
    z[i] = quantize(200.0 * (fy - fz) * kLabScale);
  }
}

// Last stage of an Oklab conversion: cube roots of l, m, s -> fixed-point L, a, b.
PALETTE_COLOR_CLONES void oklab_stage(const double* l, const double* m, const double* s,
                                      std::size_t n, std::int16_t* x, std::int16_t* y,
                                      std::int16_t* z) {
  for (std::size_t i = 0; i < n; ++i) {
    x[i] =
        quantize((0.2104542553 * l[i] + 0.7936177850 * m[i] - 0.0040720468 * s[i]) * kOklabScale);
    y[i] =
        quantize((1.9779984951 * l[i] - 2.4285922050 * m[i] + 0.4505937099 * s[i]) * kOklabScale);
    z[i] =
        quantize((0.0259040371 * l[i] + 0.7827717662 * m[i] - 0.8086757660 * s[i]) * kOklabScale);
  }
}

// Fixed-point coordinates of n <= kBlock colours, in stages over small arrays so that the
// arithmetic vectorises.
void convert_block(const std::uint32_t* rgb, std::size_t n, ColorSpace space, std::int16_t* x,
                   std::int16_t* y, std::int16_t* z) {
  if (space == ColorSpace::kRgb) {
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = static_cast<std::int16_t>(((rgb[i] >> 16) & 0xFF) * 64);
      y[i] = static_cast<std::int16_t>(((rgb[i] >> 8) & 0xFF) * 64);
      z[i] = static_cast<std::int16_t>((rgb[i] & 0xFF) * 64);
    }
    return;
  }
  const auto& lin = linear_table().v;
  double a[kBlock], b[kBlock], c[kBlock];
  const bool lab = space == ColorSpace::kLab;
  for (std::size_t i = 0; i < n; ++i) {
    const double r = lin[(rgb[i] >> 16) & 0xFF], g = lin[(rgb[i] >> 8) & 0xFF],
                 bl = lin[rgb[i] & 0xFF];
    if (lab) {
      a[i] = (0.412453 * r + 0.357580 * g + 0.180423 * bl) / kXn;
      b[i] = (0.212671 * r + 0.715160 * g + 0.072169 * bl) / kYn;
      c[i] = (0.019334 * r + 0.119193 * g + 0.950227 * bl) / kZn;
    } else {
      a[i] = 0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * bl;
      b[i] = 0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * bl;
      c[i] = 0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * bl;
    }
  }
  double ca[kBlock], cb[kBlock], cc[kBlock];
  std::copy_n(a, n, ca);
  std::copy_n(b, n, cb);
  std::copy_n(c, n, cc);
  cbrt_many(ca, n);
  cbrt_many(cb, n);
  cbrt_many(cc, n);
  if (lab) {
    lab_stage(a, b, c, ca, cb, cc, n, x, y, z);
  } else {
    oklab_stage(ca, cb, cc, n, x, y, z);
  }
}

}  // namespace

double cbrt_exact(double x) {
  double v = x;
  cbrt_many(&v, 1);
  return v;
}

std::optional<ColorSpace> parse_color_space(std::string_view name) {
  if (name == "rgb") return ColorSpace::kRgb;
  if (name == "oklab") return ColorSpace::kOklab;
  if (name == "lab") return ColorSpace::kLab;
  return std::nullopt;
}

std::string_view to_string(ColorSpace space) {
  switch (space) {
    case ColorSpace::kRgb:
      return "rgb";
    case ColorSpace::kOklab:
      return "oklab";
    case ColorSpace::kLab:
      return "lab";
  }
  return "?";
}

double step_units(ColorSpace space) {
  switch (space) {
    case ColorSpace::kRgb:
      return kRgbScale;
    case ColorSpace::kOklab:
      return kOklabScale / 255.0;
    case ColorSpace::kLab:
      return 100.0 * kLabScale / 255.0;
  }
  return 1.0;
}

std::array<std::int16_t, 3> to_space(std::uint32_t rgb, ColorSpace space) {
  std::array<std::int16_t, 3> c;
  convert_block(&rgb, 1, space, &c[0], &c[1], &c[2]);
  return c;
}

void to_space(std::span<const std::uint32_t> rgb, ColorSpace space, std::span<std::int16_t> x,
              std::span<std::int16_t> y, std::span<std::int16_t> z) {
  for (std::size_t i = 0; i < rgb.size(); i += kBlock) {
    convert_block(rgb.data() + i, std::min(kBlock, rgb.size() - i), space, x.data() + i,
                  y.data() + i, z.data() + i);
  }
}

std::uint32_t to_rgb(double x, double y, double z, ColorSpace space) {
  double r = 0, g = 0, b = 0;
  switch (space) {
    case ColorSpace::kRgb: {
      auto ch = [](double v) {
        return static_cast<std::uint32_t>(std::clamp(std::floor(v / kRgbScale + 0.5), 0.0, 255.0));
      };
      return pack_rgb(ch(x), ch(y), ch(z));
    }
    case ColorSpace::kOklab: {
      const double L = x / kOklabScale, A = y / kOklabScale, B = z / kOklabScale;
      const double l_ = L + 0.3963377774 * A + 0.2158037573 * B;
      const double m_ = L - 0.1055613458 * A - 0.0638541728 * B;
      const double s_ = L - 0.0894841775 * A - 1.2914855480 * B;
      const double l = l_ * l_ * l_, m = m_ * m_ * m_, s = s_ * s_ * s_;
      r = +4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s;
      g = -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s;
      b = -0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s;
      break;
    }
    case ColorSpace::kLab: {
      const double L = x / kLabScale, A = y / kLabScale, B = z / kLabScale;
      const double fy = (L + 16.0) / 116.0, fx = fy + A / 500.0, fz = fy - B / 200.0;
      const double X = kXn * lab_f_inv(fx), Y = kYn * lab_f_inv(fy), Z = kZn * lab_f_inv(fz);
      r = 3.240481343 * X - 1.537151516 * Y - 0.498536326 * Z;
      g = -0.969254949 * X + 1.875990001 * Y + 0.041555926 * Z;
      b = 0.055646639 * X - 0.204041338 * Y + 1.057311069 * Z;
      break;
    }
  }
  return pack_rgb(encode_srgb(r), encode_srgb(g), encode_srgb(b));
}

std::array<double, 3> srgb_to_lab(std::uint32_t rgb) {
  double r, g, b;
  rgb_to_linear(rgb, r, g, b);
  std::array<double, 3> out;
  linear_to_lab(r, g, b, out.data());
  return out;
}

double srgb_lightness(std::uint32_t rgb) {
  double r, g, b;
  rgb_to_linear(rgb, r, g, b);
  const double y = 0.212671 * r + 0.715160 * g + 0.072169 * b;
  return 116.0 * lab_f(y / kYn) - 16.0;
}

double delta_e2000(const std::array<double, 3>& lab1, const std::array<double, 3>& lab2) {
  constexpr double kPi = 3.14159265358979323846;
  constexpr double kDeg = kPi / 180.0;
  constexpr double k25pow7 = 6103515625.0;  // 25^7
  auto pow7 = [](double v) {
    const double v2 = v * v, v3 = v2 * v;
    return v3 * v3 * v;
  };
  const auto [l1, a1, b1] = lab1;
  const auto [l2, a2, b2] = lab2;
  // a' stretched by G so that near-neutral colours get their hue differences right.
  // sqrt(x² + y²) rather than std::hypot: no overflow is possible here, and it is far cheaper.
  const double c_mean = (std::sqrt(a1 * a1 + b1 * b1) + std::sqrt(a2 * a2 + b2 * b2)) / 2.0;
  const double g = 0.5 * (1.0 - std::sqrt(pow7(c_mean) / (pow7(c_mean) + k25pow7)));
  const double a1p = (1.0 + g) * a1, a2p = (1.0 + g) * a2;
  const double c1p = std::sqrt(a1p * a1p + b1 * b1), c2p = std::sqrt(a2p * a2p + b2 * b2);
  auto hue = [&](double b, double ap) {
    if (b == 0.0 && ap == 0.0) return 0.0;
    const double h = std::atan2(b, ap) / kDeg;
    return h < 0.0 ? h + 360.0 : h;
  };
  const double h1p = hue(b1, a1p), h2p = hue(b2, a2p);
  const double chroma_product = c1p * c2p;

  const double dl = l2 - l1;
  const double dc = c2p - c1p;
  double dh = 0.0;
  if (chroma_product != 0.0) {
    dh = h2p - h1p;
    if (dh > 180.0) {
      dh -= 360.0;
    } else if (dh < -180.0) {
      dh += 360.0;
    }
  }
  const double d_big_h = 2.0 * std::sqrt(chroma_product) * std::sin(dh * kDeg / 2.0);

  const double l_mean = (l1 + l2) / 2.0;
  const double cp_mean = (c1p + c2p) / 2.0;
  double h_mean = h1p + h2p;
  if (chroma_product != 0.0) {
    if (std::abs(h1p - h2p) <= 180.0) {
      h_mean /= 2.0;
    } else if (h1p + h2p < 360.0) {
      h_mean = (h_mean + 360.0) / 2.0;
    } else {
      h_mean = (h_mean - 360.0) / 2.0;
    }
  }
  const double t =
      1.0 - 0.17 * std::cos((h_mean - 30.0) * kDeg) + 0.24 * std::cos(2.0 * h_mean * kDeg) +
      0.32 * std::cos((3.0 * h_mean + 6.0) * kDeg) - 0.20 * std::cos((4.0 * h_mean - 63.0) * kDeg);
  const double d_theta = 30.0 * std::exp(-((h_mean - 275.0) / 25.0) * ((h_mean - 275.0) / 25.0));
  const double rc = 2.0 * std::sqrt(pow7(cp_mean) / (pow7(cp_mean) + k25pow7));
  const double l50 = (l_mean - 50.0) * (l_mean - 50.0);
  const double sl = 1.0 + 0.015 * l50 / std::sqrt(20.0 + l50);
  const double sc = 1.0 + 0.045 * cp_mean;
  const double sh = 1.0 + 0.015 * cp_mean * t;
  const double rt = -std::sin(2.0 * d_theta * kDeg) * rc;
  const double tl = dl / sl, tc = dc / sc, th = d_big_h / sh;
  return std::sqrt(tl * tl + tc * tc + th * th + rt * tc * th);
}

}  // namespace palette
