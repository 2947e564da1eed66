// TIFF through libtiff's RGBA interface (any photometric interpretation and bit depth it
// supports), read from memory. libtiff's message handlers are process-wide: ours record the
// last error of the calling thread instead of printing it.

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

thread_local std::string tls_tiff_error;

extern "C" void tiff_error(const char*, const char* fmt, va_list ap) {
  char buf[256];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  tls_tiff_error = buf;
}
extern "C" void tiff_warning(const char*, const char*, va_list) {}

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
extern "C" int mem_map(thandle_t, tdata_t*, toff_t*) { return 0; }
extern "C" void mem_unmap(thandle_t, tdata_t, toff_t) {}

}  // namespace

cv::Mat decode_tiff(std::span<const std::uint8_t> bytes) {
  static std::once_flag once;
  std::call_once(once, [] {
    TIFFSetErrorHandler(tiff_error);
    TIFFSetWarningHandler(tiff_warning);
  });
  tls_tiff_error.clear();
  Memory mem{bytes.data(), bytes.size(), 0};
  TIFF* tif = TIFFClientOpen("image", "rm", &mem, mem_read, mem_write, mem_seek, mem_close,
                             mem_size, mem_map, mem_unmap);
  if (!tif) throw Error("corrupt TIFF: " + tls_tiff_error);
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
  std::vector<std::uint32_t> raster(static_cast<std::size_t>(w) * h);
  if (!TIFFReadRGBAImageOriented(tif, w, h, raster.data(), ORIENTATION_TOPLEFT, 1)) {
    throw Error("corrupt or truncated TIFF: " + tls_tiff_error);
  }
  if (!tls_tiff_error.empty()) throw Error("corrupt or truncated TIFF: " + tls_tiff_error);
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
