// PNG. The common case goes through our own reader (decode_png_fast): the chunks parsed and
// checked here, the image data inflated in one call by libdeflate (five times zlib's speed on
// large photos), the rows unfiltered with SSE2 where there is one and converted to 8-bit RGB or
// RGBA. Whatever it does not take (a CRC or stream error, an unusual chunk layout, a size over the
// limits) goes to libpng (decode_png_libpng), which reports it as before: the two give the same
// pixels wherever both decode (tests and fuzz_png compare them).
//
// libpng: palette, grey and low bit depths expanded, tRNS made alpha, 16-bit scaled to 8. It
// reports errors by longjmp, so the reading happens in a function that holds no object with a
// destructor between setjmp and the last libpng call.

#include <libdeflate.h>
#include <png.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

#include "codecs.hpp"
#include "palette/error.hpp"

namespace palette::codec {
namespace {

struct Source {
  const std::uint8_t* data;
  std::size_t size, pos;
  char message[200];
  std::size_t alloc_limit;  // the largest single allocation libpng may make
  std::size_t refused;      // the size of an allocation refused (0: none)
};

// libpng allocates a chunk's declared length before reading it (a 155-byte file whose iTXt
// claims 1.7 GB had 1.7 GB allocated and zeroed, 7 s). Nothing it needs can be larger than the
// whole file (a chunk's data) or a few rows (row buffers, interlacing): larger requests fail,
// and libpng reports them as out of memory, which we report as what they are.
extern "C" png_voidp png_malloc_cb(png_structp png, png_alloc_size_t n) {
  auto* src = static_cast<Source*>(png_get_mem_ptr(png));
  if (n > src->alloc_limit) {
    src->refused = n;
    return nullptr;
  }
  return std::malloc(n);
}
extern "C" void png_free_cb(png_structp, png_voidp p) { std::free(p); }

extern "C" void png_read_cb(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<Source*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) {
    std::snprintf(src->message, sizeof src->message, "truncated PNG");
    png_longjmp(png, 1);
  }
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

extern "C" void png_error_cb(png_structp png, png_const_charp msg) {
  auto* src = static_cast<Source*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof src->message, "corrupt PNG: %s", msg);
  png_longjmp(png, 1);
}

extern "C" void png_warning_cb(png_structp, png_const_charp) {}

struct Header {
  png_uint_32 width = 0, height = 0;
  int channels = 0;
  std::uint64_t max_pixels = 0;
  bool over_limit = false;  // the size in IHDR is over max_pixels: nothing else was set up
};

// Step 1: read the header and set up the transforms. Returns false on a libpng error.
bool read_header(png_structp png, png_infop info, Header& h) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(png, info, &h.width, &h.height, &bit_depth, &color_type, nullptr, nullptr, nullptr);
  if (static_cast<std::uint64_t>(h.width) * h.height > h.max_pixels) {
    h.over_limit = true;
    return true;
  }
  png_set_expand(png);  // palette -> RGB, grey < 8 bits -> 8 bits, tRNS -> alpha
  if (bit_depth == 16) png_set_scale_16(png);
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
    png_set_gray_to_rgb(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  h.channels = png_get_channels(png, info);
  return true;
}

// Step 2: read the pixels into `rows`. Returns false on a libpng error.
bool read_pixels(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  return true;
}

// Step 3: the chunks after the pixels. A file that ends right after complete image data (no
// IEND) still has every pixel, so errors here are ignored.
void read_end(png_structp png, png_infop info) {
  if (setjmp(png_jmpbuf(png))) return;
  png_read_end(png, info);
}

}  // namespace

cv::Mat decode_png_libpng(std::span<const std::uint8_t> bytes, std::uint64_t max_pixels) {
  // Row buffers hold at most 8 bytes a pixel (16-bit RGBA), twice for interlacing; the width
  // is IHDR's (libpng refuses one over max_pixels, set below, before allocating rows).
  const std::uint64_t ihdr_width =
      bytes.size() >= 24
          ? (std::uint64_t{bytes[16]} << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19]
          : 0;
  Source src{bytes.data(), bytes.size(), 0, {}, 0, 0};
  src.alloc_limit = static_cast<std::size_t>(bytes.size() + (std::uint64_t{1} << 20) +
                                             16 * std::min(ihdr_width, max_pixels));
  png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &src, png_error_cb,
                                             png_warning_cb, &src, png_malloc_cb, png_free_cb);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    throw Error("cannot initialise the PNG decoder");
  }
  struct Guard {
    png_structp* png;
    png_infop* info;
    ~Guard() { png_destroy_read_struct(png, info, nullptr); }
  } guard{&png, &info};
  png_set_read_fn(png, &src, png_read_cb);
  png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_DEFAULT);
#ifdef PNG_IGNORE_ADLER32
  // Chunk CRCs already catch corrupt data; the zlib checksum on top costs ~5% of the decode.
  png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif

  // libpng's own limits on what a header may claim (its defaults allow a million by a
  // million), and on a single chunk held in memory (iCCP, zTXt, ...).
  const auto side = static_cast<png_uint_32>(std::min<std::uint64_t>(max_pixels, 0x7FFFFFFF));
  png_set_user_limits(png, side, side);
  png_set_chunk_malloc_max(png, 8u << 20);
  Header h;
  h.max_pixels = max_pixels;
  auto fail = [&] {
    if (src.refused) {
      throw Error("corrupt PNG: a chunk or row of " + std::to_string(src.refused) +
                  " bytes in a file of " + std::to_string(bytes.size()));
    }
    throw Error(src.message);
  };
  if (!read_header(png, info, h)) fail();
  if (h.over_limit) check_pixels(h.width, h.height, max_pixels);
  if (h.channels != 3 && h.channels != 4) throw Error("unsupported PNG layout");
  cv::Mat out(static_cast<int>(h.height), static_cast<int>(h.width),
              h.channels == 4 ? CV_8UC4 : CV_8UC3);
  std::vector<png_bytep> rows(h.height);
  for (png_uint_32 y = 0; y < h.height; ++y) rows[y] = out.ptr<png_byte>(static_cast<int>(y));
  if (!read_pixels(png, rows.data())) fail();
  read_end(png, info);
  return out;
}

namespace {

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

constexpr std::uint32_t chunk_type(const char (&s)[5]) {
  return (std::uint32_t(std::uint8_t(s[0])) << 24) | (std::uint32_t(std::uint8_t(s[1])) << 16) |
         (std::uint32_t(std::uint8_t(s[2])) << 8) | std::uint8_t(s[3]);
}
constexpr std::uint32_t kIHDR = chunk_type("IHDR"), kPLTE = chunk_type("PLTE"),
                        kIDAT = chunk_type("IDAT"), kIEND = chunk_type("IEND"),
                        kTRNS = chunk_type("tRNS");

// The largest chunk other than IDAT that libpng accepts (png_set_chunk_malloc_max above); a
// larger one is its error to report.
constexpr std::uint32_t kMaxChunk = 8u << 20;

// A 16-bit sample scaled to 8 bits exactly as libpng's png_set_scale_16 does (pngrtran.c,
// png_do_scale_16_to_8): round(v * 255 / 65535).
inline std::uint8_t scale16(std::uint8_t hi, std::uint8_t lo) {
  const std::int32_t tmp = hi;
  return static_cast<std::uint8_t>(tmp + (((std::int32_t{lo} - tmp + 128) * 65535) >> 24));
}

struct Format {
  std::uint32_t width = 0, height = 0;
  int depth = 0, color = 0, samples = 0;  // samples per pixel
  bool interlaced = false;
  int bpp = 0;                     // bytes per complete pixel, at least 1 (the filters' unit)
  int out_channels = 3;            // 4 with an alpha channel or tRNS
  std::uint8_t plte[256][3] = {};  // unused entries stay black, as in libpng
  std::uint8_t trns_alpha[256];    // palette alpha (255 past the tRNS entries)
  bool has_trns = false;
  std::uint16_t trns[3] = {};  // grey or RGB key, raw sample values

  std::uint64_t row_bytes(std::uint64_t pixels) const {
    return (pixels * static_cast<std::uint64_t>(samples * depth) + 7) / 8;
  }
};

// One unfiltered row of `n` pixels (`s`) to 8-bit RGB or RGBA (`d`, f.out_channels a pixel).
void convert_row(const Format& f, const std::uint8_t* s, std::uint32_t n, std::uint8_t* d) {
  const int oc = f.out_channels;
  if (f.depth == 8 && !f.has_trns && (f.color == 2 || f.color == 6)) {  // interlaced
    std::memcpy(d, s, std::size_t{n} * static_cast<std::size_t>(oc));
    return;
  }
  if (f.depth == 16 && !f.has_trns && (f.color == 2 || f.color == 6)) {
    for (std::size_t i = 0, e = std::size_t{n} * static_cast<std::size_t>(oc); i < e; ++i) {
      d[i] = scale16(s[2 * i], s[2 * i + 1]);
    }
    return;
  }
  if (f.depth < 8) {  // grey or palette, packed from the high bits
    const int depth = f.depth;
    const unsigned mask = (1u << depth) - 1;
    const unsigned factor = depth == 1 ? 255 : depth == 2 ? 85 : depth == 4 ? 17 : 1;
    for (std::uint32_t x = 0; x < n; ++x) {
      const std::uint64_t bit = std::uint64_t{x} * static_cast<std::uint64_t>(depth);
      const unsigned v = (s[bit >> 3] >> (8 - depth - static_cast<int>(bit & 7))) & mask;
      std::uint8_t* p = d + std::size_t{x} * static_cast<std::size_t>(oc);
      if (f.color == 3) {
        p[0] = f.plte[v][0];
        p[1] = f.plte[v][1];
        p[2] = f.plte[v][2];
        if (oc == 4) p[3] = f.trns_alpha[v];
      } else {
        p[0] = p[1] = p[2] = static_cast<std::uint8_t>(v * factor);
        if (oc == 4) p[3] = v == f.trns[0] ? 0 : 255;
      }
    }
    return;
  }
  const bool wide = f.depth == 16;
  const int step = wide ? 2 : 1;
  auto sample = [&](const std::uint8_t* q) { return wide ? scale16(q[0], q[1]) : q[0]; };
  auto raw = [&](const std::uint8_t* q) -> unsigned { return wide ? (q[0] << 8) | q[1] : q[0]; };
  for (std::uint32_t x = 0; x < n; ++x) {
    const std::uint8_t* q = s + std::size_t{x} * static_cast<std::size_t>(f.samples * step);
    std::uint8_t* p = d + std::size_t{x} * static_cast<std::size_t>(oc);
    switch (f.color) {
      case 0:  // grey
        p[0] = p[1] = p[2] = sample(q);
        if (oc == 4) p[3] = raw(q) == f.trns[0] ? 0 : 255;
        break;
      case 2:  // RGB with a tRNS key (without one: the copies above)
        p[0] = sample(q);
        p[1] = sample(q + step);
        p[2] = sample(q + 2 * step);
        p[3] = raw(q) == f.trns[0] && raw(q + step) == f.trns[1] && raw(q + 2 * step) == f.trns[2]
                   ? 0
                   : 255;
        break;
      case 3:  // palette, 8 bits
        p[0] = f.plte[q[0]][0];
        p[1] = f.plte[q[0]][1];
        p[2] = f.plte[q[0]][2];
        if (oc == 4) p[3] = f.trns_alpha[q[0]];
        break;
      case 4:  // grey + alpha
        p[0] = p[1] = p[2] = sample(q);
        p[3] = sample(q + step);
        break;
      default:
        break;
    }
  }
}

// Reverses the PNG row filters: `out` = the `n` bytes of `in` unfiltered, given `prior` (the row
// above, unfiltered; zeros for the first). `bpp` is the distance to the byte of the pixel on the
// left. `in` and `prior` may be read up to 8 bytes past their ends (kPad). `out` may lie in the
// same buffer as `in`, at least kPad + 1 bytes before it. False for an unknown filter type.
constexpr std::size_t kPad = 8;

#if defined(__SSE2__)
// Average and Paeth carry a dependency from pixel to pixel, but not between the bytes of one
// pixel: those are done side by side in 16-bit lanes (the method of libpng's own SSE2 filters,
// which Debian's build does not enable). Loads take 8 bytes; stores write 8 bytes, the ones past
// the pixel being rewritten by the next, except for the last pixel of the row.
inline __m128i load8(const std::uint8_t* p) {
  return _mm_unpacklo_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)),
                           _mm_setzero_si128());
}
template <int kBpp>
void store_pixel(std::uint8_t* p, __m128i v, bool last) {
  const __m128i packed = _mm_packus_epi16(v, v);
  if (!last) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), packed);
  } else {
    const auto x = static_cast<std::uint64_t>(_mm_cvtsi128_si64(packed));
    std::memcpy(p, &x, kBpp);
  }
}

template <int kBpp>
void unfilter_average(const std::uint8_t* in, const std::uint8_t* prior, std::uint8_t* out,
                      std::size_t n) {
  const __m128i low = _mm_set1_epi16(0xFF);
  __m128i a = _mm_setzero_si128();
  for (std::size_t i = 0; i < n; i += kBpp) {
    const __m128i b = load8(prior + i), x = load8(in + i);
    a = _mm_and_si128(_mm_add_epi16(x, _mm_srli_epi16(_mm_add_epi16(a, b), 1)), low);
    store_pixel<kBpp>(out + i, a, i + kBpp >= n);
  }
}

// One Paeth step on the lanes of a, b, c (the left, above and above-left samples) and x (the
// filtered one): the predictor is whichever of a, b and c is nearest to a + b - c: a when
// |b - c| <= min(|a - c|, |a + b - 2c|), else b when |a - c| <= |a + b - 2c|, else c. Written so
// that few steps wait on a, the sample just decoded.
inline __m128i paeth_step(__m128i a, __m128i b, __m128i c, __m128i x) {
  const __m128i pa = _mm_max_epi16(_mm_sub_epi16(b, c), _mm_sub_epi16(c, b));
  const __m128i k = _mm_sub_epi16(_mm_sub_epi16(b, c), c);  // b - 2c
  const __m128i pb = _mm_max_epi16(_mm_sub_epi16(a, c), _mm_sub_epi16(c, a));
  const __m128i pc =
      _mm_max_epi16(_mm_add_epi16(a, k), _mm_sub_epi16(_mm_sub_epi16(_mm_setzero_si128(), k), a));
  const __m128i not_a = _mm_cmpgt_epi16(pa, _mm_min_epi16(pb, pc));
  const __m128i b_or_c =
      _mm_add_epi16(b, _mm_and_si128(_mm_cmpgt_epi16(pb, pc), _mm_sub_epi16(c, b)));
  const __m128i pred = _mm_or_si128(_mm_and_si128(not_a, b_or_c), _mm_andnot_si128(not_a, a));
  return _mm_and_si128(_mm_add_epi16(x, pred), _mm_set1_epi16(0xFF));
}

template <int kBpp>
void unfilter_paeth(const std::uint8_t* in, const std::uint8_t* prior, std::uint8_t* out,
                    std::size_t n) {
  __m128i a = _mm_setzero_si128(), c = _mm_setzero_si128();
  for (std::size_t i = 0; i < n; i += kBpp) {
    const __m128i b = load8(prior + i);
    a = paeth_step(a, b, c, load8(in + i));
    store_pixel<kBpp>(out + i, a, i + kBpp >= n);
    c = b;
  }
}

// The four bytes at p (kBpp <= 4 of them a pixel; a byte past it may be read) in 16-bit lanes.
inline __m128i load4(const std::uint8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return _mm_unpacklo_epi8(_mm_cvtsi32_si128(v), _mm_setzero_si128());
}

// Several Paeth rows at once, for pixels of 3 or 4 bytes. A Paeth row waits on each pixel before
// the next, so rows are unfiltered side by side, each two pixels behind the one above it (whose
// pixels it needs are then done): rows 2q and 2q + 1 in the low and high halves of the vectors of
// pair q, the pairs' chains of steps overlapping. `in[j]`: row j's filtered bytes; `prior`: the
// row above row 0 (row j's is row j - 1, taken from the vectors); `out[j]`: where row j goes.
// The same rules for reading past the ends as unfilter_row's; nothing is read or written
// outside a row's `w` pixels but that.
template <int kBpp, int kPairs>
void unfilter_paeth_rows(const std::uint8_t* const* in, const std::uint8_t* prior,
                         std::uint8_t* const* out, std::size_t w) {
  constexpr int kRows = 2 * kPairs;
  const __m128i zero = _mm_setzero_si128();
  // Per pair: the last step's left (a) and above-left (c) samples, and the results of the last
  // two steps (r2: the rows above, two steps back). A row's lanes before its first pixel stay
  // zero by themselves: zero in, zero above, zero out.
  __m128i a[kPairs], c[kPairs], r1[kPairs], r2[kPairs];
  for (int q = 0; q < kPairs; ++q) a[q] = c[q] = r1[q] = r2[q] = zero;
  auto store = [](std::uint8_t* p, __m128i r) {
    const std::int32_t v = _mm_cvtsi128_si32(_mm_packus_epi16(r, r));
    std::memcpy(p, &v, kBpp);
  };
  // Step i: row j at pixel i - 2j. kEdge: some row is before its first pixel or past its last.
  auto step = [&]<bool kEdge>(std::size_t i) {
    for (int q = 0; q < kPairs; ++q) {
      const std::ptrdiff_t p0 = static_cast<std::ptrdiff_t>(i) - 4 * q, p1 = p0 - 2;
      auto inside = [&](std::ptrdiff_t p) {
        return !kEdge || (p >= 0 && p < static_cast<std::ptrdiff_t>(w));
      };
      const __m128i x0 = inside(p0) ? load4(in[2 * q] + p0 * kBpp) : zero;
      const __m128i x1 = inside(p1) ? load4(in[2 * q + 1] + p1 * kBpp) : zero;
      const __m128i above0 =
          q == 0 ? (inside(p0) ? load4(prior + p0 * kBpp) : zero) : _mm_srli_si128(r2[q - 1], 8);
      const __m128i b = _mm_unpacklo_epi64(above0, r2[q]);
      a[q] = paeth_step(a[q], b, c[q], _mm_unpacklo_epi64(x0, x1));
      c[q] = b;
      if (inside(p0)) store(out[2 * q] + p0 * kBpp, a[q]);
      if (inside(p1)) store(out[2 * q + 1] + p1 * kBpp, _mm_srli_si128(a[q], 8));
    }
    for (int q = 0; q < kPairs; ++q) {
      r2[q] = r1[q];
      r1[q] = a[q];
    }
  };
  const std::size_t lag = 2 * (kRows - 1), steps = w + lag;
  std::size_t i = 0;
  for (; i < std::min(lag, steps); ++i) step.template operator()<true>(i);
  for (; i < w; ++i) step.template operator()<false>(i);
  for (; i < steps; ++i) step.template operator()<true>(i);
}

template <int kBpp>
void unfilter_simd(int filter, const std::uint8_t* in, const std::uint8_t* prior, std::uint8_t* out,
                   std::size_t n) {
  if (filter == 3) {
    unfilter_average<kBpp>(in, prior, out, n);
  } else {
    unfilter_paeth<kBpp>(in, prior, out, n);
  }
}
#endif

bool unfilter_row(int filter, const std::uint8_t* in, const std::uint8_t* prior, std::uint8_t* out,
                  std::size_t n, int bpp) {
  const auto m = static_cast<std::size_t>(bpp);
  switch (filter) {
    case 0:
      std::memmove(out, in, n);
      return true;
    case 1:
      for (std::size_t i = 0; i < n; ++i) {
        out[i] = static_cast<std::uint8_t>(in[i] + (i >= m ? out[i - m] : 0));
      }
      return true;
    case 2:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(in[i] + prior[i]);
      return true;
    case 3:
    case 4:
#if defined(__SSE2__)
      // n is a whole number of pixels (bpp bytes each) whenever bpp > 1.
      switch (bpp) {
        case 3:
          unfilter_simd<3>(filter, in, prior, out, n);
          return true;
        case 4:
          unfilter_simd<4>(filter, in, prior, out, n);
          return true;
        case 6:
          unfilter_simd<6>(filter, in, prior, out, n);
          return true;
        case 8:
          unfilter_simd<8>(filter, in, prior, out, n);
          return true;
        default:
          break;
      }
#endif
      if (filter == 3) {
        for (std::size_t i = 0; i < n; ++i) {
          const unsigned a = i >= m ? out[i - m] : 0;
          out[i] = static_cast<std::uint8_t>(in[i] + ((a + prior[i]) >> 1));
        }
      } else {
        for (std::size_t i = 0; i < n; ++i) {
          const int a = i >= m ? out[i - m] : 0, b = prior[i], c = i >= m ? prior[i - m] : 0;
          const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
          const int pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          out[i] = static_cast<std::uint8_t>(in[i] + pred);
        }
      }
      return true;
    default:
      return false;
  }
}

struct Pass {
  std::uint32_t x0, y0, dx, dy;
};
constexpr Pass kAdam7[7] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                            {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
constexpr Pass kWhole = {0, 0, 1, 1};

std::uint32_t pass_extent(std::uint32_t size, std::uint32_t start, std::uint32_t step) {
  return size > start ? (size - start + step - 1) / step : 0;
}

// Parses the chunks up to the end of the image data. Fills `f` and `idat` (the IDAT chunks'
// data, in order); false for anything libpng should see.
bool parse_chunks(std::span<const std::uint8_t> b, std::uint64_t max_pixels, Format& f,
                  std::vector<std::span<const std::uint8_t>>& idat) {
  static constexpr std::uint8_t kSignature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
  if (b.size() < 8 || std::memcmp(b.data(), kSignature, 8) != 0) return false;
  std::size_t pos = 8;
  int num_plte = 0;
  bool have_plte = false;
  for (bool first = true;; first = false) {
    // Once the image data has begun, whatever follows it is read by libpng only after the
    // pixels (and its errors there are ignored): the first chunk that is not a good IDAT ends it.
    const bool in_image = !idat.empty();
    if (b.size() - pos < 12) return in_image;
    const std::uint8_t* p = b.data() + pos;
    const std::uint32_t length = be32(p);
    if (length > 0x7FFFFFFFu || b.size() - pos - 12 < length) return in_image;
    for (int i = 4; i < 8; ++i) {
      const auto c = static_cast<unsigned>(p[i] | 0x20);
      if (c < 'a' || c > 'z') return in_image;
    }
    const std::uint8_t* data = p + 8;
    if (libdeflate_crc32(0, p + 4, std::size_t{length} + 4) != be32(data + length)) {
      return in_image;
    }
    const std::uint32_t type = be32(p + 4);
    pos += std::size_t{length} + 12;
    if (in_image && type != kIDAT) return true;
    if (first) {
      if (type != kIHDR || length != 13) return false;
      f.width = be32(data);
      f.height = be32(data + 4);
      f.depth = data[8];
      f.color = data[9];
      if (data[10] != 0 || data[11] != 0 || data[12] > 1) return false;
      f.interlaced = data[12] == 1;
      // libpng's limits (png_set_user_limits above) and ours: beyond them it reports the error.
      const std::uint64_t side = std::min<std::uint64_t>(max_pixels, 0x7FFFFFFF);
      if (f.width == 0 || f.height == 0 || f.width > side || f.height > side ||
          std::uint64_t{f.width} * f.height > max_pixels) {
        return false;
      }
      const int d = f.depth;
      switch (f.color) {
        case 0:
          if (d != 1 && d != 2 && d != 4 && d != 8 && d != 16) return false;
          f.samples = 1;
          break;
        case 3:
          if (d != 1 && d != 2 && d != 4 && d != 8) return false;
          f.samples = 1;
          break;
        case 2:
        case 4:
        case 6:
          if (d != 8 && d != 16) return false;
          f.samples = f.color == 2 ? 3 : f.color == 4 ? 2 : 4;
          break;
        default:
          return false;
      }
      f.bpp = std::max(1, f.samples * d / 8);
      f.out_channels = f.color == 4 || f.color == 6 ? 4 : 3;
      std::fill(std::begin(f.trns_alpha), std::end(f.trns_alpha), std::uint8_t{255});
      continue;
    }
    if (type == kIHDR) return false;
    if (type == kIDAT) {
      if (f.color == 3 && !have_plte) return false;
      idat.emplace_back(data, length);
    } else if (type == kPLTE) {
      if (have_plte || f.has_trns || f.color == 0 || f.color == 4) return false;
      if (length == 0 || length % 3 != 0 || length / 3 > 256) return false;
      num_plte = static_cast<int>(length / 3);
      if (f.color == 3 && num_plte > (1 << f.depth)) return false;
      have_plte = true;
      if (f.color == 3) std::memcpy(f.plte, data, length);
    } else if (type == kTRNS) {
      if (f.has_trns) return false;
      const unsigned max = (1u << f.depth) - 1;
      if (f.color == 3) {
        if (!have_plte || length == 0 || length > static_cast<std::uint32_t>(num_plte)) {
          return false;
        }
        std::memcpy(f.trns_alpha, data, length);
      } else if (f.color == 0 && length == 2) {
        f.trns[0] = static_cast<std::uint16_t>((data[0] << 8) | data[1]);
        if (f.trns[0] > max) return false;
      } else if (f.color == 2 && length == 6) {
        for (int i = 0; i < 3; ++i) {
          f.trns[i] = static_cast<std::uint16_t>((data[2 * i] << 8) | data[2 * i + 1]);
          if (f.trns[i] > max) return false;
        }
      } else {
        return false;
      }
      f.has_trns = true;
      f.out_channels = 4;
    } else if (type == kIEND || !(p[4] & 0x20) || length > kMaxChunk) {
      return false;  // IEND before the image, an unknown critical chunk, or one libpng refuses
    }
  }
}

}  // namespace

cv::Mat decode_png_fast(std::span<const std::uint8_t> bytes, std::uint64_t max_pixels) {
  Format f;
  std::vector<std::span<const std::uint8_t>> idat;
  if (!parse_chunks(bytes, max_pixels, f, idat)) return {};

  // The size of the inflated data, known from the header: a filter byte and the packed samples
  // of each row (of each of the seven reduced images when interlaced).
  std::uint64_t raw_size = 0;
  for (const Pass& pass : f.interlaced ? std::span<const Pass>(kAdam7) : std::span(&kWhole, 1)) {
    const std::uint32_t w = pass_extent(f.width, pass.x0, pass.dx);
    const std::uint32_t h = pass_extent(f.height, pass.y0, pass.dy);
    if (w && h) raw_size += std::uint64_t{h} * (1 + f.row_bytes(w));
  }
  std::uint64_t compressed = 0;
  for (const auto& c : idat) {
    // libpng refuses an IDAT chunk over both its chunk limit and its estimate of the whole
    // compressed size (which is at least raw_size).
    if (c.size() > kMaxChunk && c.size() > raw_size) return {};
    compressed += c.size();
  }
  // Deflate expands at most 1032 times; stored blocks cost 5 bytes in 65535, the zlib wrapper 6.
  // Outside those bounds the stream cannot be right: libpng says how.
  if (compressed * 1032 + 64 < raw_size || compressed > raw_size + raw_size / 8192 + 1024) {
    return {};
  }
  std::vector<std::uint8_t> joined;
  std::span<const std::uint8_t> stream = idat.front();
  if (idat.size() > 1) {
    joined.reserve(static_cast<std::size_t>(compressed));
    for (const auto& c : idat) joined.insert(joined.end(), c.begin(), c.end());
    stream = joined;
  }
  // libpng inflates with the window the zlib header declares, so a stream that reaches back
  // further is its error; libdeflate always allows 32 KiB. Only a smaller declared window that
  // the whole image fits in is left to us.
  if (stream.size() < 2) return {};
  const int window_log = (stream[0] >> 4) + 8;
  if (window_log != 15 && (window_log > 15 || raw_size > (std::uint64_t{1} << window_log))) {
    return {};
  }

  // 8-bit RGB and RGBA rows are unfiltered straight into the image, and the compressed rows are
  // inflated into the image's own memory too, at its end (`extra` rows added for the filter
  // bytes, kPad and three rows more): row y + 3 is written below where the data of row y starts
  // (four Paeth rows are unfiltered at once), so it overwrites only what has been read (and a
  // 1 GB image needs 1 GB, not 2). The other layouts are inflated into
  // `raw`, unfiltered into `rows` (the row and the one above), then converted.
  const bool direct =
      !f.interlaced && f.depth == 8 && !f.has_trns && (f.color == 2 || f.color == 6);
  const int type = f.out_channels == 4 ? CV_8UC4 : CV_8UC3;
  cv::Mat out;
  std::unique_ptr<std::uint8_t[]> raw;
  std::uint8_t* inflated = nullptr;
  if (direct) {
    const std::uint64_t row = f.row_bytes(f.width);
    const std::uint64_t extra = (f.height + 2 * kPad + row - 1) / row + 3;
    if (f.height + extra > 0x7FFFFFFF) return {};
    cv::Mat whole(static_cast<int>(f.height + extra), static_cast<int>(f.width), type);
    inflated = whole.data + (whole.total() * whole.elemSize() - raw_size - kPad);
    out = whole.rowRange(0, static_cast<int>(f.height));
  } else {
    // Every byte is written by the inflate, so the buffer is not zeroed first.
    raw.reset(new std::uint8_t[static_cast<std::size_t>(raw_size) + kPad]);
    inflated = raw.get();
    out.create(static_cast<int>(f.height), static_cast<int>(f.width), type);
  }
  libdeflate_decompressor* inflater = libdeflate_alloc_decompressor();
  if (!inflater) throw std::bad_alloc();
  const libdeflate_result result =
      libdeflate_zlib_decompress(inflater, stream.data(), stream.size(), inflated,
                                 static_cast<std::size_t>(raw_size), nullptr);
  libdeflate_free_decompressor(inflater);
  // Not exactly the image's size, a bad checksum (libpng does not check it), or bad data.
  if (result != LIBDEFLATE_SUCCESS) return {};
  std::memset(inflated + raw_size, 0, kPad);

  const auto full_row = static_cast<std::size_t>(f.row_bytes(f.width));
  std::vector<std::uint8_t> rows(2 * (full_row + kPad), 0), zeros(full_row + kPad, 0);
  std::vector<std::uint8_t> pixels;  // one row of an interlaced pass, converted
  const std::uint8_t* at = inflated;
  for (const Pass& pass : f.interlaced ? std::span<const Pass>(kAdam7) : std::span(&kWhole, 1)) {
    const std::uint32_t w = pass_extent(f.width, pass.x0, pass.dx);
    const std::uint32_t h = pass_extent(f.height, pass.y0, pass.dy);
    if (!w || !h) continue;
    const auto n = static_cast<std::size_t>(f.row_bytes(w));
    const std::uint8_t* prior = zeros.data();
    // Row y of the pass, unfiltered into `row`, to the image.
    auto finish = [&](std::uint32_t y, const std::uint8_t* row) {
      auto* dst = out.ptr<std::uint8_t>(static_cast<int>(pass.y0 + y * pass.dy));
      if (direct) return;
      if (!f.interlaced) {
        convert_row(f, row, w, dst);
        return;
      }
      pixels.resize(std::size_t{w} * static_cast<std::size_t>(f.out_channels));
      convert_row(f, row, w, pixels.data());
      for (std::uint32_t x = 0; x < w; ++x) {
        std::memcpy(dst + std::size_t{pass.x0 + x * pass.dx} * f.out_channels,
                    pixels.data() + std::size_t{x} * f.out_channels, f.out_channels);
      }
    };
    auto row_at = [&](std::uint32_t y) {
      return direct ? out.ptr<std::uint8_t>(static_cast<int>(pass.y0 + y * pass.dy))
                    : rows.data() + (y % 2) * (full_row + kPad);
    };
    for (std::uint32_t y = 0; y < h;) {
      std::uint8_t* row = row_at(y);
#if defined(__SSE2__)
      // Paeth rows in a row: four (straight into the image) or two unfiltered together. In
      // `rows`, the second of two goes where the row above the first is: it is written two
      // pixels behind where that is read.
      const bool paeth_pixels = f.bpp == 3 || f.bpp == 4;
      auto paeth_from = [&](std::uint32_t count) {
        if (!paeth_pixels || y + count > h) return false;
        for (std::uint32_t j = 0; j < count; ++j) {
          if (at[j * (n + 1)] != 4) return false;
        }
        return true;
      };
      const std::uint32_t together = direct && paeth_from(4) ? 4 : paeth_from(2) ? 2 : 1;
      if (together > 1) {
        const std::uint8_t* in[4];
        std::uint8_t* dst[4];
        for (std::uint32_t j = 0; j < together; ++j) {
          in[j] = at + j * (n + 1) + 1;
          dst[j] = row_at(y + j);
        }
        if (together == 4) {
          f.bpp == 3 ? unfilter_paeth_rows<3, 2>(in, prior, dst, w)
                     : unfilter_paeth_rows<4, 2>(in, prior, dst, w);
        } else {
          f.bpp == 3 ? unfilter_paeth_rows<3, 1>(in, prior, dst, w)
                     : unfilter_paeth_rows<4, 1>(in, prior, dst, w);
        }
        for (std::uint32_t j = 0; j < together; ++j) finish(y + j, dst[j]);
        prior = dst[together - 1];
        at += together * (n + 1);
        y += together;
        continue;
      }
#endif
      if (!unfilter_row(at[0], at + 1, prior, row, n, f.bpp)) return {};
      finish(y, row);
      prior = row;
      at += n + 1;
      ++y;
    }
  }
  return out;
}

cv::Mat decode_png(std::span<const std::uint8_t> bytes, std::uint64_t max_pixels) {
  cv::Mat fast = decode_png_fast(bytes, max_pixels);
  return fast.empty() ? decode_png_libpng(bytes, max_pixels) : fast;
}

}  // namespace palette::codec
