#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>
// clang-format off
#include <jpeglib.h>
// clang-format on

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

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
  int h = 2, v = 2;  // luma sampling factors (chroma 1x1)
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

TEST(Decode, ReducedScaleStaysAtLeastTheWantedSize) {
  JpegOptions o;
  const auto bytes = encode_jpeg(photo(1920, 1280), o);
  const cv::Mat m = codec::decode_jpeg(bytes, 256);
  EXPECT_EQ(m.cols, 480);  // 1/4: 1/8 would give 240 < 256
  const cv::Mat n = codec::decode_jpeg(bytes, 240);
  EXPECT_EQ(n.cols, 240);
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

}  // namespace
}  // namespace palette
