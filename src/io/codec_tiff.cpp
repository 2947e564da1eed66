// TIFF through libtiff's RGBA interface (any photometric interpretation and bit depth it
// supports), read from memory. Errors are recorded per handle (libtiff 4.5's ExtR handlers);
// the process-wide handlers only keep libtiff from printing. The pixel limit is checked on the
// dimensions libtiff itself reads, and libtiff's own allocations are capped from it.

#include <tiffio.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "codecs.hpp"
#include "palette/error.hpp"

namespace palette::codec {
namespace {

extern "C" void tiff_quiet(const char*, const char*, va_list) {}

// The first error of one handle (later ones are usually consequences of it).
extern "C" int tiff_error(TIFF*, void* user, const char*, const char* fmt, va_list ap) {
  auto* message = static_cast<std::string*>(user);
  if (message->empty()) {
    char buf[256];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    *message = buf;
  }
  return 1;
}
extern "C" int tiff_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct Memory {
  const std::uint8_t* data;
  toff_t size, pos;
};

extern "C" tsize_t mem_read(thandle_t h, tdata_t buf, tsize_t n) {
  auto* m = static_cast<Memory*>(h);
  const toff_t avail = m->pos < m->size ? m->size - m->pos : 0;
  const auto take = static_cast<toff_t>(std::min<toff_t>(avail, static_cast<toff_t>(n)));
  std::memcpy(buf, m->data + m->pos, take);
  m->pos += take;
  return static_cast<tsize_t>(take);
}
extern "C" tsize_t mem_write(thandle_t, tdata_t, tsize_t) { return 0; }
extern "C" toff_t mem_seek(thandle_t h, toff_t off, int whence) {
  auto* m = static_cast<Memory*>(h);
  toff_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->size : 0;
  m->pos = base + off;
  return m->pos;
}
extern "C" int mem_close(thandle_t) { return 0; }
extern "C" toff_t mem_size(thandle_t h) { return static_cast<Memory*>(h)->size; }
// The buffer is handed to libtiff as a mapped file, as TIFFOpen would map one (read-only: libtiff
// copies before it changes mapped data). Without a mapping, libtiff 4.5 refuses every
// uncompressed tile whose size is not a multiple of its read buffer's rounding.
extern "C" int mem_map(thandle_t h, tdata_t* base, toff_t* size) {
  auto* m = static_cast<Memory*>(h);
  *base = const_cast<std::uint8_t*>(m->data);
  *size = m->size;
  return 1;
}
extern "C" void mem_unmap(thandle_t, tdata_t, toff_t) {}

}  // namespace

cv::Mat decode_tiff(std::span<const std::uint8_t> bytes, std::uint64_t max_pixels) {
  static std::once_flag once;
  std::call_once(once, [] {
    TIFFSetErrorHandler(tiff_quiet);
    TIFFSetWarningHandler(tiff_quiet);
  });
  std::string error;
  struct Options {
    TIFFOpenOptions* o = TIFFOpenOptionsAlloc();
    ~Options() { TIFFOpenOptionsFree(o); }
  } options;
  if (!options.o) throw Error("cannot initialise the TIFF decoder");
  // No single buffer of libtiff's (a strip, a tile) needs more than the largest image allowed
  // at 16 bits x 4 samples; a header claiming more is refused instead of allocated.
  const std::uint64_t cap =
      std::min<std::uint64_t>(max_pixels, std::uint64_t{1} << 40) * 8 + (1u << 20);
  TIFFOpenOptionsSetMaxSingleMemAlloc(
      options.o, static_cast<tmsize_t>(std::min<std::uint64_t>(cap, std::uint64_t{1} << 62)));
  TIFFOpenOptionsSetErrorHandlerExtR(options.o, tiff_error, &error);
  TIFFOpenOptionsSetWarningHandlerExtR(options.o, tiff_warning, nullptr);
  Memory mem{bytes.data(), bytes.size(), 0};
  TIFF* tif = TIFFClientOpenExt("image", "r", &mem, mem_read, mem_write, mem_seek, mem_close,
                                mem_size, mem_map, mem_unmap, options.o);
  if (!tif) throw Error("corrupt TIFF: " + error);
  struct Closer {
    TIFF* t;
    ~Closer() { TIFFClose(t); }
  } closer{tif};

  std::uint32_t w = 0, h = 0;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
  std::uint16_t extra = 0;
  std::uint16_t* extra_types = nullptr;
  TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &extra, &extra_types);
  // As libtiff's RGBA reader: an unspecified extra sample is taken as (associated) alpha.
  const bool alpha = extra > 0 && extra_types != nullptr;
  if (w == 0 || h == 0) throw Error("corrupt TIFF: no image size");
  check_pixels(w, h, max_pixels);  // the size libtiff will decode, whatever a sniff read
  std::vector<std::uint32_t> raster(static_cast<std::size_t>(w) * h);
  if (!TIFFReadRGBAImageOriented(tif, w, h, raster.data(), ORIENTATION_TOPLEFT, 1)) {
    throw Error("corrupt or truncated TIFF: " + error);
  }
  if (!error.empty()) throw Error("corrupt or truncated TIFF: " + error);
  cv::Mat out(static_cast<int>(h), static_cast<int>(w), alpha ? CV_8UC4 : CV_8UC3);
  for (std::uint32_t y = 0; y < h; ++y) {
    std::uint8_t* d = out.ptr<std::uint8_t>(static_cast<int>(y));
    const std::uint32_t* s = raster.data() + static_cast<std::size_t>(y) * w;
    for (std::uint32_t x = 0; x < w; ++x) {
      const std::uint32_t p = s[x];
      std::uint32_t r = TIFFGetR(p), g = TIFFGetG(p), b = TIFFGetB(p);
      if (alpha) {
        // The RGBA interface hands back premultiplied colour; undo it.
        const std::uint32_t a = TIFFGetA(p);
        if (a > 0 && a < 255) {
          r = std::min(255u, (r * 255 + a / 2) / a);
          g = std::min(255u, (g * 255 + a / 2) / a);
          b = std::min(255u, (b * 255 + a / 2) / a);
        }
        *d++ = static_cast<std::uint8_t>(r);
        *d++ = static_cast<std::uint8_t>(g);
        *d++ = static_cast<std::uint8_t>(b);
        *d++ = static_cast<std::uint8_t>(a);
      } else {
        *d++ = static_cast<std::uint8_t>(r);
        *d++ = static_cast<std::uint8_t>(g);
        *d++ = static_cast<std::uint8_t>(b);
      }
    }
  }
  return out;
}

}  // namespace palette::codec
