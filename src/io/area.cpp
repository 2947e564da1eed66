// INTER_AREA shrinking, bit for bit what cv::resize gives, with the work spread over SIMD lanes.
//
// OpenCV's area resize by a non-integer ratio (resizeArea_ in imgproc/src/resize.cpp) is plain
// scalar code: for every source row, every destination pixel's channels are a running float sum
// of source samples times tap weights, kept in memory, so each tap waits on the one before it.
// For a 3640x2400 RGBA PNG shrunk to 256 px that is 19-24 ms, as long as decoding it. Here the
// same sums are made in the same order with the same float operations (so the results are the
// same bits): a pixel's channels side by side in one vector, and four source rows at a time, so
// that four independent chains of additions overlap instead of waiting on each other.
//
// Integer ratios on both axes take OpenCV's other formula (resizeAreaFast: a block's integer sum
// times 1 / area), scalar there too except for 2x2: the block sums are made here with the rows
// added 16 samples at a time. 2x2 blocks, 16-bit integer ratios and enlarging go to cv::resize.

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "codecs.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace palette::codec {

cv::Mat premultiply_alpha(const cv::Mat& rgba) {
  CV_Assert(rgba.type() == CV_8UC4);
  cv::Mat pre(rgba.size(), CV_16UC4);
  for (int y = 0; y < rgba.rows; ++y) {
    const std::uint8_t* s = rgba.ptr<std::uint8_t>(y);
    auto* d = pre.ptr<std::uint16_t>(y);
    for (int x = 0; x < rgba.cols * 4; x += 4) {
      const std::uint32_t a = s[x + 3];
      d[x] = static_cast<std::uint16_t>(s[x] * a);
      d[x + 1] = static_cast<std::uint16_t>(s[x + 1] * a);
      d[x + 2] = static_cast<std::uint16_t>(s[x + 2] * a);
      d[x + 3] = static_cast<std::uint16_t>(a * 255);
    }
  }
  return pre;
}

namespace {

#if defined(__SSE2__)

// The path cv::resize takes for a shrink by INTER_AREA: its general one (ratios of at least 1,
// not both integers), the one for integer ratios (each output pixel the mean of a kx x ky block
// of source pixels), or another (enlarging). The ratios are worked out as cv::resize does.
enum class Path { kGeneral, kInteger, kOther };
struct Plan {
  Path path = Path::kOther;
  int kx = 0, ky = 0;
};

Plan plan(cv::Size from, cv::Size to) {
  Plan p;
  if (to.width <= 0 || to.height <= 0 || from.width <= 0 || from.height <= 0) return p;
  const double scale_x = 1. / (static_cast<double>(to.width) / from.width);
  const double scale_y = 1. / (static_cast<double>(to.height) / from.height);
  if (scale_x < 1 || scale_y < 1) return p;
  const double ix = std::nearbyint(scale_x), iy = std::nearbyint(scale_y);
  if (std::abs(scale_x - ix) < DBL_EPSILON && std::abs(scale_y - iy) < DBL_EPSILON) {
    p.path = Path::kInteger;
    p.kx = static_cast<int>(ix);
    p.ky = static_cast<int>(iy);
  } else {
    p.path = Path::kGeneral;
  }
  return p;
}

// The taps of one axis: destination index d is the sum over t in [first[d], first[d + 1]) of
// source sample src[t] times weight[t]. Worked out as OpenCV works out its tables
// (computeResizeAreaTab), in the same double arithmetic, so that the float weights are the same:
// a cell of `scale` source samples from d * scale, partly covered samples at its ends weighted by
// how much of them it covers, everything divided by the cell's width (clipped at the image end).
struct Taps {
  std::vector<int> first, src;
  std::vector<float> weight;
};

Taps area_taps(int from, int to, double scale) {
  Taps t;
  t.first.reserve(static_cast<std::size_t>(to) + 1);
  t.src.reserve(2 * static_cast<std::size_t>(from));
  t.weight.reserve(2 * static_cast<std::size_t>(from));
  auto add = [&](int s, float w) {
    t.src.push_back(s);
    t.weight.push_back(w);
  };
  for (int d = 0; d < to; ++d) {
    t.first.push_back(static_cast<int>(t.src.size()));
    const double lo = d * scale, hi = lo + scale;
    const double cell = std::min(scale, from - lo);
    int s1 = static_cast<int>(std::ceil(lo));
    int s2 = std::min(static_cast<int>(std::floor(hi)), from - 1);
    s1 = std::min(s1, s2);
    if (s1 - lo > 1e-3) add(s1 - 1, static_cast<float>((s1 - lo) / cell));
    for (int s = s1; s < s2; ++s) add(s, static_cast<float>(1.0 / cell));
    if (hi - s2 > 1e-3) add(s2, static_cast<float>(std::min(std::min(hi - s2, 1.), cell) / cell));
  }
  t.first.push_back(static_cast<int>(t.src.size()));
  return t;
}

// A source pixel's kChannels bytes as four floats (lanes past them: whatever, never stored). Four
// bytes are read, one past a 3-byte pixel, except with kExact (for the last pixel of a row).
template <int kChannels, bool kExact = false>
struct LoadU8 {
  static __m128 at(const std::uint8_t* row, int s) {
    std::int32_t v = 0;
    std::memcpy(&v, row + std::size_t{kChannels} * static_cast<std::size_t>(s),
                kExact ? kChannels : 4);
    const __m128i z = _mm_setzero_si128();
    return _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(v), z), z));
  }
};
struct LoadU16x4 {
  static __m128 at(const std::uint8_t* row, int s) {
    const __m128i v = _mm_loadl_epi64(
        reinterpret_cast<const __m128i*>(row + std::size_t{8} * static_cast<std::size_t>(s)));
    return _mm_cvtepi32_ps(_mm_unpacklo_epi16(v, _mm_setzero_si128()));
  }
};
// 8-bit RGBA read as the premultiplied (r*a, g*a, b*a, a*255) of premultiply_alpha(): each product
// is at most 65025, so 16-bit lanes hold it exactly.
struct LoadPremultiplied {
  static __m128 at(const std::uint8_t* row, int s) {
    std::int32_t v;
    std::memcpy(&v, row + std::size_t{4} * static_cast<std::size_t>(s), 4);
    const __m128i z = _mm_setzero_si128();
    const __m128i x = _mm_unpacklo_epi8(_mm_cvtsi32_si128(v), z);  // r g b a, 16 bits
    const __m128i a = _mm_shufflelo_epi16(x, _MM_SHUFFLE(3, 3, 3, 3));
    const __m128i m = _mm_or_si128(_mm_and_si128(a, _mm_set_epi16(0, 0, 0, 0, 0, -1, -1, -1)),
                                   _mm_set_epi16(0, 0, 0, 0, 255, 0, 0, 0));
    return _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_mullo_epi16(x, m), z));
  }
};

// buf[r][4d..4d+3] = the horizontal sums of destination pixel d over source row rows[r], for
// destination pixels [d0, d1): 0 + s*w + s*w + ..., tap by tap, as OpenCV adds them.
template <class Load>
void horizontal(const Taps& x, const std::uint8_t* const rows[4], float* const buf[4], int d0,
                int d1) {
  for (int d = d0; d < d1; ++d) {
    __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int t = x.first[d]; t < x.first[d + 1]; ++t) {
      const __m128 w = _mm_set1_ps(x.weight[t]);
      const int s = x.src[t];
      a0 = _mm_add_ps(a0, _mm_mul_ps(Load::at(rows[0], s), w));
      a1 = _mm_add_ps(a1, _mm_mul_ps(Load::at(rows[1], s), w));
      a2 = _mm_add_ps(a2, _mm_mul_ps(Load::at(rows[2], s), w));
      a3 = _mm_add_ps(a3, _mm_mul_ps(Load::at(rows[3], s), w));
    }
    _mm_storeu_ps(buf[0] + 4 * d, a0);
    _mm_storeu_ps(buf[1] + 4 * d, a1);
    _mm_storeu_ps(buf[2] + 4 * d, a2);
    _mm_storeu_ps(buf[3] + 4 * d, a3);
  }
}

enum class Kind { kU8x3, kU8x4, kU16x4, kPremultiplied };

// The shrink of `src` (its type given by `kind`) into `out` (CV_8UC3, CV_8UC4 or CV_16UC4).
void shrink(const cv::Mat& src, cv::Mat& out, Kind kind) {
  const cv::Size from = src.size(), to = out.size();
  const Taps x = area_taps(from.width, to.width, 1. / (static_cast<double>(to.width) / from.width));
  const Taps y =
      area_taps(from.height, to.height, 1. / (static_cast<double>(to.height) / from.height));
  const std::size_t row_floats = 4 * static_cast<std::size_t>(to.width);
  // Four source rows' horizontal sums (rows block .. block + 3), then the vertical sum.
  std::vector<float> store(5 * row_floats);
  float* const buf[4] = {store.data(), store.data() + row_floats, store.data() + 2 * row_floats,
                         store.data() + 3 * row_floats};
  float* const sum = store.data() + 4 * row_floats;
  int block = -8;
  for (int dy = 0; dy < to.height; ++dy) {
    for (int t = y.first[dy]; t < y.first[dy + 1]; ++t) {
      const int sy = y.src[t];
      if (sy < block || sy >= block + 4) {
        block = sy;
        const std::uint8_t* rows[4];
        for (int r = 0; r < 4; ++r)
          rows[r] = src.ptr<std::uint8_t>(std::min(sy + r, from.height - 1));
        switch (kind) {
          case Kind::kU8x3: {
            // The last source pixel (only ever in the last destination pixel's taps) is read
            // without the byte past it.
            horizontal<LoadU8<3>>(x, rows, buf, 0, to.width - 1);
            horizontal<LoadU8<3, true>>(x, rows, buf, to.width - 1, to.width);
            break;
          }
          case Kind::kU8x4:
            horizontal<LoadU8<4>>(x, rows, buf, 0, to.width);
            break;
          case Kind::kU16x4:
            horizontal<LoadU16x4>(x, rows, buf, 0, to.width);
            break;
          case Kind::kPremultiplied:
            horizontal<LoadPremultiplied>(x, rows, buf, 0, to.width);
            break;
        }
      }
      const float* b = buf[sy - block];
      const __m128 beta = _mm_set1_ps(y.weight[t]);
      if (t == y.first[dy]) {
        for (std::size_t i = 0; i < row_floats; i += 4) {
          _mm_storeu_ps(sum + i, _mm_mul_ps(beta, _mm_loadu_ps(b + i)));
        }
      } else {
        for (std::size_t i = 0; i < row_floats; i += 4) {
          _mm_storeu_ps(sum + i,
                        _mm_add_ps(_mm_loadu_ps(sum + i), _mm_mul_ps(beta, _mm_loadu_ps(b + i))));
        }
      }
    }
    if (y.first[dy] == y.first[dy + 1]) std::fill(sum, sum + row_floats, 0.f);
    // saturate_cast: rounded to nearest, ties to even (cvRound), then clamped.
    if (out.depth() == CV_16U) {
      auto* d = out.ptr<std::uint16_t>(dy);
      for (std::size_t i = 0; i < row_floats; i += 4) {
        alignas(16) std::int32_t v[4];
        _mm_store_si128(reinterpret_cast<__m128i*>(v), _mm_cvtps_epi32(_mm_loadu_ps(sum + i)));
        for (int c = 0; c < 4; ++c)
          d[i + c] = static_cast<std::uint16_t>(std::clamp(v[c], 0, 65535));
      }
    } else {
      const int cn = out.channels();
      auto* d = out.ptr<std::uint8_t>(dy);
      for (int px = 0; px < to.width; ++px) {
        const __m128i v = _mm_cvtps_epi32(_mm_loadu_ps(sum + 4 * static_cast<std::size_t>(px)));
        const __m128i p = _mm_packus_epi16(_mm_packs_epi32(v, v), v);
        const std::int32_t bytes = _mm_cvtsi128_si32(p);
        std::memcpy(d + static_cast<std::size_t>(px) * cn, &bytes, static_cast<std::size_t>(cn));
      }
    }
  }
}

// cv::resize's integer-ratio shrink of 8-bit pixels (resizeAreaFast) for blocks other than 2x2
// (its own vectorised case, with a different rounding): the block's samples summed as integers,
// the sum times the float 1 / (kx * ky), rounded as saturate_cast rounds. Integer sums come out
// the same in any order, so the rows of a block are added up first, 16 samples at a time (in
// 16-bit lanes while ky * 255 fits), then each output pixel's kx columns. The source must be
// kx * out.cols by ky * out.rows, and 255 * kx * ky must fit in an int (as OpenCV's sum must).
template <class Acc>
void shrink_integer(const cv::Mat& src, cv::Mat& out, int kx, int ky) {
  const int cn = src.channels();
  const std::size_t n = static_cast<std::size_t>(src.cols) * static_cast<std::size_t>(cn);
  std::vector<Acc> acc(n);
  const float scale = 1.f / static_cast<float>(kx * ky);
  const __m128i z = _mm_setzero_si128();
  auto add = [](Acc* a, __m128i v) {
    auto* p = reinterpret_cast<__m128i*>(a);
    _mm_storeu_si128(p, _mm_add_epi32(_mm_loadu_si128(p), v));
  };
  for (int dy = 0; dy < out.rows; ++dy) {
    std::fill(acc.begin(), acc.end(), Acc{0});
    for (int r = 0; r < ky; ++r) {
      const std::uint8_t* s = src.ptr<std::uint8_t>(dy * ky + r);
      std::size_t i = 0;
      for (; i + 16 <= n; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
        const __m128i lo = _mm_unpacklo_epi8(v, z), hi = _mm_unpackhi_epi8(v, z);
        auto* a = reinterpret_cast<__m128i*>(acc.data() + i);
        if constexpr (sizeof(Acc) == 2) {
          _mm_storeu_si128(a, _mm_add_epi16(_mm_loadu_si128(a), lo));
          _mm_storeu_si128(a + 1, _mm_add_epi16(_mm_loadu_si128(a + 1), hi));
        } else {
          add(acc.data() + i, _mm_unpacklo_epi16(lo, z));
          add(acc.data() + i + 4, _mm_unpackhi_epi16(lo, z));
          add(acc.data() + i + 8, _mm_unpacklo_epi16(hi, z));
          add(acc.data() + i + 12, _mm_unpackhi_epi16(hi, z));
        }
      }
      for (; i < n; ++i) acc[i] = static_cast<Acc>(acc[i] + s[i]);
    }
    auto* d = out.ptr<std::uint8_t>(dy);
    for (int dx = 0; dx < out.cols; ++dx) {
      const Acc* a = acc.data() + static_cast<std::size_t>(dx) * kx * cn;
      for (int c = 0; c < cn; ++c) {
        std::uint32_t sum = 0;
        for (int k = 0; k < kx; ++k) sum += a[static_cast<std::size_t>(k) * cn + c];
        const float mean = static_cast<float>(static_cast<int>(sum)) * scale;
        const int v = static_cast<int>(std::nearbyint(mean));
        d[static_cast<std::size_t>(dx) * cn + c] = static_cast<std::uint8_t>(std::clamp(v, 0, 255));
      }
    }
  }
}

#endif  // __SSE2__

}  // namespace

cv::Mat resize_area(const cv::Mat& src, cv::Size to) {
  cv::Mat out;
#if defined(__SSE2__)
  const int type = src.type();
  const Plan p = plan(src.size(), to);
  if ((type == CV_8UC3 || type == CV_8UC4 || type == CV_16UC4) && p.path == Path::kGeneral) {
    out.create(to, type);
    shrink(src, out, type == CV_8UC3 ? Kind::kU8x3 : type == CV_8UC4 ? Kind::kU8x4 : Kind::kU16x4);
    return out;
  }
  if ((type == CV_8UC3 || type == CV_8UC4) && p.path == Path::kInteger &&
      !(p.kx == 2 && p.ky == 2) && std::int64_t{p.kx} * p.ky <= INT_MAX / 255 &&
      std::int64_t{p.kx} * to.width == src.cols && std::int64_t{p.ky} * to.height == src.rows) {
    out.create(to, type);
    if (p.ky * 255 <= 0xFFFF) {
      shrink_integer<std::uint16_t>(src, out, p.kx, p.ky);
    } else {
      shrink_integer<std::uint32_t>(src, out, p.kx, p.ky);
    }
    return out;
  }
#endif
  cv::resize(src, out, to, 0, 0, cv::INTER_AREA);
  return out;
}

cv::Mat resize_area_premultiplied(const cv::Mat& rgba, cv::Size to) {
  CV_Assert(rgba.type() == CV_8UC4);
  cv::Mat out;
#if defined(__SSE2__)
  if (plan(rgba.size(), to).path == Path::kGeneral) {
    out.create(to, CV_16UC4);
    shrink(rgba, out, Kind::kPremultiplied);
    return out;
  }
#endif
  cv::resize(premultiply_alpha(rgba), out, to, 0, 0, cv::INTER_AREA);
  return out;
}

}  // namespace palette::codec
