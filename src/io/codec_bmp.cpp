// BMP (uncompressed and bit-field variants, 1..32 bits per pixel) and binary PNM (P5/P6).
// Small enough formats to read directly; every read is bounds-checked.

#include <algorithm>
#include <array>
#include <bit>
#include <opencv2/imgproc.hpp>
#include <string>

#include "codecs.hpp"
#include "palette/error.hpp"

namespace palette::codec {
namespace {

std::uint32_t le16(const std::uint8_t* p) { return p[0] | (p[1] << 8); }
std::uint32_t le32(const std::uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

// Extracts the field `mask` of `v` and scales it to 8 bits.
struct Field {
  std::uint32_t mask = 0;
  int shift = 0, bits = 0;
  explicit Field(std::uint32_t m = 0) : mask(m) {
    if (m) {
      shift = std::countr_zero(m);
      bits = std::popcount(m);
    }
  }
  std::uint8_t get(std::uint32_t v) const {
    if (!mask) return 0;
    const std::uint32_t x = (v & mask) >> shift;
    const std::uint32_t max = bits >= 32 ? 0xFFFFFFFFu : (1u << bits) - 1;
    return static_cast<std::uint8_t>((static_cast<std::uint64_t>(x) * 255 + max / 2) / max);
  }
};

}  // namespace

cv::Mat decode_bmp(std::span<const std::uint8_t> b, std::uint64_t max_pixels) {
  if (b.size() < 26) throw Error("truncated BMP");
  const std::uint32_t data_offset = le32(&b[10]);
  const std::uint32_t header = le32(&b[14]);
  if (b.size() < 14 + static_cast<std::size_t>(header) || header < 12) {
    throw Error("truncated BMP");
  }
  std::int64_t width, height;
  int bpp;
  std::uint32_t compression = 0, colors_used = 0;
  if (header == 12) {
    width = le16(&b[18]);
    height = le16(&b[20]);
    bpp = static_cast<int>(le16(&b[24]));
  } else {
    if (header < 40) throw Error("corrupt BMP: unknown header");
    width = static_cast<std::int32_t>(le32(&b[18]));
    height = static_cast<std::int32_t>(le32(&b[22]));
    bpp = static_cast<int>(le16(&b[28]));
    compression = le32(&b[30]);
    colors_used = le32(&b[46]);
  }
  const bool top_down = height < 0;
  height = std::abs(height);
  if (width <= 0 || height <= 0) throw Error("corrupt BMP: bad size");
  check_pixels(width, height, max_pixels);

  // Channel masks: defaults by depth, or BI_BITFIELDS / BI_ALPHABITFIELDS from the header.
  Field r, g, bl, a;
  if (bpp == 16) {
    r = Field(0x7C00);
    g = Field(0x03E0);
    bl = Field(0x001F);
  } else if (bpp == 24 || bpp == 32) {
    r = Field(0xFF0000);
    g = Field(0x00FF00);
    bl = Field(0x0000FF);
  }
  if (compression == 3 || compression == 6) {
    if (bpp != 16 && bpp != 32) throw Error("corrupt BMP: bit fields need 16 or 32 bits");
    if (b.size() < 14 + 40 + 12) throw Error("truncated BMP");
    r = Field(le32(&b[54]));
    g = Field(le32(&b[58]));
    bl = Field(le32(&b[62]));
    if ((header >= 56 || compression == 6) && b.size() >= 70) a = Field(le32(&b[66]));
  } else if (compression != 0) {
    throw Error("unsupported BMP compression (RLE, JPEG or PNG inside BMP)");
  } else if (header >= 56 && bpp == 32) {
    a = Field(le32(&b[66]));  // V4/V5 headers can declare alpha for plain 32-bit data
  }

  std::array<std::array<std::uint8_t, 3>, 256> palette{};
  if (bpp <= 8) {
    if (bpp != 1 && bpp != 4 && bpp != 8) throw Error("corrupt BMP: bad bit depth");
    const std::size_t entry = header == 12 ? 3 : 4;
    std::size_t n = colors_used ? colors_used : (1u << bpp);
    n = std::min<std::size_t>(n, 256);
    const std::size_t at = 14 + header;
    if (b.size() < at + n * entry) throw Error("truncated BMP");
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint8_t* p = &b[at + i * entry];
      palette[i] = {p[2], p[1], p[0]};
    }
  } else if (bpp != 16 && bpp != 24 && bpp != 32) {
    throw Error("corrupt BMP: bad bit depth");
  }

  const std::size_t stride = ((static_cast<std::size_t>(width) * bpp + 31) / 32) * 4;
  if (data_offset > b.size() ||
      (b.size() - data_offset) / stride < static_cast<std::size_t>(height)) {
    throw Error("truncated BMP");
  }
  const bool has_alpha = a.mask != 0;
  cv::Mat out(static_cast<int>(height), static_cast<int>(width), has_alpha ? CV_8UC4 : CV_8UC3);
  // The common layouts, BGR bytes or BGRX with X unused, are a byte shuffle per pixel: OpenCV's
  // vectorised one over every row at once, then the rows put top to bottom.
  if (!has_alpha && (bpp == 24 || bpp == 32) && r.mask == 0xFF0000 && g.mask == 0x00FF00 &&
      bl.mask == 0x0000FF) {
    const cv::Mat rows(static_cast<int>(height), static_cast<int>(width),
                       bpp == 24 ? CV_8UC3 : CV_8UC4, const_cast<std::uint8_t*>(&b[data_offset]),
                       stride);
    cv::cvtColor(rows, out, bpp == 24 ? cv::COLOR_BGR2RGB : cv::COLOR_BGRA2RGB);
    if (!top_down) cv::flip(out, out, 0);
    return out;
  }
  bool any_alpha = false;
  for (std::int64_t y = 0; y < height; ++y) {
    const std::uint8_t* row = &b[data_offset + stride * static_cast<std::size_t>(y)];
    std::uint8_t* d = out.ptr<std::uint8_t>(static_cast<int>(top_down ? y : height - 1 - y));
    for (std::int64_t x = 0; x < width; ++x) {
      std::uint8_t px[4] = {0, 0, 0, 255};
      if (bpp <= 8) {
        const std::size_t bit = static_cast<std::size_t>(x) * bpp;
        const int idx = (row[bit / 8] >> (8 - bpp - bit % 8)) & ((1 << bpp) - 1);
        px[0] = palette[idx][0];
        px[1] = palette[idx][1];
        px[2] = palette[idx][2];
      } else {
        const std::uint8_t* p = row + x * (bpp / 8);
        const std::uint32_t v = bpp == 16   ? le16(p)
                                : bpp == 24 ? (p[0] | (p[1] << 8) | (p[2] << 16))
                                            : le32(p);
        px[0] = r.get(v);
        px[1] = g.get(v);
        px[2] = bl.get(v);
        if (has_alpha) {
          px[3] = a.get(v);
          any_alpha |= px[3] != 0;
        }
      }
      for (int c = 0; c < out.channels(); ++c) *d++ = px[c];
    }
  }
  if (has_alpha && !any_alpha) {
    // An alpha mask whose channel is all zero means "unused", not "invisible".
    cv::Mat rgb(out.size(), CV_8UC3);
    cv::mixChannels(out, rgb, std::vector<int>{0, 0, 1, 1, 2, 2});
    return rgb;
  }
  return out;
}

void read_pnm_numbers(std::span<const std::uint8_t> b, std::size_t& o, int count,
                      std::int64_t* values) {
  for (int i = 0; i < count; ++i) {
    for (;;) {
      if (o >= b.size()) throw Error("truncated PNM");
      if (b[o] == '#') {
        while (o < b.size() && b[o] != '\n') ++o;
      } else if (b[o] == ' ' || b[o] == '\t' || b[o] == '\r' || b[o] == '\n') {
        ++o;
      } else {
        break;
      }
    }
    std::int64_t value = 0;
    int digits = 0;
    while (o < b.size() && b[o] >= '0' && b[o] <= '9') {
      // More digits than any size this reads could have: refused, not cut short (a reader
      // that stops early sees a different number than one that does not).
      if (++digits > 10) throw Error("corrupt PNM header");
      value = value * 10 + (b[o++] - '0');
    }
    if (digits == 0 || value > 0x7FFFFFFF) throw Error("corrupt PNM header");
    values[i] = value;
  }
}

cv::Mat decode_pnm(std::span<const std::uint8_t> b, std::uint64_t max_pixels) {
  // "P5"/"P6", whitespace and comments, width, height, maxval, one whitespace, samples.
  if (b.size() < 3 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) {
    throw Error("unsupported PNM variant (only binary P5/P6)");
  }
  const int channels = b[1] == '6' ? 3 : 1;
  std::size_t o = 2;
  std::int64_t v[3];
  read_pnm_numbers(b, o, 3, v);
  ++o;  // the single whitespace before the samples
  const std::int64_t w = v[0], h = v[1], maxval = v[2];
  if (w <= 0 || h <= 0 || maxval <= 0 || maxval > 65535) throw Error("corrupt PNM header");
  check_pixels(w, h, max_pixels);
  const int bytes_per_sample = maxval > 255 ? 2 : 1;
  const std::size_t need = static_cast<std::size_t>(w) * h * channels * bytes_per_sample;
  if (o > b.size() || b.size() - o < need) throw Error("truncated PNM");
  cv::Mat out(static_cast<int>(h), static_cast<int>(w), CV_8UC3);
  const std::uint8_t* s = &b[o];
  if (maxval == 255) {  // samples are the bytes: copied (P6) or expanded from grey (P5)
    for (int y = 0; y < out.rows; ++y) {
      std::uint8_t* d = out.ptr<std::uint8_t>(y);
      if (channels == 3) {
        std::copy_n(s, 3 * static_cast<std::size_t>(out.cols), d);
        s += 3 * static_cast<std::size_t>(out.cols);
      } else {
        for (int x = 0; x < out.cols; ++x, ++s, d += 3) d[0] = d[1] = d[2] = *s;
      }
    }
    return out;
  }
  for (int y = 0; y < out.rows; ++y) {
    std::uint8_t* d = out.ptr<std::uint8_t>(y);
    for (int x = 0; x < out.cols; ++x) {
      std::uint8_t c[3];
      for (int k = 0; k < channels; ++k) {
        std::uint32_t sample = bytes_per_sample == 2 ? (s[0] << 8) | s[1] : s[0];
        s += bytes_per_sample;
        c[k] = static_cast<std::uint8_t>((sample * 255 + maxval / 2) / maxval);
      }
      if (channels == 1) c[1] = c[2] = c[0];
      *d++ = c[0];
      *d++ = c[1];
      *d++ = c[2];
    }
  }
  return out;
}

}  // namespace palette::codec
