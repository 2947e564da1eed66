#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
// clang-format off
#include <jpeglib.h>
// clang-format on

#include <fcntl.h>
#include <png.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <future>
#include <random>
#include <span>

#include "codecs.hpp"
#include "palette/error.hpp"
#include "palette/image_io.hpp"
#include "support/images.hpp"

namespace palette {
namespace {

using test::TempDir;

// A photo-like RGB test image: smooth gradients plus noise, so every DCT coefficient matters.
cv::Mat photo(int width, int height, unsigned seed = 1) {
  cv::Mat img(height, width, CV_8UC3);
  std::mt19937 rng(seed);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const int n = static_cast<int>(rng() % 40) - 20;
      img.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uchar>(x * 255 / width + n),
                                          cv::saturate_cast<uchar>(y * 255 / height - n),
                                          cv::saturate_cast<uchar>((x + y) % 256));
    }
  }
  return img;
}

struct JpegOptions {
  int quality = 90;
  bool progressive = false;
  int h = 2, v = 2;        // luma sampling factors
  int cb_h = 1, cb_v = 1;  // Cb's (Cr is 1x1)
  int restart_rows = 0;
  bool gray = false;
  bool cmyk = false;
};

// Encodes RGB (or CMYK / grey) pixels with libjpeg, with control over sampling, progression
// and restart markers that OpenCV's writer does not offer.
std::vector<std::uint8_t> encode_jpeg(const cv::Mat& img, const JpegOptions& o) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = static_cast<JDIMENSION>(img.cols);
  c.image_height = static_cast<JDIMENSION>(img.rows);
  c.input_components = img.channels();
  c.in_color_space = o.gray ? JCS_GRAYSCALE : o.cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, o.quality, TRUE);
  if (!o.gray && !o.cmyk) {
    c.comp_info[0].h_samp_factor = o.h;
    c.comp_info[0].v_samp_factor = o.v;
    c.comp_info[1].h_samp_factor = o.cb_h;
    c.comp_info[1].v_samp_factor = o.cb_v;
  }
  if (o.progressive) jpeg_simple_progression(&c);
  c.restart_in_rows = o.restart_rows;
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(img.ptr<std::uint8_t>(static_cast<int>(c.next_scanline)));
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::vector<std::uint8_t> out(buf, buf + size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

std::vector<std::uint8_t> encode(const std::string& ext, const cv::Mat& rgb,
                                 const std::vector<int>& params = {}) {
  TempDir dir;
  const auto path = dir.file("img" + ext);
  test::write_image(path, rgb, params);
  return test::read_bytes(path);
}

std::string error_of(const std::vector<std::uint8_t>& bytes, const DecodeOptions& o = {}) {
  try {
    decode_image(bytes, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

cv::Mat as_mat(const DecodedImage& d) {
  return cv::Mat(d.height, d.width, CV_8UC(d.channels), const_cast<std::uint8_t*>(d.pixels.data()))
      .clone();
}

DecodeOptions no_shrink() {
  DecodeOptions o;
  o.size = 4096;
  return o;
}

TEST(Sniff, ReadsDimensionsFromHeaders) {
  const cv::Mat img = photo(37, 21);
  for (const std::string ext : {".png", ".jpg", ".webp", ".bmp", ".tif", ".ppm"}) {
    const auto info = sniff_image(encode(ext, img));
    EXPECT_TRUE(info.has_size) << ext;
    EXPECT_EQ(info.width, 37) << ext;
    EXPECT_EQ(info.height, 21) << ext;
  }
  EXPECT_EQ(sniff_image(encode(".png", img)).format, ImageFormat::kPng);
  EXPECT_EQ(sniff_image(encode(".jpg", img)).format, ImageFormat::kJpeg);
  const std::string gif("GIF89a\x05\x00\x07\x00", 10);
  const auto ginfo = sniff_image(std::vector<std::uint8_t>(gif.begin(), gif.end()));
  EXPECT_EQ(ginfo.format, ImageFormat::kGif);
  EXPECT_EQ(ginfo.width, 5);
  EXPECT_EQ(ginfo.height, 7);
  const std::string text = "hello, not an image";
  EXPECT_EQ(sniff_image(std::vector<std::uint8_t>(text.begin(), text.end())).format,
            ImageFormat::kUnknown);
}

TEST(Sniff, CutHeaderThrows) {
  auto png = encode(".png", photo(8, 8));
  png.resize(18);
  EXPECT_THROW(sniff_image(png), Error);
  auto jpg = encode(".jpg", photo(8, 8));
  jpg.resize(40);
  EXPECT_THROW(sniff_image(jpg), Error);
}

TEST(Decode, PngRgbIsExact) {
  const cv::Mat img = photo(40, 30);
  const auto d = decode_image(encode(".png", img), no_shrink());
  ASSERT_EQ(d.channels, 3);
  EXPECT_EQ(cv::norm(as_mat(d), img, cv::NORM_INF), 0);
  EXPECT_EQ(d.format, ImageFormat::kPng);
}

TEST(Decode, GreyExpandsToRgb) {
  cv::Mat grey(10, 10, CV_8UC1, cv::Scalar(77));
  grey(cv::Rect(0, 0, 5, 10)).setTo(200);
  for (const std::string ext : {".png", ".bmp", ".tif", ".pgm"}) {
    const auto d = decode_image(encode(ext, grey), no_shrink());
    ASSERT_EQ(d.channels, 3) << ext;
    EXPECT_EQ(d.pixels[0], 200) << ext;
    EXPECT_EQ(d.pixels[1], 200) << ext;
    EXPECT_EQ(d.pixels[2], 200) << ext;
    EXPECT_EQ(d.pixels[3 * 9], 77) << ext;
  }
}

TEST(Decode, SixteenBitScalesToEightBit) {
  const cv::Mat img8 = photo(20, 10);
  cv::Mat img16;
  img8.convertTo(img16, CV_16UC3, 257.0);
  for (const std::string ext : {".png", ".tif"}) {
    const auto d = decode_image(encode(ext, img16), no_shrink());
    EXPECT_EQ(cv::norm(as_mat(d), img8, cv::NORM_INF), 0) << ext;
  }
}

TEST(Decode, OneBitPngExpands) {
  cv::Mat bw(8, 8, CV_8UC1, cv::Scalar(0));
  bw(cv::Rect(0, 0, 8, 4)).setTo(255);
  const auto d = decode_image(encode(".png", bw, {cv::IMWRITE_PNG_BILEVEL, 1}), no_shrink());
  EXPECT_EQ(d.pixels[0], 255);
  EXPECT_EQ(d.pixels.back(), 0);
}

TEST(Decode, AlphaIsKeptWhenItMatters) {
  cv::Mat rgba(10, 10, CV_8UC4, cv::Scalar(255, 0, 0, 255));
  const auto opaque = decode_image(encode(".png", rgba), no_shrink());
  EXPECT_EQ(opaque.channels, 3);  // an all-opaque alpha channel carries nothing
  rgba(cv::Rect(5, 0, 5, 10)).setTo(cv::Scalar(0, 255, 0, 0));
  const auto d = decode_image(encode(".png", rgba), no_shrink());
  ASSERT_EQ(d.channels, 4);
  EXPECT_EQ(d.pixels[3], 255);
  EXPECT_EQ(d.pixels[4 * 9 + 3], 0);
  DecodeOptions all = no_shrink();
  all.alpha_threshold = 0;
  EXPECT_EQ(decode_image(encode(".png", rgba), all).channels, 3);  // threshold 0: alpha unused
  for (const std::string ext : {".webp", ".tif"}) {
    const auto e = decode_image(encode(ext, rgba), no_shrink());
    ASSERT_EQ(e.channels, 4) << ext;
    EXPECT_EQ(e.pixels[0], 255) << ext;
    EXPECT_EQ(e.pixels[4 * 9 + 3], 0) << ext;
  }
}

TEST(Decode, ShrinkingWeighsColourByAlpha) {
  // Opaque red next to transparent black: shrunk 4x, border pixels are still pure red.
  cv::Mat rgba(64, 64, CV_8UC4, cv::Scalar(0, 0, 0, 0));
  rgba(cv::Rect(0, 0, 30, 64)).setTo(cv::Scalar(255, 0, 0, 255));
  DecodeOptions o;
  o.size = 16;
  const auto d = decode_image(encode(".png", rgba), o);
  ASSERT_EQ(d.width, 16);
  ASSERT_EQ(d.channels, 4);
  for (int i = 0; i < d.width * d.height; ++i) {
    const std::uint8_t* p = &d.pixels[4 * i];
    if (p[3] > 0) {
      EXPECT_EQ(p[0], 255);
      EXPECT_EQ(p[1], 0);
      EXPECT_EQ(p[2], 0);
    }
  }
}

TEST(Decode, ShrinksToSizeAndNeverEnlarges) {
  DecodeOptions o;
  o.size = 100;
  const auto big = decode_image(encode(".png", photo(400, 200)), o);
  EXPECT_EQ(big.width, 100);
  EXPECT_EQ(big.height, 50);
  EXPECT_EQ(big.source_width, 400);
  const auto small = decode_image(encode(".png", photo(40, 20)), o);
  EXPECT_EQ(small.width, 40);
  EXPECT_EQ(small.height, 20);
  const auto tall = decode_image(encode(".jpg", photo(300, 1200)), o);
  EXPECT_EQ(tall.height, 100);
  EXPECT_EQ(tall.width, 25);
}

TEST(Decode, LosslessFormatsAreExact) {
  const cv::Mat img = photo(33, 17);
  for (const std::string ext : {".bmp", ".tif", ".ppm"}) {
    EXPECT_EQ(cv::norm(as_mat(decode_image(encode(ext, img), no_shrink())), img, cv::NORM_INF), 0)
        << ext;
  }
  const auto webp =
      decode_image(encode(".webp", img, {cv::IMWRITE_WEBP_QUALITY, 101}), no_shrink());
  EXPECT_EQ(cv::norm(as_mat(webp), img, cv::NORM_INF), 0);
}

// BMP's plain layouts, written by hand: 24-bit BGR and 32-bit BGRX (X ignored), rows bottom-up
// (positive height) and top-down (negative), widths that need row padding, one row and one column.
TEST(Decode, PlainBmpInEveryRowOrderAndPadding) {
  for (const int bpp : {24, 32}) {
    for (const bool top_down : {false, true}) {
      for (const auto& [w, h] : {std::pair{33, 17}, {1, 5}, {6, 1}, {2, 2}}) {
        const cv::Mat img = photo(w, h, static_cast<unsigned>(w * h + bpp));  // RGB
        const std::size_t stride = (static_cast<std::size_t>(w) * bpp + 31) / 32 * 4;
        // Padding bytes (and a BGRX pixel's X) are not zero: they must be ignored.
        std::vector<std::uint8_t> b(54 + stride * static_cast<std::size_t>(h), 0x5A);
        std::fill(b.begin(), b.begin() + 54, 0);
        auto put32 = [&](std::size_t at, std::uint32_t v) {
          for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
        };
        b[0] = 'B';
        b[1] = 'M';
        put32(2, static_cast<std::uint32_t>(b.size()));
        put32(10, 54);
        put32(14, 40);
        put32(18, static_cast<std::uint32_t>(w));
        put32(22, static_cast<std::uint32_t>(top_down ? -h : h));
        b[26] = 1;
        b[28] = static_cast<std::uint8_t>(bpp);
        put32(30, 0);  // BI_RGB
        for (int y = 0; y < h; ++y) {
          std::uint8_t* row = &b[54 + stride * static_cast<std::size_t>(top_down ? y : h - 1 - y)];
          for (int x = 0; x < w; ++x) {
            const auto p = img.at<cv::Vec3b>(y, x);
            std::uint8_t* q = row + static_cast<std::size_t>(x) * (bpp / 8);
            q[0] = p[2];
            q[1] = p[1];
            q[2] = p[0];
          }
        }
        const cv::Mat got = codec::decode_bmp(b);
        ASSERT_EQ(got.type(), CV_8UC3) << bpp << " " << w << "x" << h;
        EXPECT_EQ(cv::norm(got, img, cv::NORM_INF), 0)
            << bpp << " bits " << w << "x" << h << (top_down ? " top-down" : "");
      }
    }
  }
}

TEST(Decode, JpegIsCloseToItsSource) {
  const cv::Mat flat(64, 64, CV_8UC3, cv::Scalar(200, 100, 50));
  const auto d = decode_image(encode_jpeg(flat, {}), no_shrink());
  EXPECT_LE(cv::norm(as_mat(d), flat, cv::NORM_INF), 3);
  JpegOptions g;
  g.gray = true;
  const cv::Mat grey(16, 16, CV_8UC1, cv::Scalar(90));
  const auto dg = decode_image(encode_jpeg(grey, g), no_shrink());
  ASSERT_EQ(dg.channels, 3);
  EXPECT_NEAR(dg.pixels[0], 90, 2);
  EXPECT_EQ(dg.pixels[0], dg.pixels[1]);
}

TEST(Decode, CmykJpegBecomesRgb) {
  // Adobe-style CMYK as libjpeg hands it back: channel values are 255 - ink.
  const cv::Mat cmyk(16, 16, CV_8UC4, cv::Scalar(255, 128, 0, 255));
  JpegOptions o;
  o.cmyk = true;
  const auto d = decode_image(encode_jpeg(cmyk, o), no_shrink());
  ASSERT_EQ(d.channels, 3);
  EXPECT_NEAR(d.pixels[0], 255, 3);
  EXPECT_NEAR(d.pixels[1], 128, 3);
  EXPECT_NEAR(d.pixels[2], 0, 3);
}

// Smooth colours (gradients and slow waves), like most of a photo.
cv::Mat smooth(int width, int height) {
  cv::Mat img(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      img.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uchar>(x * 255 / width), static_cast<uchar>(y * 255 / height),
                    static_cast<uchar>(128 + 100 * std::sin(x / 150.0 + y / 90.0)));
    }
  }
  return img;
}

struct Layout {
  int h, v;
  bool gray;
  int restart;
  std::string name() const {
    return std::to_string(h) + "x" + std::to_string(v) + (gray ? " grey" : "") + " restart " +
           std::to_string(restart);
  }
};
const Layout kLayouts[] = {{1, 1, false, 0}, {2, 1, false, 0}, {2, 2, false, 0},
                           {1, 2, false, 0}, {1, 1, true, 0},  {2, 1, false, 3},
                           {2, 2, false, 1}, {1, 1, true, 2},  {1, 1, false, 1}};

std::vector<std::uint8_t> encode_layout(const cv::Mat& rgb, const Layout& c, bool progressive) {
  JpegOptions o;
  o.progressive = progressive;
  o.h = c.h;
  o.v = c.v;
  o.gray = c.gray;
  o.restart_rows = c.restart;
  cv::Mat src = rgb;
  if (c.gray) cv::cvtColor(rgb, src, cv::COLOR_RGB2GRAY);
  return encode_jpeg(src, o);
}

// At 1/8 scale the DC-only decoder replaces libjpeg. Where libjpeg also works from DC alone and
// no chroma is resampled (grey, 4:4:4, and any layout when the picture is neutral grey) the
// pixels must be libjpeg's exactly, baseline or progressive, with or without restart markers,
// at a size that is not a whole number of blocks or MCUs.
TEST(Decode, DcDecoderMatchesLibjpegAtOneEighth) {
  const cv::Mat colour = photo(2001, 1003, 9);
  cv::Mat neutral;
  cv::cvtColor(colour, neutral, cv::COLOR_RGB2GRAY);
  cv::cvtColor(neutral, neutral, cv::COLOR_GRAY2RGB);
  for (const bool progressive : {false, true}) {
    for (const Layout& c : kLayouts) {
      const bool resampled = !c.gray && (c.h > 1 || c.v > 1);
      const auto bytes = encode_layout(resampled ? neutral : colour, c, progressive);
      const std::string what = c.name() + (progressive ? " progressive" : "");
      const cv::Mat fast = codec::decode_jpeg_dc(bytes);
      const cv::Mat full = codec::decode_jpeg(bytes, 200, false);
      ASSERT_FALSE(fast.empty()) << what;
      ASSERT_EQ(fast.size(), cv::Size(251, 126)) << what;  // 1/8 scale, rounded up
      EXPECT_EQ(cv::norm(fast, full, cv::NORM_INF), 0) << what;
      EXPECT_EQ(cv::norm(codec::decode_jpeg(bytes, 251, true), fast, cv::NORM_INF), 0) << what;
    }
  }
}

// With subsampled chroma the DC decoder interpolates chroma between block centres: on smooth
// colours it stays within a level of the true 8x8 means of the full-size decode.
TEST(Decode, DcDecoderChromaIsCloseToTheTrueBlockMeans) {
  const cv::Mat img = smooth(2000, 1000);
  for (const bool progressive : {false, true}) {
    for (const Layout& c : kLayouts) {
      if (c.gray) continue;
      const auto bytes = encode_layout(img, c, progressive);
      const cv::Mat fast = codec::decode_jpeg_dc(bytes);
      const cv::Mat full = codec::decode_jpeg(bytes, 4000, false);
      cv::Mat truth;
      cv::resize(full, truth, fast.size(), 0, 0, cv::INTER_AREA);
      EXPECT_LT(cv::norm(fast, truth, cv::NORM_L1) / static_cast<double>(fast.total() * 3), 1.0)
          << c.name() << (progressive ? " progressive" : "");
    }
  }
}

// Shrinking past 1/8 happens on the YCbCr planes, before colour conversion: the result stays
// within a level of shrinking the full-size decode.
TEST(Decode, DcDecoderShrinksCloseToTheFullDecode) {
  const cv::Mat img = smooth(2400, 1600);
  for (const Layout& c : kLayouts) {
    for (const bool progressive : {false, true}) {
      const auto bytes = encode_layout(img, c, progressive);
      const cv::Mat small = codec::decode_jpeg(bytes, 160, true);
      ASSERT_EQ(small.size(), cv::Size(160, 107)) << c.name();
      const cv::Mat full = codec::decode_jpeg(bytes, 4000, false);
      cv::Mat truth;
      cv::resize(full, truth, small.size(), 0, 0, cv::INTER_AREA);
      EXPECT_LT(cv::norm(small, truth, cv::NORM_L1) / static_cast<double>(small.total() * 3), 1.0)
          << c.name() << (progressive ? " progressive" : "");
    }
  }
}

TEST(Decode, DcDecoderLeavesOtherJpegsToLibjpeg) {
  JpegOptions o;
  o.cmyk = true;
  const cv::Mat cmyk(64, 64, CV_8UC4, cv::Scalar(255, 128, 0, 255));
  EXPECT_TRUE(codec::decode_jpeg_dc(encode_jpeg(cmyk, o)).empty());
  EXPECT_EQ(codec::decode_jpeg(encode_jpeg(cmyk, o), 8).cols, 8);  // libjpeg did it
}

TEST(Decode, DcDecoderRejectsDamage) {
  JpegOptions o;
  o.restart_rows = 1;
  for (const bool progressive : {false, true}) {
    o.progressive = progressive;
    const auto bytes = encode_jpeg(photo(800, 600), o);
    for (const double keep : {0.3, 0.6, 0.9, 0.999}) {
      auto cut = bytes;
      cut.resize(static_cast<std::size_t>(bytes.size() * keep));
      EXPECT_THROW(codec::decode_jpeg_dc(cut), Error) << keep;
      EXPECT_THROW(decode_image(cut, {}), Error) << keep;
    }
    // Flipped bits in the entropy-coded data: an error or an image, never a crash.
    std::mt19937 rng(1);
    for (int t = 0; t < 50; ++t) {
      auto bad = bytes;
      for (int i = 0; i < 20; ++i) bad[600 + rng() % (bad.size() - 700)] ^= 1 << (rng() % 8);
      try {
        const cv::Mat m = codec::decode_jpeg_dc(bad);
        if (!m.empty()) {
          EXPECT_EQ(m.size(), cv::Size(100, 75));
        }
      } catch (const Error&) {
      }
    }
  }
}

// The DCT scale: the smallest at least as long as the wanted size, but 1/8 over 2/8 when it
// comes nearer, as a ratio.
TEST(Decode, ReducedScaleIsTheNearestToTheWantedSize) {
  EXPECT_EQ(codec::pick_scale_num(1920, 1280, 256), 1);  // 240 (x0.94) beats 480 (x1.88)
  EXPECT_EQ(codec::pick_scale_num(1280, 1920, 256), 1);
  EXPECT_EQ(codec::pick_scale_num(1448, 900, 256), 2);   // 181 (x0.71) loses to 362 (x1.41)
  EXPECT_EQ(codec::pick_scale_num(1456, 900, 256), 1);   // 182 (x0.71) beats 364 (x1.42)
  EXPECT_EQ(codec::pick_scale_num(1000, 700, 256), 3);   // 375: 250 is not 1/8
  EXPECT_EQ(codec::pick_scale_num(4000, 3000, 256), 1);  // 500: shrunk further
  EXPECT_EQ(codec::pick_scale_num(300, 200, 256), 7);    // 263, the smallest >= 256
  EXPECT_EQ(codec::pick_scale_num(200, 100, 256), 8);    // never enlarged
  EXPECT_EQ(codec::pick_scale_num(1, 1, 1), 1);          // 1/8 of one pixel is still one
  EXPECT_EQ(codec::pick_scale_num(8, 8, 1), 1);
  JpegOptions o;
  const auto bytes = encode_jpeg(photo(1920, 1280), o);
  EXPECT_EQ(codec::decode_jpeg(bytes, 256).cols, 240);  // the DC decoder's 1/8, not shrunk
  EXPECT_EQ(codec::decode_jpeg(bytes, 256, false).cols, 240);
  EXPECT_EQ(codec::decode_jpeg(bytes, 400).cols, 480);
  const DecodedImage img = decode_image(bytes, DecodeOptions{});
  EXPECT_EQ(img.width, 240);
  EXPECT_EQ(img.height, 160);
  EXPECT_EQ(img.source_width, 1920);
}

TEST(Decode, TruncatedFilesAreErrors) {
  const cv::Mat img = photo(300, 200);
  JpegOptions prog;
  prog.progressive = true;
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::vector<std::uint8_t>>>{
           {"jpeg", encode_jpeg(img, {})},
           {"progressive jpeg", encode_jpeg(img, prog)},
           {"png", encode(".png", img)},
           {"webp", encode(".webp", img)},
           {"bmp", encode(".bmp", img)},
           {"tiff", encode(".tif", img)},
           {"ppm", encode(".ppm", img)}}) {
    auto cut = bytes;
    cut.resize(bytes.size() / 2);
    const std::string e = error_of(cut);
    EXPECT_NE(e, "") << name;
    EXPECT_TRUE(e.find("truncated") != std::string::npos || e.find("corrupt") != std::string::npos)
        << name << ": " << e;
  }
  // Cut at 1/8 scale too (the progressive shortcut path).
  auto cut = encode_jpeg(photo(2000, 1000), prog);
  cut.resize(cut.size() * 3 / 4);
  EXPECT_NE(error_of(cut).find("truncated"), std::string::npos);
}

TEST(Decode, HarmlessJpegWarningsAreNotErrors) {
  auto bytes = encode_jpeg(photo(64, 64), {});
  // Junk before the EOI marker: libjpeg warns about extraneous bytes and decodes fine.
  bytes.insert(bytes.end() - 2, {0x12, 0x34});
  EXPECT_EQ(error_of(bytes), "");
}

TEST(Decode, PixelLimitIsCheckedBeforeDecoding) {
  auto png = encode(".png", photo(20, 20));
  DecodeOptions o;
  o.max_pixels = 399;
  EXPECT_NE(error_of(png, o).find("--max-pixels"), std::string::npos);
  o.max_pixels = 400;
  EXPECT_EQ(error_of(png, o), "");
  // A header claiming 100000 x 100000 with no data: refused by size, not found truncated.
  png[16] = 0;
  png[17] = 1;
  png[18] = 0x86;
  png[19] = 0xA0;
  png[20] = 0;
  png[21] = 1;
  png[22] = 0x86;
  png[23] = 0xA0;
  EXPECT_NE(error_of(png).find("over the limit"), std::string::npos);
}

TEST(Decode, NonImagesAreErrors) {
  EXPECT_EQ(error_of({}), "empty file");
  const std::string text = "just some text, really";
  EXPECT_NE(error_of(std::vector<std::uint8_t>(text.begin(), text.end())).find("not an image"),
            std::string::npos);
  const std::string gif("GIF89a\x05\x00\x07\x00\x00\x00\x00", 13);
  EXPECT_NE(error_of(std::vector<std::uint8_t>(gif.begin(), gif.end())).find("GIF"),
            std::string::npos);
}

TEST(ReadFile, ReportsWhyItCannotRead) {
  TempDir dir;
  auto msg = [](const std::string& p) {
    try {
      read_file(p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(msg(dir.file("missing.png")).find("cannot open"), std::string::npos);
  EXPECT_EQ(msg(dir.path().string()), "is a directory");
  test::write_text(dir.file("zero.jpg"), "");
  EXPECT_EQ(msg(dir.file("zero.jpg")), "empty file");
  test::write_text(dir.file("x.bin"), "abc");
  const auto bytes = read_file(dir.file("x.bin"));
  EXPECT_EQ(std::vector<std::uint8_t>(bytes.begin(), bytes.end()),
            (std::vector<std::uint8_t>{'a', 'b', 'c'}));
}

// What `merge` and a distributed extract ask of a row that says its file could not be reached.
TEST(ReadFile, TellsAnUnreachableFileFromOneThatOpens) {
  TempDir dir;
  test::write_text(dir.file("x.bin"), "abc");
  EXPECT_TRUE(can_open(dir.file("x.bin")));
  EXPECT_FALSE(can_open(dir.file("missing.png")));
  EXPECT_FALSE(can_open(dir.file("x.bin/below")));
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  EXPECT_TRUE(can_open(dir.file("fifo")));  // without blocking
  try {
    read_file(dir.file("missing.png"));
    ADD_FAILURE() << "read a missing file";
  } catch (const Error& e) {
    EXPECT_TRUE(unreachable_file_error(e.what())) << e.what();
  }
  EXPECT_TRUE(unreachable_file_error(std::strerror(ENOENT)));  // an input list's reason
  EXPECT_TRUE(unreachable_file_error(std::strerror(EACCES)));
  EXPECT_FALSE(unreachable_file_error("empty file"));
  EXPECT_FALSE(unreachable_file_error("not a regular file (FIFO)"));
  EXPECT_FALSE(unreachable_file_error(""));
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs (issue 13): each file is generated here from a valid one.

// Offset of the first marker `m` (0xFF m) after the SOI, walking segments.
std::size_t find_marker(const std::vector<std::uint8_t>& b, std::uint8_t m) {
  std::size_t o = 2;
  while (o + 4 <= b.size() && b[o] == 0xFF) {
    if (b[o + 1] == m) return o;
    o += 2 + ((static_cast<std::size_t>(b[o + 2]) << 8) | b[o + 3]);
  }
  ADD_FAILURE() << "marker " << int(m) << " not found";
  return 0;
}

TEST(Hostile, OversubscribedHuffmanTableIsAnErrorNotAnOverflow) {
  // The first table of the first DHT segment gets all its codes at length 1 (only two fit):
  // the lookup tables were written thousands of entries past their end before the code-space
  // check (a stack overflow).
  for (const bool progressive : {false, true}) {
    JpegOptions o;
    o.progressive = progressive;
    auto bytes = encode_jpeg(photo(1600, 1200), o);
    const std::size_t dht = find_marker(bytes, 0xC4);
    std::uint8_t* counts = &bytes[dht + 5];
    int total = 0;
    for (int i = 0; i < 16; ++i) total += counts[i];
    ASSERT_GT(total, 2);
    for (int i = 0; i < 16; ++i) counts[i] = 0;
    counts[0] = static_cast<std::uint8_t>(total);
    EXPECT_THROW(codec::decode_jpeg_dc(bytes), Error);
    const std::string e = error_of(bytes);
    EXPECT_NE(e.find("corrupt JPEG"), std::string::npos) << e;
  }
  // An extra, unused AC table with 255 codes of length 1, right after the SOI: 64K lookup
  // entries were written past the table, off the decoder's stack frame (SIGSEGV). libjpeg only
  // checks the tables a scan uses, so the image itself still decodes.
  auto bytes = encode_jpeg(photo(1600, 1200), {});
  std::vector<std::uint8_t> dht = {0xFF, 0xC4, 0x01, 0x12, 0x13, 255};
  dht.resize(dht.size() + 15, 0);
  for (int i = 0; i < 255; ++i) dht.push_back(static_cast<std::uint8_t>(i));
  ASSERT_EQ(dht.size(), 2u + 0x112);
  bytes.insert(bytes.begin() + 2, dht.begin(), dht.end());
  EXPECT_THROW(codec::decode_jpeg_dc(bytes), Error);
  EXPECT_EQ(error_of(bytes), "");
}

TEST(Hostile, ProgressiveDcScanThatEndsEarlyIsTruncated) {
  // The DC scan of a large progressive image keeps 10 bytes of its data and the file ends:
  // the reader went on through its padding and beyond.
  JpegOptions o;
  o.progressive = true;
  o.gray = true;
  cv::Mat grey;
  cv::cvtColor(photo(2400, 1600), grey, cv::COLOR_RGB2GRAY);
  auto bytes = encode_jpeg(grey, o);
  const std::size_t sos = find_marker(bytes, 0xDA);
  const std::size_t data = sos + 2 + ((bytes[sos + 2] << 8) | bytes[sos + 3]);
  bytes.resize(data + 10);
  bytes.push_back(0xFF);
  bytes.push_back(0xD9);
  try {
    codec::decode_jpeg_dc(bytes);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "truncated JPEG");
  }
  EXPECT_NE(error_of(bytes), "");
}

TEST(Hostile, LumaSampledMoreCoarselyThanChromaKeepsItsColours) {
  // Luma 2x1, Cb 1x2, Cr 1x1: vertically luma is coarser than Cb. The shrink step read the
  // luma plane past its rows (and gave wrong colours); such files go to libjpeg now.
  JpegOptions o;
  o.h = 2;
  o.v = 1;
  o.cb_h = 1;
  o.cb_v = 2;
  const cv::Vec3b colour(200, 40, 90);
  const cv::Mat flat(1200, 1600, CV_8UC3, cv::Scalar(colour[0], colour[1], colour[2]));
  const auto bytes = encode_jpeg(flat, o);
  EXPECT_TRUE(codec::decode_jpeg_dc(bytes, 64).empty());
  for (const int size : {64, 200}) {  // shrunk further, and exactly 1/8
    const cv::Mat m = codec::decode_jpeg(bytes, size);
    ASSERT_FALSE(m.empty());
    EXPECT_EQ(m.cols, 200);  // libjpeg at 1/8; decode_image shrinks further
    for (int y = 0; y < m.rows; ++y) {
      for (int x = 0; x < m.cols; ++x) {
        const cv::Vec3b p = m.at<cv::Vec3b>(y, x);
        for (int c = 0; c < 3; ++c) ASSERT_NEAR(p[c], colour[c], 4) << x << "," << y;
      }
    }
  }
}

TEST(Hostile, JpegWithThousandsOfScansIsRefused) {
  // Each scan is a pass over every block: a first AC scan of a progressive file repeated 600
  // times (a 1 MB file could hold a hundred thousand) is refused instead of decoded.
  JpegOptions o;
  o.progressive = true;
  const auto bytes = encode_jpeg(photo(640, 480), o);
  // The first scan with Ss > 0 and Ah = 0, with the Huffman tables written just before it,
  // up to the tables of the next scan.
  std::size_t begin = 0, end = 0, dht = 0;
  for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
    if (bytes[i] != 0xFF) continue;
    if (bytes[i + 1] == 0xC4) dht = i;
    if (bytes[i + 1] != 0xDA) continue;
    if (begin) {
      end = dht > begin ? dht : i;
      break;
    }
    const std::size_t params = i + 5 + 2 * bytes[i + 4];
    if (bytes[params] > 0 && (bytes[params + 2] >> 4) == 0) begin = dht ? dht : i;
  }
  ASSERT_GT(end, begin);
  const std::vector<std::uint8_t> scan(bytes.begin() + static_cast<std::ptrdiff_t>(begin),
                                       bytes.begin() + static_cast<std::ptrdiff_t>(end));
  std::vector<std::uint8_t> many(bytes.begin(), bytes.end() - 2);
  for (int i = 0; i < 600; ++i) many.insert(many.end(), scan.begin(), scan.end());
  many.insert(many.end(), {0xFF, 0xD9});
  EXPECT_THROW(codec::decode_jpeg_dc(many), Error);
  for (const bool fast : {true, false}) {
    try {
      codec::decode_jpeg(many, 80, fast);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("scans"), std::string::npos) << e.what();
    }
  }
  // The file as it was still decodes.
  EXPECT_EQ(codec::decode_jpeg(bytes, 80).cols, 80);
}

TEST(Hostile, PngChunkLongerThanTheFileIsNotAllocated) {
  // Found by fuzz_png: an iTXt chunk before the image data claiming 1.7 GB. libpng allocated
  // and zeroed the declared length before reading it (1.7 GB of RSS and 7 s for 155 bytes).
  auto png = encode(".png", photo(32, 24));
  const std::vector<std::uint8_t> itxt = {0x65, 0x58, 0x49, 0x66, 'i', 'T', 'X', 't', 'a', 'b'};
  png.insert(png.begin() + 33, itxt.begin(), itxt.end());  // after the signature and IHDR
  const std::string e = error_of(png);
  EXPECT_NE(e.find("corrupt PNG: a chunk or row of 1700284775 bytes"), std::string::npos) << e;
}

TEST(Hostile, TinyJpegClaimingAHugeFrameIsCutNotAllocated) {
  // A 64x64 progressive file whose frame header says 10000x10000 (under --max-pixels): libjpeg
  // allocated 128 bytes of coefficients per block (about 1.2 GB) for data that is not there.
  // Every block costs at least one bit, so a file this small is cut short, said at once.
  JpegOptions o;
  o.progressive = true;
  auto bytes = encode_jpeg(photo(64, 64), o);
  const std::size_t sof = find_marker(bytes, 0xC2);
  for (const std::size_t at : {sof + 5, sof + 7}) {
    bytes[at] = 10000 >> 8;
    bytes[at + 1] = 10000 & 0xFF;
  }
  for (const bool fast : {true, false}) {
    try {
      codec::decode_jpeg(bytes, 256, fast);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), "truncated JPEG");
    }
  }
}

TEST(Hostile, SegmentEndingExactlyAtTheEndOfTheFile) {
  // Found by fuzz_jpeg_dc: a comment segment of length 2 as the file's last bytes made the
  // decoder index one past the end (undefined behaviour; _GLIBCXX_ASSERTIONS aborts on it).
  const std::vector<std::uint8_t> bytes = {0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x02};
  EXPECT_THROW(codec::decode_jpeg_dc(bytes), Error);
  EXPECT_NE(error_of(bytes), "");
}

// A little-endian TIFF with the given IFD entries (tag, type, value), followed by data_bytes of
// 0x80 (an 8-bit grey strip or tile).
std::vector<std::uint8_t> tiff_with(const std::vector<std::array<std::uint32_t, 3>>& entries,
                                    std::size_t data_bytes = 64) {
  std::vector<std::uint8_t> b = {'I', 'I', 42, 0, 8, 0, 0, 0};
  auto u16 = [&](std::uint32_t v) {
    b.push_back(v & 0xFF);
    b.push_back((v >> 8) & 0xFF);
  };
  auto u32 = [&](std::uint32_t v) {
    u16(v & 0xFFFF);
    u16(v >> 16);
  };
  u16(static_cast<std::uint32_t>(entries.size()));
  for (const auto& [tag, type, value] : entries) {
    u16(tag);
    u16(type);
    u32(1);
    if (type == 3) {
      u16(value);
      u16(0);
    } else {
      u32(value);
    }
  }
  u32(0);
  b.resize(b.size() + data_bytes, 0x80);
  return b;
}

TEST(Decode, UncompressedTiledTiff) {
  // One 16 x 16 tile (256 bytes) for a 12 x 10 grey image, data right after the 10-entry IFD.
  // libtiff 4.5 refused it ("Invalid tile byte count") while the buffer was not given as mapped.
  const std::uint32_t data_at = 8 + 2 + 10 * 12 + 4;
  const auto bytes = tiff_with({{256, 3, 12},
                                {257, 3, 10},
                                {258, 3, 8},
                                {259, 3, 1},
                                {262, 3, 1},
                                {277, 3, 1},
                                {322, 3, 16},
                                {323, 3, 16},
                                {324, 4, data_at},
                                {325, 4, 256}},
                               256);
  ASSERT_EQ(bytes.size(), data_at + 256);
  const cv::Mat m = codec::decode_tiff(bytes, codec::kDefaultMaxPixels);
  ASSERT_EQ(m.cols, 12);
  ASSERT_EQ(m.rows, 10);
  ASSERT_EQ(m.type(), CV_8UC3);
  for (int y = 0; y < m.rows; ++y) {
    for (int x = 0; x < m.cols; ++x) EXPECT_EQ(m.at<cv::Vec3b>(y, x), cv::Vec3b(128, 128, 128));
  }
  EXPECT_EQ(error_of(bytes), "");
}

TEST(Hostile, TiffWithImageWidthTwiceIsCheckedOnTheSizeLibtiffUses) {
  // libtiff takes the first ImageWidth; the sniffer took the last and let a 60000 x 60000
  // image through (11.7 GB of raster from a 1 KB file).
  const auto bytes = tiff_with({{256, 4, 60000},
                                {256, 4, 8},
                                {257, 4, 60000},
                                {258, 3, 8},
                                {259, 3, 1},
                                {262, 3, 1},
                                {273, 4, 200},
                                {277, 3, 1},
                                {278, 4, 60000},
                                {279, 4, 64}});
  const ImageInfo info = sniff_image(bytes);
  EXPECT_EQ(info.width, 60000);
  EXPECT_NE(error_of(bytes).find("over the limit"), std::string::npos) << error_of(bytes);
  // The decoder refuses it on its own, whatever a sniff said.
  try {
    codec::decode_tiff(bytes, 1'000'000);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("60000x60000"), std::string::npos) << e.what();
  }
}

TEST(Hostile, EveryDecoderChecksThePixelLimitItself) {
  const cv::Mat img = photo(64, 48);
  JpegOptions prog;
  prog.progressive = true;
  const std::vector<std::pair<std::string, std::function<cv::Mat(std::uint64_t)>>> decoders = {
      {"jpeg dc",
       [&](std::uint64_t m) { return codec::decode_jpeg_dc(encode_jpeg(img, {}), 0, m); }},
      {"jpeg libjpeg",
       [&](std::uint64_t m) { return codec::decode_jpeg(encode_jpeg(img, prog), 48, false, m); }},
      {"png", [&](std::uint64_t m) { return codec::decode_png(encode(".png", img), m); }},
      {"webp", [&](std::uint64_t m) { return codec::decode_webp(encode(".webp", img), 64, m); }},
      {"tiff", [&](std::uint64_t m) { return codec::decode_tiff(encode(".tif", img), m); }},
      {"bmp", [&](std::uint64_t m) { return codec::decode_bmp(encode(".bmp", img), m); }},
      {"pnm", [&](std::uint64_t m) { return codec::decode_pnm(encode(".ppm", img), m); }}};
  for (const auto& [name, decode] : decoders) {
    EXPECT_EQ(decode(64 * 48).cols, name == "jpeg dc"        ? 8
                                    : name == "jpeg libjpeg" ? 48
                                                             : 64)
        << name;
    try {
      decode(64 * 48 - 1);
      ADD_FAILURE() << name << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("64x48 pixels, over the limit of 3071"),
                std::string::npos)
          << name << ": " << e.what();
    }
  }
}

TEST(Hostile, PnmNumbersAreReadTheSameBySniffAndDecoder) {
  auto bytes_of = [](const std::string& s) {
    return std::vector<std::uint8_t>(s.begin(), s.end());
  };
  // 14 digits: the sniffer read 12 of them and the decoder 10, each a different size.
  for (const std::string header :
       {"P6\n00000000001000 1000\n255\n", "P5 99999999999 1 255 ", "P5 1 4294967296 255 "}) {
    auto bytes = bytes_of(header);
    bytes.resize(bytes.size() + 3000, 7);
    EXPECT_THROW(sniff_image(bytes), Error) << header;
    EXPECT_THROW(codec::decode_pnm(bytes), Error) << header;
    EXPECT_NE(error_of(bytes).find("corrupt PNM header"), std::string::npos) << error_of(bytes);
  }
  // Ten digits are read whole, and the limit applies to them.
  auto big = bytes_of("P5 2000000000 2 255 ");
  big.resize(big.size() + 100, 7);
  EXPECT_EQ(sniff_image(big).width, 2000000000);
  EXPECT_NE(error_of(big).find("2000000000x2 pixels, over the limit"), std::string::npos);
}

TEST(Hostile, OnlyRegularFilesAreReadAndNeverBlock) {
  TempDir dir;
  const std::string fifo = dir.file("pipe.jpg");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto message = [](const std::string& path, std::uint64_t max_bytes) {
    // On a thread, so that a regression that blocks fails the test instead of hanging it.
    auto f = std::async(std::launch::async, [=] {
      try {
        read_file(path, max_bytes);
      } catch (const Error& e) {
        return std::string(e.what());
      }
      return std::string("read");
    });
    if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      ADD_FAILURE() << path << ": still reading after 5 s";
      // Unblock it: a writer for the FIFO, or nothing more to do for a device.
      const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
    }
    return f.get();
  };
  EXPECT_EQ(message(fifo, 1 << 20), "not a regular file (FIFO)");
  EXPECT_EQ(message("/dev/zero", 1 << 20), "not a regular file (character device)");
  EXPECT_EQ(message("/dev/null", 1 << 20), "not a regular file (character device)");
  test::write_text(dir.file("big.png"), std::string(5000, 'x'));
  EXPECT_NE(message(dir.file("big.png"), 4999).find("5000 bytes, over the limit of 4999"),
            std::string::npos);
  EXPECT_EQ(message(dir.file("big.png"), 5000), "read");
  // A size the file system does not report (procfs says 0): still bounded while reading.
  EXPECT_NE(message("/proc/self/maps", 10).find("over the limit of 10"), std::string::npos);
  EXPECT_EQ(max_file_bytes(1000), 8000u + (16u << 20));
}

// ---------------------------------------------------------------------------------------------
// PNG: our reader (decode_png_fast) against libpng, on files libpng writes.

struct PngSpec {
  int color = PNG_COLOR_TYPE_RGB, depth = 8;
  int width = 7, height = 3;
  bool interlaced = false;
  bool trns = false;
  int filter = PNG_ALL_FILTERS;
  unsigned seed = 1;
};

int png_samples(int color) {
  switch (color) {
    case PNG_COLOR_TYPE_GRAY:
    case PNG_COLOR_TYPE_PALETTE:
      return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      return 2;
    case PNG_COLOR_TYPE_RGB:
      return 3;
    default:
      return 4;
  }
}

extern "C" void png_test_write(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
extern "C" void png_test_flush(png_structp) {}
extern "C" void png_test_error(png_structp png, png_const_charp msg) {
  ADD_FAILURE() << "libpng: " << msg;
  png_longjmp(png, 1);
}
extern "C" void png_test_read(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<std::pair<const std::uint8_t*, std::size_t>*>(png_get_io_ptr(png));
  if (n > src->second) png_error(png, "truncated");
  std::memcpy(out, src->first, n);
  src->first += n;
  src->second -= n;
}

// A PNG of random samples (palette indices below the palette's size), written by libpng with
// the filters and layout of `s`. Palettes have fewer entries than the depth allows when it
// allows more than 3; tRNS covers fewer entries than the palette, or is a key that some pixels
// match exactly.
std::vector<std::uint8_t> write_png(const PngSpec& s) {
  std::mt19937 rng(s.seed);
  const int samples = png_samples(s.color);
  const std::size_t row_bytes = (std::size_t(s.width) * samples * s.depth + 7) / 8;
  const int num_palette =
      s.color == PNG_COLOR_TYPE_PALETTE ? (s.depth == 1 ? 2 : std::min(1 << s.depth, 200) - 1) : 0;
  std::vector<std::vector<std::uint8_t>> rows(s.height, std::vector<std::uint8_t>(row_bytes, 0));
  for (auto& row : rows) {
    if (s.color == PNG_COLOR_TYPE_PALETTE) {
      for (int x = 0; x < s.width; ++x) {
        const unsigned v = rng() % num_palette;
        const int bit = x * s.depth;
        row[bit / 8] |= static_cast<std::uint8_t>(v << (8 - s.depth - bit % 8));
      }
    } else {
      for (auto& b : row) b = static_cast<std::uint8_t>(rng() % 8 == 0 ? 0 : rng());
    }
  }
  // Repeat the first pixel now and then, so a tRNS key taken from it matches several.
  const std::size_t pixel = std::max<std::size_t>(1, std::size_t(samples) * s.depth / 8);
  if (s.depth >= 8) {
    for (int y = 0; y < s.height; ++y) {
      for (std::size_t x = 0; x + pixel <= row_bytes; x += 3 * pixel) {
        std::memcpy(&rows[y][x], &rows[0][0], pixel);
      }
    }
  }

  std::vector<std::uint8_t> out;
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_test_error, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return {};
  }
  png_set_write_fn(png, &out, png_test_write, png_test_flush);
  png_set_IHDR(png, info, s.width, s.height, s.depth, s.color,
               s.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_filter(png, 0, s.filter);
  std::vector<png_color> plte(static_cast<std::size_t>(std::max(num_palette, 1)));
  std::vector<std::uint8_t> alpha(static_cast<std::size_t>(std::max(num_palette / 2, 1)));
  if (s.color == PNG_COLOR_TYPE_PALETTE) {
    for (auto& c : plte) {
      c = {static_cast<png_byte>(rng()), static_cast<png_byte>(rng()),
           static_cast<png_byte>(rng())};
    }
    png_set_PLTE(png, info, plte.data(), num_palette);
    if (s.trns) {
      for (auto& a : alpha) a = static_cast<std::uint8_t>(rng() % 3 == 0 ? 0 : rng());
      png_set_tRNS(png, info, alpha.data(), static_cast<int>(alpha.size()), nullptr);
    }
  } else if (s.trns) {
    png_color_16 key{};
    auto sample = [&](int i) -> png_uint_16 {
      if (s.depth == 16)
        return static_cast<png_uint_16>((rows[0][2 * i] << 8) | rows[0][2 * i + 1]);
      if (s.depth == 8) return rows[0][i];
      return static_cast<png_uint_16>(rows[0][0] >> (8 - s.depth));
    };
    if (s.color == PNG_COLOR_TYPE_GRAY) {
      key.gray = sample(0);
    } else {
      key.red = sample(0);
      key.green = sample(1);
      key.blue = sample(2);
    }
    png_set_tRNS(png, info, nullptr, 0, &key);
  }
  png_write_info(png, info);
  std::vector<png_bytep> pointers;
  for (auto& r : rows) pointers.push_back(r.data());
  png_write_image(png, pointers.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

// The reference: libpng with no transformations (the samples as stored), then the conversion
// palette promises, written out here: grey to RGB, palette looked up, low depths scaled to
// 0..255, 16 bits rounded to 8 (v / 257), a tRNS key or palette alpha made an alpha channel.
cv::Mat reference_png(const std::vector<std::uint8_t>& bytes) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  std::pair<const std::uint8_t*, std::size_t> src{bytes.data(), bytes.size()};
  std::vector<std::vector<std::uint8_t>> rows;
  cv::Mat out;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return {};
  }
  png_set_read_fn(png, &src, png_test_read);
  png_read_info(png, info);
  const int width = static_cast<int>(png_get_image_width(png, info));
  const int height = static_cast<int>(png_get_image_height(png, info));
  const int depth = png_get_bit_depth(png, info), color = png_get_color_type(png, info);
  if (png_get_interlace_type(png, info) != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
  png_read_update_info(png, info);
  rows.assign(height, std::vector<std::uint8_t>(png_get_rowbytes(png, info)));
  std::vector<png_bytep> pointers;
  for (auto& r : rows) pointers.push_back(r.data());
  png_read_image(png, pointers.data());

  png_colorp plte = nullptr;
  int num_plte = 0;
  png_bytep trans_alpha = nullptr;
  int num_trans = 0;
  png_color_16p key = nullptr;
  if (color == PNG_COLOR_TYPE_PALETTE) png_get_PLTE(png, info, &plte, &num_plte);
  const bool trns = png_get_tRNS(png, info, &trans_alpha, &num_trans, &key) != 0;
  const bool alpha = trns || (color & PNG_COLOR_MASK_ALPHA);
  const int samples = png_samples(color);
  out.create(height, width, alpha ? CV_8UC4 : CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      unsigned v[4] = {};
      for (int i = 0; i < samples; ++i) {
        const std::size_t bit = (std::size_t(x) * samples + i) * depth;
        const std::uint8_t* p = &rows[y][bit / 8];
        v[i] = depth == 16  ? (p[0] << 8) | p[1]
               : depth == 8 ? p[0]
                            : (p[0] >> (8 - depth - bit % 8)) & ((1u << depth) - 1);
      }
      const unsigned max = (1u << depth) - 1;
      auto to8 = [&](unsigned s) { return static_cast<std::uint8_t>((s * 255u + max / 2) / max); };
      std::uint8_t* d = out.ptr<std::uint8_t>(y) + x * out.channels();
      switch (color) {
        case PNG_COLOR_TYPE_PALETTE:
          d[0] = v[0] < unsigned(num_plte) ? plte[v[0]].red : 0;
          d[1] = v[0] < unsigned(num_plte) ? plte[v[0]].green : 0;
          d[2] = v[0] < unsigned(num_plte) ? plte[v[0]].blue : 0;
          if (alpha) d[3] = v[0] < unsigned(num_trans) ? trans_alpha[v[0]] : 255;
          break;
        case PNG_COLOR_TYPE_GRAY:
          d[0] = d[1] = d[2] = to8(v[0]);
          if (alpha) d[3] = v[0] == key->gray ? 0 : 255;
          break;
        case PNG_COLOR_TYPE_GRAY_ALPHA:
          d[0] = d[1] = d[2] = to8(v[0]);
          d[3] = to8(v[1]);
          break;
        case PNG_COLOR_TYPE_RGB:
          for (int c = 0; c < 3; ++c) d[c] = to8(v[c]);
          if (alpha) d[3] = v[0] == key->red && v[1] == key->green && v[2] == key->blue ? 0 : 255;
          break;
        default:
          for (int c = 0; c < 4; ++c) d[c] = to8(v[c]);
      }
    }
  }
  png_destroy_read_struct(&png, &info, nullptr);
  return out;
}

std::string png_name(const PngSpec& s) {
  return "colour " + std::to_string(s.color) + " depth " + std::to_string(s.depth) +
         (s.trns ? " tRNS" : "") + (s.interlaced ? " interlaced " : " ") + std::to_string(s.width) +
         "x" + std::to_string(s.height) + " filter " + std::to_string(s.filter);
}

std::vector<PngSpec> every_png_layout() {
  std::vector<PngSpec> specs;
  const std::vector<std::pair<int, std::vector<int>>> layouts = {
      {PNG_COLOR_TYPE_GRAY, {1, 2, 4, 8, 16}},
      {PNG_COLOR_TYPE_GRAY_ALPHA, {8, 16}},
      {PNG_COLOR_TYPE_RGB, {8, 16}},
      {PNG_COLOR_TYPE_RGB_ALPHA, {8, 16}},
      {PNG_COLOR_TYPE_PALETTE, {1, 2, 4, 8}}};
  unsigned seed = 1;
  for (const auto& [color, depths] : layouts) {
    for (const int depth : depths) {
      for (const bool trns : {false, true}) {
        if (trns && (color & PNG_COLOR_MASK_ALPHA)) continue;
        for (const bool interlaced : {false, true}) {
          // 2 and 3 wide: the narrowest rows two Paeth rows are unfiltered together in.
          for (const auto& [w, h] : {std::pair{1, 1}, {2, 5}, {3, 2}, {7, 3}, {33, 17}}) {
            for (const int filter : {PNG_FILTER_NONE, PNG_FILTER_SUB, PNG_FILTER_UP, PNG_FILTER_AVG,
                                     PNG_FILTER_PAETH, PNG_ALL_FILTERS}) {
              specs.push_back({color, depth, w, h, interlaced, trns, filter, seed++});
            }
          }
        }
      }
    }
  }
  return specs;
}

// resize_area is cv::resize's INTER_AREA, bit for bit: random pixels over the full range (and
// saturated ones), every type it speeds up, ratios of every kind (integer on both axes, on one,
// on none, 1:1 on one axis, down to a single pixel), and a source that is a view into a larger
// image.
cv::Mat random_image(int width, int height, int type, bool saturated) {
  cv::Mat m(height, width, type);
  if (saturated) {
    m.setTo(cv::Scalar::all(CV_MAT_DEPTH(type) == CV_16U ? 65535 : 255));
  } else {
    cv::randu(m, 0, CV_MAT_DEPTH(type) == CV_16U ? 65536 : 256);
  }
  return m;
}

TEST(Area, ShrinksAsOpenCvDoesBitForBit) {
  const std::pair<cv::Size, cv::Size> cases[] = {
      {{1820, 1200}, {256, 169}}, {{1920, 1440}, {256, 192}}, {{1001, 999}, {256, 255}},
      {{3840, 2160}, {256, 144}},  // 15:1 on both axes: cv::resize's own path
      {{512, 300}, {256, 150}},    // 2:1 on both
      {{512, 301}, {256, 150}},    // 2:1 on one axis only
      {{300, 200}, {300, 150}},    // 1:1 across
      {{200, 300}, {150, 300}},    // 1:1 down
      {{300, 300}, {100, 100}},    // 3:1 on both
      {{48, 20}, {6, 4}},          // 8:1 and 5:1
      {{8, 12}, {4, 3}},           // 2:1 and 4:1
      {{1000, 7}, {1, 1}},         // 1000:1 and 7:1
      {{3, 600}, {1, 2}},          // 300 rows to a block: sums past 16 bits
      {{7, 5}, {3, 2}},           {{5, 7}, {1, 1}},           {{1, 2000}, {1, 256}},
      {{2000, 1}, {256, 1}},      {{257, 257}, {256, 256}},   {{999, 3}, {97, 2}}};
  cv::theRNG().state = 5;
  int compared = 0;
  for (const auto& [from, to] : cases) {
    for (const int type : {CV_8UC3, CV_8UC4, CV_16UC4, CV_8UC1}) {
      for (const bool saturated : {false, true}) {
        // A view with a margin on every side, so rows are not packed and the last pixel of a
        // row is not the end of the buffer: both must be read as they are.
        const cv::Mat whole = random_image(from.width + 5, from.height + 2, type, saturated);
        const cv::Mat view = whole(cv::Rect(3, 1, from.width, from.height));
        const cv::Mat packed = random_image(from.width, from.height, type, saturated);
        for (const cv::Mat& src : {view, packed}) {
          cv::Mat want;
          cv::resize(src, want, to, 0, 0, cv::INTER_AREA);
          const cv::Mat got = codec::resize_area(src, to);
          ASSERT_EQ(got.type(), type);
          ASSERT_EQ(got.size(), to);
          EXPECT_EQ(cv::norm(got, want, cv::NORM_INF), 0)
              << from << " -> " << to << " type " << type << (saturated ? " saturated" : "");
          ++compared;
        }
        if (type != CV_8UC4) continue;
        // The alpha-weighted shrink's premultiplied image, made on the way.
        for (const cv::Mat& src : {view, packed}) {
          cv::Mat pre(src.size(), CV_16UC4);
          for (int y = 0; y < src.rows; ++y) {
            for (int x = 0; x < src.cols; ++x) {
              const auto p = src.at<cv::Vec4b>(y, x);
              pre.at<cv::Vec4w>(y, x) = cv::Vec4w(
                  static_cast<std::uint16_t>(p[0] * p[3]), static_cast<std::uint16_t>(p[1] * p[3]),
                  static_cast<std::uint16_t>(p[2] * p[3]), static_cast<std::uint16_t>(p[3] * 255));
            }
          }
          cv::Mat want;
          cv::resize(pre, want, to, 0, 0, cv::INTER_AREA);
          const cv::Mat got = codec::resize_area_premultiplied(src, to);
          ASSERT_EQ(got.type(), CV_16UC4);
          EXPECT_EQ(cv::norm(got, want, cv::NORM_INF), 0)
              << "premultiplied " << from << " -> " << to << (saturated ? " saturated" : "");
          ++compared;
        }
      }
    }
  }
  EXPECT_EQ(compared, 19 * 2 * (4 * 2 + 2));
}

TEST(Png, EveryLayoutDecodesAsLibpngDoes) {
  int checked = 0;
  for (const PngSpec& s : every_png_layout()) {
    const auto bytes = write_png(s);
    ASSERT_FALSE(bytes.empty()) << png_name(s);
    const cv::Mat want = reference_png(bytes);
    ASSERT_FALSE(want.empty()) << png_name(s);
    const cv::Mat fast = codec::decode_png_fast(bytes);
    ASSERT_FALSE(fast.empty()) << png_name(s) << ": left to libpng";
    ASSERT_EQ(fast.type(), want.type()) << png_name(s);
    ASSERT_EQ(fast.size(), want.size()) << png_name(s);
    EXPECT_EQ(cv::norm(fast, want, cv::NORM_INF), 0) << png_name(s);
    const cv::Mat lib = codec::decode_png_libpng(bytes);
    ASSERT_EQ(lib.type(), want.type()) << png_name(s);
    EXPECT_EQ(cv::norm(lib, want, cv::NORM_INF), 0) << png_name(s);
    // And through decode_image, which drops an alpha channel that is opaque throughout.
    const auto d = decode_image(bytes, no_shrink());
    cv::Mat expected = want;
    if (want.channels() == 4) {
      std::vector<cv::Mat> planes;
      cv::split(want, planes);
      double lowest = 0;
      cv::minMaxLoc(planes[3], &lowest);
      if (lowest == 255) cv::cvtColor(want, expected, cv::COLOR_RGBA2RGB);
    }
    ASSERT_EQ(d.channels, expected.channels()) << png_name(s);
    EXPECT_EQ(cv::norm(as_mat(d), expected, cv::NORM_INF), 0) << png_name(s);
    ++checked;
  }
  EXPECT_GT(checked, 700);
}

TEST(Png, LargeRgbAndRgbaWithEveryFilter) {
  // Wide enough rows for the vector unfiltering, in both 8 and 16 bits; Paeth throughout (rows
  // unfiltered two at a time, an odd one left at the end).
  for (const int color : {PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA}) {
    for (const int depth : {8, 16}) {
      for (const int filter : {PNG_ALL_FILTERS, PNG_FILTER_PAETH}) {
        PngSpec s{color, depth, 301, 65, false, false, filter, 7};
        const auto bytes = write_png(s);
        const cv::Mat fast = codec::decode_png_fast(bytes);
        ASSERT_FALSE(fast.empty()) << png_name(s);
        EXPECT_EQ(cv::norm(fast, reference_png(bytes), cv::NORM_INF), 0) << png_name(s);
      }
    }
  }
}

// The chunks' CRCs recomputed after an edit, so that our reader looks further than the CRC.
void fix_png_crcs(std::vector<std::uint8_t>& b) {
  std::size_t pos = 8;
  while (pos <= b.size() && b.size() - pos >= 12) {
    const std::uint32_t length =
        (std::uint32_t{b[pos]} << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3];
    if (length > b.size() - pos - 12) break;
    const auto c = static_cast<std::uint32_t>(crc32(0, &b[pos + 4], length + 4));
    for (int i = 0; i < 4; ++i)
      b[pos + 8 + length + i] = static_cast<std::uint8_t>(c >> (24 - 8 * i));
    pos += 12 + length;
  }
}

// What decode_png answers: the pixels, or the error text.
std::pair<cv::Mat, std::string> png_outcome(std::span<const std::uint8_t> bytes, bool libpng) {
  try {
    return {libpng ? codec::decode_png_libpng(bytes) : codec::decode_png(bytes), ""};
  } catch (const Error& e) {
    return {cv::Mat(), e.what()};
  }
}

TEST(Png, DamagedFilesAnswerAsLibpngDoes) {
  // Cut, bytes changed (with the CRCs fixed up, or not), chunks' lengths changed: decode_png
  // answers what libpng alone answers, the same pixels or the same error, and never crashes.
  std::mt19937 rng(5);
  int errors = 0, cases = 0;
  for (const PngSpec& s :
       {PngSpec{PNG_COLOR_TYPE_RGB, 8, 40, 30, false, false, PNG_ALL_FILTERS, 1},
        PngSpec{PNG_COLOR_TYPE_RGB_ALPHA, 16, 33, 17, true, false, PNG_ALL_FILTERS, 2},
        PngSpec{PNG_COLOR_TYPE_PALETTE, 4, 33, 17, false, true, PNG_ALL_FILTERS, 3},
        PngSpec{PNG_COLOR_TYPE_GRAY, 8, 33, 17, false, true, PNG_FILTER_PAETH, 4}}) {
    const auto good = write_png(s);
    std::vector<std::vector<std::uint8_t>> damaged;
    for (std::size_t cut = 1; cut < good.size(); cut += 1 + good.size() / 40) {
      damaged.emplace_back(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut));
    }
    for (int i = 0; i < 200; ++i) {
      auto b = good;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e)
        b[8 + rng() % (b.size() - 8)] = static_cast<std::uint8_t>(rng());
      if (i % 2 == 0) fix_png_crcs(b);
      damaged.push_back(std::move(b));
    }
    for (const auto& b : damaged) {
      const auto [ours, our_error] = png_outcome(b, false);
      const auto [lib, lib_error] = png_outcome(b, true);
      ++cases;
      EXPECT_EQ(our_error, lib_error) << png_name(s);
      if (our_error.empty() && lib_error.empty()) {
        ASSERT_EQ(ours.type(), lib.type()) << png_name(s);
        EXPECT_EQ(cv::norm(ours, lib, cv::NORM_INF), 0) << png_name(s);
      }
      if (!our_error.empty()) {
        ++errors;
        EXPECT_TRUE(our_error.find("truncated") != std::string::npos ||
                    our_error.find("corrupt") != std::string::npos ||
                    our_error.find("unsupported") != std::string::npos ||
                    our_error.find("limit") != std::string::npos)
            << our_error;
      }
    }
  }
  EXPECT_GT(errors, cases / 4);
}

TEST(Png, BadFilterTypeIsCorrupt) {
  // A row whose filter byte is not 0..4, in an otherwise valid stream: libpng's error.
  PngSpec s{PNG_COLOR_TYPE_RGB, 8, 4, 2, false, false, PNG_FILTER_NONE, 1};
  auto good = write_png(s);
  // Re-compress the image data with a bad filter byte, in a stored (uncompressed) block.
  std::vector<std::uint8_t> raw(2 * (1 + 12), 7);
  raw[0] = 0;
  raw[13] = 9;
  std::vector<std::uint8_t> z(compressBound(raw.size()));
  uLongf zn = z.size();
  ASSERT_EQ(compress(z.data(), &zn, raw.data(), raw.size()), Z_OK);
  z.resize(zn);
  std::vector<std::uint8_t> png(good.begin(), good.begin() + 33);  // signature + IHDR
  const std::uint8_t idat_header[8] = {0, 0, 0, 0, 'I', 'D', 'A', 'T'};
  png.insert(png.end(), idat_header, idat_header + 8);
  for (int i = 0; i < 4; ++i) png[33 + i] = static_cast<std::uint8_t>(zn >> (24 - 8 * i));
  png.insert(png.end(), z.begin(), z.end());
  png.insert(png.end(), 4, 0);
  const std::uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  png.insert(png.end(), iend, iend + 12);
  fix_png_crcs(png);
  EXPECT_TRUE(codec::decode_png_fast(png).empty());
  EXPECT_NE(error_of(png).find("corrupt PNG"), std::string::npos) << error_of(png);
}

}  // namespace
}  // namespace palette
