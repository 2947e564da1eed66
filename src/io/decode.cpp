// Image decoding and shrinking: sniff the format, refuse oversized images before decoding,
// decode with the format's own library (see codecs.hpp), shrink with INTER_AREA.

#include <fcntl.h>
#include <jconfig.h>
#include <png.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>
#include <webp/decode.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgproc.hpp>
#include <string>

#include "codecs.hpp"
#include "palette/error.hpp"
#include "palette/image_io.hpp"

namespace palette {
namespace codec {

void check_pixels(std::int64_t width, std::int64_t height, std::uint64_t max_pixels) {
  if (width <= 0 || height <= 0) throw Error("corrupt image: no size");
  // Both fit in 32 bits wherever they come from, so the product cannot overflow.
  const auto pixels = static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height);
  if (width > (std::int64_t{1} << 32) || height > (std::int64_t{1} << 32) || pixels > max_pixels) {
    throw Error("image is " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels, over the limit of " + std::to_string(max_pixels) + " (--max-pixels)");
  }
}

cv::Size target_size(int width, int height, int size) {
  const int long_side = std::max(width, height);
  if (long_side <= size) return {width, height};
  const double s = static_cast<double>(size) / long_side;
  return {std::max(1, static_cast<int>(width * s + 0.5)),
          std::max(1, static_cast<int>(height * s + 0.5))};
}

}  // namespace codec

namespace {

bool fully_opaque(const cv::Mat& rgba) {
  for (int y = 0; y < rgba.rows; ++y) {
    const std::uint8_t* p = rgba.ptr<std::uint8_t>(y);
    std::uint8_t all = 0xFF;
    for (int x = 0; x < rgba.cols; ++x) all &= p[4 * x + 3];
    if (all != 0xFF) return false;
  }
  return true;
}

// Shrinks RGBA with colours weighted by alpha, so transparent pixels (often black) do not bleed
// into the colours of the visible ones at the edges. Works on 16-bit premultiplied values
// (c * a and a * 255, both <= 65025), so the colour of an output pixel is sum(c*a) / sum(a).
cv::Mat shrink_rgba(const cv::Mat& rgba, cv::Size to, bool opencv_resize) {
  cv::Mat small;
  if (opencv_resize) {
    cv::resize(codec::premultiply_alpha(rgba), small, to, 0, 0, cv::INTER_AREA);
  } else {
    small = codec::resize_area_premultiplied(rgba, to);
  }
  cv::Mat out(small.size(), CV_8UC4);
  for (int y = 0; y < small.rows; ++y) {
    const auto* s = small.ptr<std::uint16_t>(y);
    auto* d = out.ptr<std::uint8_t>(y);
    for (int x = 0; x < small.cols * 4; x += 4) {
      const std::uint32_t a = s[x + 3];  // alpha * 255
      for (int c = 0; c < 3; ++c) {
        d[x + c] = a ? static_cast<std::uint8_t>(
                           std::min<std::uint32_t>(255, (s[x + c] * 255u + a / 2) / a))
                     : 0;
      }
      d[x + 3] = static_cast<std::uint8_t>((a + 127) / 255);
    }
  }
  return out;
}

}  // namespace

namespace codec {

cv::Mat shrink_decoded(cv::Mat img, int size, int alpha_threshold, bool opencv_resize) {
  // Alpha only matters when it is used and not uniformly opaque.
  const bool alpha = img.channels() == 4 && alpha_threshold > 0 && !fully_opaque(img);
  const cv::Size to = codec::target_size(img.cols, img.rows, size);
  if (to != img.size()) {
    cv::Mat small;
    if (alpha) {
      small = shrink_rgba(img, to, opencv_resize);
    } else if (opencv_resize) {
      cv::resize(img, small, to, 0, 0, cv::INTER_AREA);
    } else {
      small = codec::resize_area(img, to);
    }
    img = small;
  }
  if (img.channels() == 4 && !alpha) {
    cv::Mat rgb;
    cv::cvtColor(img, rgb, cv::COLOR_RGBA2RGB);
    img = rgb;
  }
  if (!img.isContinuous()) img = img.clone();
  return img;
}

}  // namespace codec

DecodedImage decode_image(std::span<const std::uint8_t> bytes, const DecodeOptions& options) {
  if (bytes.empty()) throw Error("empty file");
  const ImageInfo info = sniff_image(bytes);
  // A first, cheap refusal from the header; every decoder checks again on the dimensions it
  // will itself use (a sniff and a library can read a header differently).
  if (info.has_size) codec::check_pixels(info.width, info.height, options.max_pixels);

  cv::Mat img;
  switch (info.format) {
    case ImageFormat::kJpeg:
      img = codec::decode_jpeg(bytes, options.size, true, options.max_pixels);
      break;
    case ImageFormat::kPng:
      img = codec::decode_png(bytes, options.max_pixels);
      break;
    case ImageFormat::kWebp:
      img = codec::decode_webp(bytes, options.size, options.max_pixels);
      break;
    case ImageFormat::kTiff:
      img = codec::decode_tiff(bytes, options.max_pixels);
      break;
    case ImageFormat::kBmp:
      img = codec::decode_bmp(bytes, options.max_pixels);
      break;
    case ImageFormat::kPnm:
      img = codec::decode_pnm(bytes, options.max_pixels);
      break;
    case ImageFormat::kGif:
      throw Error("GIF images are not supported");
    case ImageFormat::kUnknown:
      throw Error("not an image, or a format palette cannot read");
  }

  DecodedImage out;
  out.format = info.format;
  out.source_width = info.has_size ? static_cast<int>(info.width) : img.cols;
  out.source_height = info.has_size ? static_cast<int>(info.height) : img.rows;
  img = codec::shrink_decoded(img, options.size, options.alpha_threshold);
  out.width = img.cols;
  out.height = img.rows;
  out.channels = img.channels();
  out.pixels.assign(img.data, img.data + img.total() * img.elemSize());
  return out;
}

namespace {

// Why a file of this type is not read: opening a FIFO blocks until a writer comes, a device
// such as /dev/zero never ends, and opening some devices has side effects.
void check_regular(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return;
  if (S_ISDIR(st.st_mode)) throw Error("is a directory");
  const char* what = S_ISFIFO(st.st_mode)   ? "FIFO"
                     : S_ISCHR(st.st_mode)  ? "character device"
                     : S_ISBLK(st.st_mode)  ? "block device"
                     : S_ISSOCK(st.st_mode) ? "socket"
                                            : "special file";
  throw Error(std::string("not a regular file (") + what + ")");
}

[[noreturn]] void too_large(std::uint64_t size, std::uint64_t max_bytes, bool at_least) {
  throw Error("file is " + std::string(at_least ? "over " : "") + std::to_string(size) +
              " bytes, over the limit of " + std::to_string(max_bytes) +
              " for the largest image --max-pixels allows");
}

}  // namespace

bool unreachable_file_error(std::string_view error) {
  if (error.starts_with(kCannotOpen)) return true;
  for (const int e : {ENOENT, ENOTDIR, EACCES, ESTALE}) {
    if (error == std::strerror(e)) return true;
  }
  return false;
}

bool can_open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

FileBytes read_file(const std::string& path, std::uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(std::string(kCannotOpen) + std::strerror(errno));
  }
  check_regular(st);  // before open(): refused without opening
  // O_NONBLOCK: should the path be swapped for a FIFO after the stat, open() still returns.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) throw Error(std::string(kCannotOpen) + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::fstat(fd, &st) != 0) throw Error(std::string("cannot read: ") + std::strerror(errno));
  check_regular(st);
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    too_large(static_cast<std::uint64_t>(st.st_size), max_bytes, false);
  }
  FileBytes data(static_cast<std::size_t>(st.st_size));
  std::size_t have = 0;
  std::uint8_t spill[1 << 16];  // for files that grow, or report no size (/proc, /sys)
  for (;;) {
    const bool room = have < data.size();
    const ssize_t got =
        room ? ::read(fd, data.data() + have, data.size() - have) : ::read(fd, spill, sizeof spill);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("cannot read: ") + std::strerror(errno));
    }
    if (got == 0) break;
    if (!room) {
      if (have + static_cast<std::uint64_t>(got) > max_bytes) too_large(max_bytes, max_bytes, true);
      data.insert(data.end(), spill, spill + got);
    }
    have += static_cast<std::size_t>(got);
  }
  data.resize(have);
  if (data.empty()) throw Error("empty file");
  return data;
}

void init_image_io() {
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  cv::setNumThreads(0);
}

std::string image_io_versions() {
  std::string v = "OpenCV " CV_VERSION;
  const int jt = LIBJPEG_TURBO_VERSION_NUMBER;
  v += ", libjpeg-turbo " + std::to_string(jt / 1000000) + "." + std::to_string(jt / 1000 % 1000) +
       "." + std::to_string(jt % 1000);
  v += ", libpng " + std::string(png_get_libpng_ver(nullptr));
  const int wv = WebPGetDecoderVersion();
  v += ", libwebp " + std::to_string(wv >> 16) + "." + std::to_string((wv >> 8) & 0xFF) + "." +
       std::to_string(wv & 0xFF);
  std::string tiff = TIFFGetVersion();  // "LIBTIFF, Version 4.5.0\n..."
  tiff = tiff.substr(0, tiff.find('\n'));
  const auto at = tiff.rfind(' ');
  v += ", libtiff " + (at == std::string::npos ? tiff : tiff.substr(at + 1));
  return v;
}

}  // namespace palette
