// JPEG through libjpeg-turbo's libjpeg API: decoded at a reduced DCT scale (1/8 .. 1) when the
// image is much larger than wanted, and truncation reported as an error instead of the
// grey-filled image a plain decode hands back.

// jpeglib.h needs size_t and FILE declared before it, and jerror.h needs jpeglib.h.
#include <cstddef>
#include <cstdio>
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <string>
#include <vector>

#include "codecs.hpp"
#include "palette/error.hpp"

namespace palette::codec {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

extern "C" void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

extern "C" void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  const int code = cinfo->err->msg_code;
  // Data missing from the file: the decoder would fill the rest with grey. Stop right here.
  // Other warnings (e.g. extraneous bytes before a marker) are common and harmless.
  if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) {
    (*cinfo->err->format_message)(cinfo, err->message);
    err->truncated = true;
    std::longjmp(err->jump, 1);
  }
}

// The smallest DCT scale (M/8, M = 1..8) whose long side is still >= size.
int pick_scale_num(int width, int height, int size) {
  const int long_side = std::max(width, height);
  for (int m = 1; m < 8; ++m) {
    if ((long_side * m + 7) / 8 >= size) return m;
  }
  return 8;
}

// Everything that can longjmp lives in here, with only trivially destructible locals.
// Returns false on a libjpeg error (message in err).
// `dc_only_components`: bit i set when component i's AC scans were removed; if libjpeg would
// need AC coefficients of such a component (an IDCT larger than 1x1), *fallback is set and
// nothing is decoded.
bool run_decoder(jpeg_decompress_struct& cinfo, ErrorManager& err, const std::uint8_t* data,
                 std::size_t size, int size_wanted, unsigned dc_only_components, bool* fallback,
                 cv::Mat* out) {
  if (setjmp(err.jump)) return false;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  cinfo.scale_num = static_cast<unsigned>(pick_scale_num(
      static_cast<int>(cinfo.image_width), static_cast<int>(cinfo.image_height), size_wanted));
  cinfo.scale_denom = 8;
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = FALSE;
  // Block smoothing guesses missing low AC coefficients of progressive files from neighbouring
  // blocks; every coefficient we decode is complete, so it would only add noise.
  cinfo.do_block_smoothing = FALSE;
  if (dc_only_components) {
    jpeg_calc_output_dimensions(&cinfo);
    for (int c = 0; c < cinfo.num_components && c < 32; ++c) {
      if ((dc_only_components >> c & 1u) && cinfo.comp_info[c].DCT_scaled_size > 1) {
        *fallback = true;
        return true;
      }
    }
  }
  jpeg_start_decompress(&cinfo);
  *out = cv::Mat(static_cast<int>(cinfo.output_height), static_cast<int>(cinfo.output_width),
                 cmyk ? CV_8UC4 : CV_8UC3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->ptr<std::uint8_t>(static_cast<int>(cinfo.output_scanline));
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  return true;
}

// For a progressive JPEG decoded at 1/8 scale only the DC coefficient of each block matters
// (the 1x1 inverse DCT reads nothing else), and progressive files carry DC in scans of their
// own. Returns the file with its AC scans (Ss > 0) removed, which decodes at 1/8 to the very
// same pixels at a fraction of the entropy-decoding cost; empty when the file is not
// progressive. Throws when the file ends before its EOI marker, as a full decode would.
//
// libjpeg scales subsampled chroma up through a larger IDCT rather than upsampling when it can
// (4:2:0 chroma at 1/8 gets a 2x2 IDCT, which reads AC coefficients): the AC scans of such
// components are kept. `dc_only_components` receives a bit per component (by position in the
// frame header) whose AC scans were removed; run_decoder double-checks libjpeg agrees.
std::vector<std::uint8_t> dc_only_stream(std::span<const std::uint8_t> b,
                                         unsigned& dc_only_components) {
  auto truncated = [] { return Error("truncated JPEG (no end-of-image marker)"); };
  std::vector<std::uint8_t> out(b.begin(), b.begin() + 2);  // SOI
  const std::size_t n = b.size();
  std::size_t o = 2;
  bool progressive = false;
  struct Component {
    int id, h, v;
    bool needs_ac;
  };
  std::vector<Component> comps;
  dc_only_components = 0;
  for (;;) {
    while (o + 1 < n && b[o] == 0xFF && b[o + 1] == 0xFF) ++o;  // fill bytes
    if (o + 1 >= n) throw truncated();
    if (b[o] != 0xFF) throw Error("corrupt JPEG: marker expected");
    const std::uint8_t marker = b[o + 1];
    if (marker == 0xD9) break;  // EOI
    if (o + 3 >= n) throw truncated();
    const std::size_t len = (static_cast<std::size_t>(b[o + 2]) << 8) | b[o + 3];
    if (len < 2 || o + 2 + len > n) throw truncated();
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof && marker != 0xC2) return {};  // not progressive Huffman: the plain path does it
    if (marker == 0xC2) {
      // Lf, P, Y, X, Nf, then Nf (C, H/V, Tq) triples.
      if (len < 8) throw Error("corrupt JPEG: bad frame header");
      const std::size_t nf = b[o + 9];
      if (len < 8 + 3 * nf || nf == 0 || nf > 32) throw Error("corrupt JPEG: bad frame header");
      int max_h = 1, max_v = 1;
      for (std::size_t c = 0; c < nf; ++c) {
        const int hv = b[o + 11 + 3 * c];
        comps.push_back({b[o + 10 + 3 * c], std::max(1, hv >> 4), std::max(1, hv & 15), false});
        max_h = std::max(max_h, comps.back().h);
        max_v = std::max(max_v, comps.back().v);
      }
      for (std::size_t c = 0; c < nf; ++c) {
        auto& cp = comps[c];
        cp.needs_ac = max_h % (2 * cp.h) == 0 && max_v % (2 * cp.v) == 0;
        if (!cp.needs_ac) dc_only_components |= 1u << c;
      }
      progressive = true;
    }
    std::size_t end = o + 2 + len;
    bool keep = true;
    if (marker == 0xDA) {
      // Ls, Ns, Ns (Cs, Td/Ta) pairs, Ss, Se, Ah/Al; then entropy-coded data up to the next
      // marker other than stuffing (FF00), a restart (FFD0..FFD7) or fill.
      const std::size_t ns = b[o + 4];
      if (len < 6 + 2 * ns) throw Error("corrupt JPEG: bad scan header");
      keep = b[o + 5 + 2 * ns] == 0;  // Ss == 0: a DC scan
      if (!keep && ns == 1) {         // AC scans carry one component
        for (const auto& cp : comps) keep |= cp.id == b[o + 5] && cp.needs_ac;
      }
      for (;; ++end) {
        if (end + 1 >= n) throw truncated();
        if (b[end] == 0xFF) {
          const std::uint8_t m = b[end + 1];
          if (m != 0x00 && !(m >= 0xD0 && m <= 0xD7) && m != 0xFF) break;
        }
      }
    }
    if (keep)
      out.insert(out.end(), b.begin() + static_cast<std::ptrdiff_t>(o),
                 b.begin() + static_cast<std::ptrdiff_t>(end));
    o = end;
  }
  if (!progressive || dc_only_components == 0) return {};
  out.push_back(0xFF);
  out.push_back(0xD9);
  return out;
}

// Width and height from the frame header, without decoding (0 when not found).
void frame_size(std::span<const std::uint8_t> b, int& width, int& height) {
  width = height = 0;
  std::size_t o = 2;
  while (o + 9 < b.size() && b[o] == 0xFF) {
    const std::uint8_t m = b[o + 1];
    if (m == 0xFF) {
      ++o;
      continue;
    }
    const std::size_t len = (static_cast<std::size_t>(b[o + 2]) << 8) | b[o + 3];
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
      height = (b[o + 5] << 8) | b[o + 6];
      width = (b[o + 7] << 8) | b[o + 8];
      return;
    }
    if (m == 0xDA || len < 2) return;
    o += 2 + len;
  }
}

}  // namespace

cv::Mat decode_jpeg(std::span<const std::uint8_t> bytes, int size, bool allow_dc_only) {
  std::vector<std::uint8_t> dc_only;
  unsigned dc_only_components = 0;
  int width = 0, height = 0;
  frame_size(bytes, width, height);
  if (allow_dc_only && width > 0 && pick_scale_num(width, height, size) == 1) {
    dc_only = dc_only_stream(bytes, dc_only_components);
  }
  cv::Mat out;
  for (;;) {
    const std::span<const std::uint8_t> data = dc_only.empty() ? bytes : dc_only;
    jpeg_decompress_struct cinfo;
    ErrorManager err{};
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error_exit;
    err.pub.emit_message = on_message;
    jpeg_create_decompress(&cinfo);
    bool fallback = false;
    const bool ok = run_decoder(cinfo, err, data.data(), data.size(), size,
                                dc_only.empty() ? 0u : dc_only_components, &fallback, &out);
    jpeg_destroy_decompress(&cinfo);
    if (!ok) {
      if (err.truncated) throw Error("truncated JPEG");
      throw Error(std::string("corrupt JPEG: ") + err.message);
    }
    if (!fallback) break;
    dc_only.clear();  // libjpeg wants AC coefficients we removed: decode the whole file
  }
  if (out.channels() == 4) {
    // Adobe-style (inverted) CMYK, as Photoshop writes it and libjpeg hands it back.
    cv::Mat rgb(out.size(), CV_8UC3);
    for (int y = 0; y < out.rows; ++y) {
      const std::uint8_t* s = out.ptr<std::uint8_t>(y);
      std::uint8_t* d = rgb.ptr<std::uint8_t>(y);
      for (int x = 0; x < out.cols; ++x, s += 4, d += 3) {
        const int k = s[3];
        d[0] = static_cast<std::uint8_t>((s[0] * k + 127) / 255);
        d[1] = static_cast<std::uint8_t>((s[1] * k + 127) / 255);
        d[2] = static_cast<std::uint8_t>((s[2] * k + 127) / 255);
      }
    }
    return rgb;
  }
  return out;
}

}  // namespace palette::codec
