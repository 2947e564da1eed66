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

void linear_to_oklab(double r, double g, double b, double out[3]) {
  const double l = 0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b;
  const double m = 0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b;
  const double s = 0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b;
  const double l_ = cbrt_exact(l), m_ = cbrt_exact(m), s_ = cbrt_exact(s);
  out[0] = 0.2104542553 * l_ + 0.7936177850 * m_ - 0.0040720468 * s_;
  out[1] = 1.9779984951 * l_ - 2.4285922050 * m_ + 0.4505937099 * s_;
  out[2] = 0.0259040371 * l_ + 0.7827717662 * m_ - 0.8086757660 * s_;
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

}  // namespace

double cbrt_exact(double x) {
  if (!(x > 0.0)) return 0.0;
  constexpr std::int64_t kOne = 0x3FF0000000000000LL;
  const auto bits = std::bit_cast<std::int64_t>(x);
  double y = std::bit_cast<double>(kOne + (bits - kOne) / 3);  // within ~4% of the root
  for (int i = 0; i < 2; ++i) {  // Halley, cubic convergence: 4% -> 1e-4 -> 1e-12
    const double y3 = y * y * y;
    y = y * (y3 + 2.0 * x) / (2.0 * y3 + x);
  }
  return y;
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
  if (space == ColorSpace::kRgb) {
    return {static_cast<std::int16_t>(((rgb >> 16) & 0xFF) * 64),
            static_cast<std::int16_t>(((rgb >> 8) & 0xFF) * 64),
            static_cast<std::int16_t>((rgb & 0xFF) * 64)};
  }
  double r, g, b, c[3];
  rgb_to_linear(rgb, r, g, b);
  if (space == ColorSpace::kOklab) {
    linear_to_oklab(r, g, b, c);
    return {quantize(c[0] * kOklabScale), quantize(c[1] * kOklabScale),
            quantize(c[2] * kOklabScale)};
  }
  linear_to_lab(r, g, b, c);
  return {quantize(c[0] * kLabScale), quantize(c[1] * kLabScale), quantize(c[2] * kLabScale)};
}

void to_space(std::span<const std::uint32_t> rgb, ColorSpace space, std::span<std::int16_t> x,
              std::span<std::int16_t> y, std::span<std::int16_t> z) {
  for (std::size_t i = 0; i < rgb.size(); ++i) {
    const auto c = to_space(rgb[i], space);
    x[i] = c[0];
    y[i] = c[1];
    z[i] = c[2];
  }
}

std::uint32_t to_rgb(double x, double y, double z, ColorSpace space) {
  double r, g, b;
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
    case ColorSpace::kLab:
    default: {
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

}  // namespace palette
