// Each hand-written decoder beside the library that could replace it, on the same bytes, in one
// process, interleaved pass by pass (this machine is shared and noisy: ratios, not absolute
// times, are what carry). Measures and prints; never fails on time.
//
//   bench_decoders [DIR] [--passes N] [--size PX]
//
// - DC-only JPEG (codec_jpeg_dc.cpp) against libjpeg-turbo asked for the same 1/8 scale, each
//   followed by the shrink to --size that decode_image does (INTER_AREA), on every JPEG of DIR
//   whose long side is at least 8 x --size (the only ones the DC path takes);
// - BMP and binary PNM (codec_bmp.cpp) against OpenCV's imgcodecs (cv::imdecode), on each
//   photo of DIR re-encoded as 24-bit BMP and 8-bit PPM in memory.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
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

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "../shared/bench-images";
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
  std::printf("%d passes over %s, --size %d\n\n", passes, dir.c_str(), size);
  std::printf("| decoder | images | ours ms/image | library ms/image | library / ours |\n");
  std::printf("| --- | --- | --- | --- | --- |\n");
  for (const Row* r : rows) {
    if (r->inputs.empty()) continue;
    const double n = static_cast<double>(r->inputs.size()) * passes;
    std::printf("| %s | %zu | %.2f | %.2f | %.2fx |\n", r->name.c_str(), r->inputs.size(),
                1e3 * r->ours_s / n, 1e3 * r->library_s / n, r->library_s / r->ours_s);
  }
  return 0;
}
