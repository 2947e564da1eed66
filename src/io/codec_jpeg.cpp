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
  std::uint64_t max_pixels;
  bool over_limit;  // the frame is larger than max_pixels: stopped before decompressing
  std::int64_t width, height;
  bool too_many_scans;
};

// Called by libjpeg as it reads: stops a progressive file with more scans than any real one.
extern "C" void on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxJpegScans) {
    auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
    err->too_many_scans = true;
    std::longjmp(err->jump, 1);
  }
}

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

}  // namespace

int pick_scale_num(int width, int height, int size) {
  const std::int64_t long_side = std::max(width, height);
  const auto long_at = [long_side](int m) { return (long_side * m + 7) / 8; };
  int m = 1;
  while (m < 8 && long_at(m) < size) ++m;  // the smallest scale at least `size` long
  // 1/8 when it comes nearer `size` (as a ratio) than 2/8: the DC-only decoder, and no shrink.
  if (m == 2 && static_cast<double>(size) * size <= static_cast<double>(long_at(1)) * long_at(2)) {
    m = 1;
  }
  return m;
}

namespace {

// Everything that can longjmp lives in here, with only trivially destructible locals.
// Returns false on a libjpeg error (message in err).
bool run_decoder(jpeg_decompress_struct& cinfo, ErrorManager& err, const std::uint8_t* data,
                 std::size_t size, int size_wanted, cv::Mat* out) {
  if (setjmp(err.jump)) return false;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  if (static_cast<std::uint64_t>(cinfo.image_width) * cinfo.image_height > err.max_pixels) {
    err.width = cinfo.image_width;
    err.height = cinfo.image_height;
    err.over_limit = true;
    return false;
  }
  // Every block of a component costs at least one Huffman code (its DC code): a file with fewer
  // bits than some component has blocks is cut short, however it goes on. Said before libjpeg
  // allocates a progressive file's coefficients (128 bytes a block) for data that is not there.
  // (Arithmetic coding can spend less than a bit on a block.)
  for (int c = 0; c < cinfo.num_components && !cinfo.arith_code; ++c) {
    const auto& comp = cinfo.comp_info[c];
    if (static_cast<std::uint64_t>(comp.width_in_blocks) * comp.height_in_blocks > 8 * size) {
      err.truncated = true;
      return false;
    }
  }
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  cinfo.scale_num = static_cast<unsigned>(pick_scale_num(
      static_cast<int>(cinfo.image_width), static_cast<int>(cinfo.image_height), size_wanted));
  cinfo.scale_denom = 8;
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = FALSE;
  // Block smoothing guesses missing low AC coefficients of progressive files from neighbouring
  // blocks; every coefficient is there when the file is complete, so it would only add noise.
  cinfo.do_block_smoothing = FALSE;
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

cv::Mat decode_jpeg(std::span<const std::uint8_t> bytes, int size, bool fast_dc,
                    std::uint64_t max_pixels) {
  int width = 0, height = 0;
  frame_size(bytes, width, height);
  if (fast_dc && width > 0 && pick_scale_num(width, height, size) == 1) {
    if (height > 0) check_pixels(width, height, max_pixels);  // 0: height from DNL
    try {
      cv::Mat dc = decode_jpeg_dc(bytes, size, max_pixels);
      if (!dc.empty()) return dc;
    } catch (const Error&) {
      // A damaged file: let libjpeg decide what it can recover and how to report it.
    }
  }
  jpeg_decompress_struct cinfo;
  ErrorManager err{};
  err.max_pixels = max_pixels;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error_exit;
  err.pub.emit_message = on_message;
  jpeg_create_decompress(&cinfo);
  jpeg_progress_mgr progress{};
  progress.progress_monitor = on_progress;
  cinfo.progress = &progress;
  cv::Mat out;
  const bool ok = run_decoder(cinfo, err, bytes.data(), bytes.size(), size, &out);
  jpeg_destroy_decompress(&cinfo);
  if (!ok) {
    if (err.over_limit) {
      check_pixels(err.width, err.height, max_pixels);  // throws
    }
    if (err.too_many_scans) {
      throw Error("corrupt JPEG: more than " + std::to_string(kMaxJpegScans) + " scans");
    }
    if (err.truncated) throw Error("truncated JPEG");
    throw Error(std::string("corrupt JPEG: ") + err.message);
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
