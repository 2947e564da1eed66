// Each hand-written decoder beside the library that could replace it, on the same bytes, in one
// process, interleaved pass by pass (this machine is shared and noisy: ratios, not absolute
// times, are what carry). Measures and prints; never fails on time.
//
//   bench_decoders [DIR] [--passes N] [--size PX]     DIR: ../shared/bench-images beside the source
//
// - DC-only JPEG (codec_jpeg_dc.cpp) against libjpeg-turbo asked for the same 1/8 scale, each
//   followed by the shrink to --size that decode_image does (INTER_AREA), on every JPEG of DIR
//   whose long side is at least 8 x --size (the only ones the DC path takes);
// - BMP and binary PNM (codec_bmp.cpp) against OpenCV's imgcodecs (cv::imdecode), on each
//   photo of DIR re-encoded as 24-bit BMP and 8-bit PPM in memory;
// - per format and size class, palette's decode (decode_image at --size) beside the libraries
//   themselves: libjpeg-turbo at full size and at 1/8, libpng at full size (its simplified API),
//   and for PNG the reader before decode_png_fast (libpng, then the shrink as it was: cv::resize
//   rather than resize_area, the same pixels). Formats: the
//   JPEGs of DIR (baseline; progressive ones, and each baseline one re-encoded progressive at
//   quality 90 in memory), the PNGs of DIR (RGB, RGBA), and each JPEG photo of at least 2 MP
//   re-encoded in memory as PNG (zlib level 6): RGB, and RGBA with an alpha vignette. Rates are
//   per CPU second of this thread (the machine is shared: wall time is noisier), MB are the
//   files' bytes.

// clang-format off
#include <cstdio>
#include <jpeglib.h>
// clang-format on
#include <png.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "codecs.hpp"
#include "palette/error.hpp"
#include "palette/image_io.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;
using Clock = std::chrono::steady_clock;

struct Row {
  std::string name;
  std::function<void(const Bytes&)> ours, library;
  std::vector<Bytes> inputs;
  double ours_s = 0, library_s = 0;
};

double seconds(const std::function<void(const Bytes&)>& f, const std::vector<Bytes>& in) {
  const auto t0 = Clock::now();
  for (const auto& b : in) f(b);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

cv::Mat shrink(const cv::Mat& m, int size) {
  const cv::Size to = palette::codec::target_size(m.cols, m.rows, size);
  if (to == m.size()) return m;
  cv::Mat out;
  cv::resize(m, out, to, 0, 0, cv::INTER_AREA);
  return out;
}

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// libjpeg-turbo on its own: RGB out, at 1/denom scale.
cv::Mat libjpeg_decode(const Bytes& b, int denom) {
  jpeg_decompress_struct d;
  jpeg_error_mgr err;
  d.err = jpeg_std_error(&err);
  jpeg_create_decompress(&d);
  jpeg_mem_src(&d, b.data(), static_cast<unsigned long>(b.size()));
  jpeg_read_header(&d, TRUE);
  d.out_color_space = JCS_RGB;
  d.scale_num = 1;
  d.scale_denom = static_cast<unsigned>(denom);
  jpeg_start_decompress(&d);
  cv::Mat out(static_cast<int>(d.output_height), static_cast<int>(d.output_width), CV_8UC3);
  while (d.output_scanline < d.output_height) {
    JSAMPROW row = out.ptr<std::uint8_t>(static_cast<int>(d.output_scanline));
    jpeg_read_scanlines(&d, &row, 1);
  }
  jpeg_finish_decompress(&d);
  jpeg_destroy_decompress(&d);
  return out;
}

// libpng on its own (the simplified API): 8-bit RGB or RGBA out.
cv::Mat libpng_decode(const Bytes& b) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, b.data(), b.size())) return {};
  const bool alpha = (img.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  img.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  cv::Mat out(static_cast<int>(img.height), static_cast<int>(img.width), alpha ? CV_8UC4 : CV_8UC3);
  png_image_finish_read(&img, nullptr, out.data, 0, nullptr);
  png_image_free(&img);
  return out;
}

bool progressive_jpeg(const Bytes& b) {
  for (std::size_t i = 2; i + 4 <= b.size();) {
    if (b[i] != 0xFF) return false;
    const int m = b[i + 1];
    if (m == 0xC2) return true;
    if (m == 0xDA) return false;
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  return false;
}

// The photo with an alpha channel that falls off towards the corners (0 in them), so that the
// alpha-weighted shrink does its work.
cv::Mat with_vignette(const cv::Mat& rgb) {
  cv::Mat rgba(rgb.size(), CV_8UC4);
  const double cx = rgb.cols / 2.0, cy = rgb.rows / 2.0;
  for (int y = 0; y < rgb.rows; ++y) {
    for (int x = 0; x < rgb.cols; ++x) {
      const auto& p = rgb.at<cv::Vec3b>(y, x);
      const double r = std::hypot((x - cx) / cx, (y - cy) / cy) / std::sqrt(2.0);
      rgba.at<cv::Vec4b>(y, x) = {p[0], p[1], p[2],
                                  cv::saturate_cast<uchar>(255 * (1.3 - r * 1.3))};
    }
  }
  return rgba;
}

struct Decoder {
  std::string name;
  std::function<void(const Bytes&)> run;
};

struct Group {
  std::string format, size_class;
  std::vector<Bytes> inputs;
  std::vector<Decoder> decoders;
  std::vector<double> seconds;
  double megabytes() const {
    double n = 0;
    for (const auto& b : inputs) n += static_cast<double>(b.size()) / 1e6;
    return n;
  }
};

const char* size_class(std::int64_t pixels) {
  return pixels < 500'000 ? "< 0.5 MP" : pixels < 2'000'000 ? "0.5-2 MP" : ">= 2 MP";
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = PALETTE_BENCH_IMAGES;
  int passes = 5, size = 256;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--passes" && i + 1 < argc) {
      passes = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--size" && i + 1 < argc) {
      size = std::max(1, std::atoi(argv[++i]));
    } else {
      dir = a;
    }
  }
  palette::init_image_io();
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());

  Row jpeg{"JPEG at 1/8 + shrink: DC-only vs libjpeg-turbo",
           [&](const Bytes& b) { (void)palette::codec::decode_jpeg(b, size, true); },
           [&](const Bytes& b) { (void)shrink(palette::codec::decode_jpeg(b, size, false), size); },
           {}};
  Row bmp{"BMP 24-bit: ours vs OpenCV imgcodecs",
          [](const Bytes& b) { (void)palette::codec::decode_bmp(b); },
          [](const Bytes& b) { (void)cv::imdecode(b, cv::IMREAD_UNCHANGED); },
          {}};
  Row pnm{"PPM 8-bit: ours vs OpenCV imgcodecs",
          [](const Bytes& b) { (void)palette::codec::decode_pnm(b); },
          [](const Bytes& b) { (void)cv::imdecode(b, cv::IMREAD_UNCHANGED); },
          {}};
  for (const auto& f : files) {
    Bytes bytes;
    try {
      const auto fb = palette::read_file(f.string());
      bytes.assign(fb.begin(), fb.end());
    } catch (const palette::Error&) {
      continue;
    }
    palette::ImageInfo info;
    try {
      info = palette::sniff_image(bytes);
    } catch (const palette::Error&) {
      continue;
    }
    if (info.format == palette::ImageFormat::kJpeg &&
        std::max(info.width, info.height) >= 8 * static_cast<std::int64_t>(size)) {
      jpeg.inputs.push_back(bytes);
    }
    if (info.format == palette::ImageFormat::kJpeg || info.format == palette::ImageFormat::kPng) {
      const cv::Mat img = cv::imdecode(bytes, cv::IMREAD_COLOR);
      if (img.empty()) continue;
      Bytes out;
      cv::imencode(".bmp", img, out);
      bmp.inputs.push_back(out);
      cv::imencode(".ppm", img, out);
      pnm.inputs.push_back(out);
    }
  }
  // Per format and size class, against the libraries.
  const std::vector<Decoder> jpeg_decoders = {
      {"palette decode_image", [&](const Bytes& b) { (void)palette::decode_image(b, {size}); }},
      // Before 1/8 was taken over 1/4 when nearer --size: the smallest DCT scale at least
      // --size long (libjpeg-turbo at 1/4 for a 1920-px photo), then the shrink as it was.
      {"palette decode_image before (smallest scale >= size)",
       [&](const Bytes& b) {
         const palette::ImageInfo info = palette::sniff_image(b);
         const std::int64_t long_side = std::max(info.width, info.height);
         std::int64_t m = 1;
         while (m < 8 && (long_side * m + 7) / 8 < size) ++m;
         const int wanted = m == 1 ? size : static_cast<int>((long_side * m + 7) / 8);
         (void)palette::codec::shrink_decoded(palette::codec::decode_jpeg(b, wanted), size, 128,
                                              true);
       }},
      {"libjpeg-turbo full size", [](const Bytes& b) { (void)libjpeg_decode(b, 1); }},
      {"libjpeg-turbo 1/8", [](const Bytes& b) { (void)libjpeg_decode(b, 8); }}};
  const std::vector<Decoder> png_decoders = {
      {"palette decode_image", [&](const Bytes& b) { (void)palette::decode_image(b, {size}); }},
      {"palette decode_image before (libpng reader)",
       [&](const Bytes& b) {
         (void)palette::codec::shrink_decoded(palette::codec::decode_png_libpng(b), size, 128,
                                              true);
       }},
      {"palette PNG reader alone", [](const Bytes& b) { (void)palette::codec::decode_png(b); }},
      {"before: libpng reader alone",
       [](const Bytes& b) { (void)palette::codec::decode_png_libpng(b); }},
      {"libpng full size (simplified API)", [](const Bytes& b) { (void)libpng_decode(b); }}};
  std::map<std::pair<std::string, std::string>, Group> groups;
  auto add = [&](const std::string& format, std::int64_t pixels, Bytes b) {
    Group& g = groups[{format, size_class(pixels)}];
    if (g.inputs.empty()) {
      g.format = format;
      g.size_class = size_class(pixels);
      g.decoders = format.rfind("JPEG", 0) == 0 ? jpeg_decoders : png_decoders;
      g.seconds.assign(g.decoders.size(), 0.0);
    }
    g.inputs.push_back(std::move(b));
  };
  for (const auto& f : files) {
    Bytes bytes;
    palette::ImageInfo info;
    try {
      const auto fb = palette::read_file(f.string());
      bytes.assign(fb.begin(), fb.end());
      info = palette::sniff_image(bytes);
    } catch (const palette::Error&) {
      continue;
    }
    const std::int64_t pixels = info.width * info.height;
    if (info.format == palette::ImageFormat::kJpeg) {
      const bool progressive = progressive_jpeg(bytes);
      add(progressive ? "JPEG progressive" : "JPEG baseline", pixels, bytes);
      const cv::Mat bgr = cv::imdecode(bytes, cv::IMREAD_COLOR);
      if (bgr.empty() || bgr.channels() != 3) continue;
      Bytes out;
      if (std::max(bgr.cols, bgr.rows) > 1920) {
        // The 1920x1280 class most photo sets hold, as a camera or an export writes it.
        cv::Mat small;
        const double f = 1920.0 / std::max(bgr.cols, bgr.rows);
        cv::resize(bgr, small, cv::Size(), f, f, cv::INTER_AREA);
        cv::imencode(".jpg", small, out, {cv::IMWRITE_JPEG_QUALITY, 90});
        add("JPEG baseline 1920 px (re-encoded)", std::int64_t{small.cols} * small.rows, out);
        cv::imencode(".jpg", small, out,
                     {cv::IMWRITE_JPEG_PROGRESSIVE, 1, cv::IMWRITE_JPEG_QUALITY, 90});
        add("JPEG progressive 1920 px (re-encoded)", std::int64_t{small.cols} * small.rows, out);
      }
      if (!progressive) {
        cv::imencode(".jpg", bgr, out,
                     {cv::IMWRITE_JPEG_PROGRESSIVE, 1, cv::IMWRITE_JPEG_QUALITY, 90});
        add("JPEG progressive (re-encoded)", pixels, out);
      }
      if (pixels >= 2'000'000) {
        cv::imencode(".png", bgr, out, {cv::IMWRITE_PNG_COMPRESSION, 6});
        add("PNG RGB (JPEG photo re-encoded)", pixels, out);
        cv::Mat rgb;
        cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
        cv::Mat bgra;
        cv::cvtColor(with_vignette(rgb), bgra, cv::COLOR_RGBA2BGRA);
        cv::imencode(".png", bgra, out, {cv::IMWRITE_PNG_COMPRESSION, 6});
        add("PNG RGBA (JPEG photo + alpha vignette)", pixels, out);
      }
    } else if (info.format == palette::ImageFormat::kPng && bytes.size() > 25) {
      const int color = bytes[25];
      add(color == 2 ? "PNG RGB" : color == 6 ? "PNG RGBA" : "PNG other", pixels, bytes);
    }
  }

  std::vector<Row*> rows = {&jpeg, &bmp, &pnm};
  for (int p = 0; p < passes; ++p) {
    for (Row* r : rows) {
      if (r->inputs.empty()) continue;
      // Alternate which goes first, so neither always meets a warm or cold cache.
      if (p % 2 == 0) {
        r->ours_s += seconds(r->ours, r->inputs);
        r->library_s += seconds(r->library, r->inputs);
      } else {
        r->library_s += seconds(r->library, r->inputs);
        r->ours_s += seconds(r->ours, r->inputs);
      }
    }
  }
  for (int p = 0; p < passes; ++p) {
    for (auto& [key, g] : groups) {
      const std::size_t n = g.decoders.size();
      for (std::size_t k = 0; k < n; ++k) {
        // Rotate the order pass by pass, so no decoder always meets a warm or cold cache.
        const std::size_t d = (k + static_cast<std::size_t>(p)) % n;
        const double t0 = cpu_seconds();
        for (const auto& b : g.inputs) g.decoders[d].run(b);
        g.seconds[d] += cpu_seconds() - t0;
      }
    }
  }
  std::printf("%d passes over %s, --size %d\n\n", passes, dir.c_str(), size);
  std::printf("| decoder | images | ours ms/image | library ms/image | library / ours |\n");
  std::printf("| --- | --- | --- | --- | --- |\n");
  for (const Row* r : rows) {
    if (r->inputs.empty()) continue;
    const double n = static_cast<double>(r->inputs.size()) * passes;
    std::printf("| %s | %zu | %.2f | %.2f | %.2fx |\n", r->name.c_str(), r->inputs.size(),
                1e3 * r->ours_s / n, 1e3 * r->library_s / n, r->library_s / r->ours_s);
  }
  std::printf("\nPer format and size class (rates per CPU second; MB: the files' bytes)\n\n");
  std::printf("| format | size class | images | MB | decoder | images/s | MB/s |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  for (const auto& [key, g] : groups) {
    for (std::size_t d = 0; d < g.decoders.size(); ++d) {
      const double s = g.seconds[d] / passes;
      std::printf("| %s | %s | %zu | %.1f | %s | %.1f | %.1f |\n", g.format.c_str(),
                  g.size_class.c_str(), g.inputs.size(), g.megabytes(), g.decoders[d].name.c_str(),
                  static_cast<double>(g.inputs.size()) / s, g.megabytes() / s);
    }
  }
  return 0;
}
