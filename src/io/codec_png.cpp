// PNG through libpng: palette, grey and low bit depths expanded, tRNS made alpha, 16-bit scaled
// to 8. libpng reports errors by longjmp, so the reading happens in a function that holds no
// object with a destructor between setjmp and the last libpng call.

#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
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

cv::Mat decode_png(std::span<const std::uint8_t> bytes, std::uint64_t max_pixels) {
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

}  // namespace palette::codec
