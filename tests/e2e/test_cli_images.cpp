// End-to-end tests of `palette extract`: alpha, pixel formats, image formats, and determinism on a
// varied set of synthetic images. Helpers in cli_helpers.hpp.

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "cli_helpers.hpp"

namespace palette::test {
namespace {

// ---------------------------------------------------------------------------------------------
// Alpha.

// 20x10 RGBA: left half opaque red, right half green with alpha `green_alpha`.
cv::Mat red_and_green(int green_alpha) {
  cv::Mat rgba(10, 20, CV_8UC4, cv::Scalar(255, 0, 0, 255));
  rgba(cv::Rect(10, 0, 10, 10)).setTo(cv::Scalar(0, 255, 0, green_alpha));
  return rgba;
}

TEST_F(ExtractTest, TransparentPixelsAreNotCounted) {
  const std::string img = dir_.file("half.png");
  write_image(img, red_and_green(0));
  const auto r = extract_rows({img, "-k", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{hex(kRed)}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"1.0000"}));
}

// --stats: the excluded fraction is the pixels alpha left out; an image of exactly k colours
// is rendered perfectly (mean ΔE 0); figures after the error column.
TEST_F(ExtractTest, StatsReportQualityAndExcludedPixels) {
  const std::string half = dir_.file("half.png");
  write_image(half, red_and_green(0));
  const std::string stripes = png("stripes.png", {kRed, kBlue, kWhite}, {4, 3, 3});
  auto r = extract({half, stripes, "-k", "3", "--stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(std::vector<std::string>(rows[0].begin() + 7, rows[0].end()),
            (std::vector<std::string>{"error", "mean_delta_e", "distinct_colors", "iterations",
                                      "converged", "excluded"}));
  EXPECT_EQ(rows[1][8], "0.0000");  // one red: every counted pixel is its colour
  EXPECT_EQ(rows[1][9], "1");
  EXPECT_EQ(rows[1][11], "true");
  EXPECT_EQ(rows[1][12], "0.5000");  // the transparent half
  EXPECT_EQ(rows[2][8], "0.0000");
  EXPECT_EQ(rows[2][9], "3");
  EXPECT_EQ(rows[2][12], "0.0000");
  // Two colours for three: the mean distance is that of the pixels merged into another colour.
  r = extract({stripes, "-k", "2", "--stats", "--format", "jsonl"});
  ASSERT_EQ(count_lines(r.out), 1u) << r.out;
  const auto stats = nlohmann::json::parse(r.out).at("stats");
  EXPECT_GT(stats.at("mean_delta_e").get<double>(), 1.0);
  EXPECT_EQ(stats.at("distinct_colors"), 3);
  EXPECT_EQ(stats.at("excluded").get<double>(), 0.0);
  EXPECT_TRUE(stats.at("converged").is_boolean());
}

// A product shot: a red square on white (40x40, the square 16x16 in the middle).
cv::Mat product_shot() {
  cv::Mat rgb(40, 40, CV_8UC3, cv::Scalar(255, 255, 255));
  rgb(cv::Rect(12, 12, 16, 16)).setTo(cv::Scalar(255, 0, 0));
  return rgb;
}

TEST_F(ExtractTest, IgnoredBackgroundAndWhiteAreNotCounted) {
  const std::string img = dir_.file("product.png");
  write_image(img, product_shot());
  auto r = extract_rows({img, "-k", "2"});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{hex(kWhite), hex(kRed)}));
  for (const char* ignore : {"background", "white", "grey,black"}) {
    const auto rows = parse_csv(extract({img, "-k", "2", "--ignore", ignore, "--stats"}).out);
    ASSERT_EQ(rows.size(), 2u) << ignore;
    // (grey,black: white is grey too, chroma 0.)
    EXPECT_EQ(rows[1][1], hex(kRed)) << ignore;
    EXPECT_EQ(rows[1][2], "") << ignore;
    EXPECT_EQ(rows[1][3], "1.0000") << ignore;
    EXPECT_EQ(rows[1][10], "0.8400") << ignore;  // excluded: 1 - 256/1600
  }
  // Nothing left: an error row saying so.
  const std::string white = solid_png("white.png", kWhite);
  const auto bad = extract({white, "--ignore", "white"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("nothing left to count"), std::string::npos) << bad.out;
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--ignore", "pink"}, {"--ignore-threshold", "-2"}}) {
    std::vector<std::string> a = {img};
    a.insert(a.end(), args.begin(), args.end());
    const auto u = extract(a);
    EXPECT_EQ(u.exit_code, 2) << args[0];
    EXPECT_EQ(count_lines(u.err), 1u) << u.err;
  }
}

// --region: only that rectangle of the image is clustered, in pixels of the original image or
// in percent.
TEST_F(ExtractTest, RegionClustersOnlyItsRectangle) {
  const std::string img = png("halves.png", {kRed, kBlue}, {10, 10}, 10);
  auto r = extract_rows({img, "-k", "2", "--region", "0,0,10,10"});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{hex(kRed)}));
  r = extract_rows({img, "-k", "2", "--region", "50%,0%,50%,100%"});
  EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{hex(kBlue)}));
  r = extract_rows({img, "-k", "2", "--region", "5,0,10,5"});
  EXPECT_EQ(r.rows[0].colors.size(), 2u);
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.5000", "0.5000"}));
  const auto outside = extract({img, "--region", "100,100,5,5"});
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_NE(outside.out.find("--region is outside the image (20x10)"), std::string::npos)
      << outside.out;
  const auto bad = extract({img, "--region", "1,2,3"});
  EXPECT_EQ(bad.exit_code, 2);
}

// --swatches DIR: a PNG strip per image, named by input position, bands as wide as the shares.
TEST_F(ExtractTest, SwatchStripsHaveBandsAsWideAsTheShares) {
  const std::string img = png("stripes.png", {kRed, kBlue, kWhite}, {5, 3, 2});
  const std::string bad = dir_.file("bad.png");
  write_text(bad, "not a png");
  const std::string dir = dir_.file("swatches");
  const auto r = extract({bad, img, "-k", "3", "--swatches", dir, "-q"});
  EXPECT_EQ(r.exit_code, 1);
  const std::string strip = dir + "/000002-stripes.png";
  ASSERT_TRUE(std::filesystem::exists(strip));
  EXPECT_FALSE(std::filesystem::exists(dir + "/000001-bad.png"));  // an error row has none
  const cv::Mat bgr = cv::imread(strip, cv::IMREAD_COLOR);
  ASSERT_EQ(bgr.cols, 400);
  ASSERT_EQ(bgr.rows, 48);
  std::map<std::uint32_t, int> width;
  for (int x = 0; x < bgr.cols; ++x) {
    const cv::Vec3b p = bgr.at<cv::Vec3b>(24, x);
    ++width[static_cast<std::uint32_t>(p[2]) << 16 | p[1] << 8 | p[0]];
  }
  EXPECT_EQ(width, (std::map<std::uint32_t, int>{{kRed, 200}, {kBlue, 120}, {kWhite, 80}}));
}

// --contact-sheet FILE.png: thumbnails with their strips and numbers, 100 to a sheet.
TEST_F(ExtractTest, ContactSheetsShowEveryImageWithItsStrip) {
  const std::string red = dir_.file("red.png");
  write_image(red, cv::Mat(30, 40, CV_8UC3, cv::Scalar(255, 0, 0)));  // RGB
  const std::string bad = dir_.file("bad.png");
  write_text(bad, "not a png");
  std::string list = red + "\n" + bad + "\n";
  for (int i = 0; i < 101; ++i) {
    list += png("tiny" + std::to_string(i) + ".png", {kBlue, kWhite}, {1, 1}, 1) + "\n";
  }
  write_text(dir_.file("list.txt"), list);
  const std::string sheet = dir_.file("sheet.png");
  const auto r = extract({"@" + dir_.file("list.txt"), "-k", "2", "--contact-sheet", sheet, "-q",
                          "-o", dir_.file("out.csv")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // 103 images: a sheet of 100, then one of 3.
  const cv::Mat first = cv::imread(sheet, cv::IMREAD_COLOR);
  const cv::Mat second = cv::imread(dir_.file("sheet-2.png"), cv::IMREAD_COLOR);
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  EXPECT_FALSE(std::filesystem::exists(dir_.file("sheet-3.png")));
  const int cell_h = 120 + 2 + 16 + 4 + 10;
  EXPECT_EQ(first.cols, 10 + 10 * 170);
  EXPECT_EQ(first.rows, 10 + 10 * (cell_h + 10));
  EXPECT_EQ(second.cols, 10 + 3 * 170);  // only as wide as its three images need
  EXPECT_EQ(second.rows, 10 + cell_h + 10);
  const auto rgb = [](const cv::Mat& m, int x, int y) {
    const cv::Vec3b p = m.at<cv::Vec3b>(y, x);
    return static_cast<std::uint32_t>(p[2]) << 16 | p[1] << 8 | p[0];
  };
  // Image 1: the red thumbnail (40x30, centred in its 160x120 box), a red strip.
  EXPECT_EQ(rgb(first, 10, 10), 0xeeeeeeu);
  EXPECT_EQ(rgb(first, 10 + 80, 10 + 60), kRed);
  EXPECT_EQ(rgb(first, 10 + 70, 10 + 50), kRed);
  EXPECT_EQ(rgb(first, 10 + 40, 10 + 60), 0xeeeeeeu);  // outside the thumbnail
  EXPECT_EQ(rgb(first, 10, 10 + 122 + 8), kRed);
  EXPECT_EQ(rgb(first, 10 + 159, 10 + 122 + 8), kRed);
  // Image 2 failed: a red cross, no strip.
  EXPECT_EQ(rgb(first, 180 + 80, 10 + 60), 0xcc2222u);
  EXPECT_EQ(rgb(first, 180 + 80, 10 + 122 + 8), 0xffffffu);
  // Image 3: half blue, half white.
  EXPECT_EQ(rgb(first, 350, 10 + 122 + 8), kBlue);
  EXPECT_EQ(rgb(first, 350 + 159, 10 + 122 + 8), kWhite);
  // Image 101 begins the second sheet.
  EXPECT_EQ(rgb(second, 10, 10 + 122 + 8), kBlue);
  // Refused for a name that is not a PNG's, in no directory, and for shards whose blocks are
  // not whole sheets (more in test_cli_shard.cpp, test_cli_mpi.cpp, test_cli_resume.cpp).
  EXPECT_EQ(extract({red, "--contact-sheet", dir_.file("sheet.jpg")}).exit_code, 2);
  EXPECT_EQ(extract({red, "--contact-sheet", dir_.file("no/such/dir/s.png")}).exit_code, 2);
  EXPECT_EQ(extract({red, "--contact-sheet", sheet, "--shard", "0/2", "--shard-block", "50", "-o",
                     dir_.file("o.csv")})
                .exit_code,
            2);
}

TEST_F(ExtractTest, AlphaThresholdZeroCountsTransparentPixels) {
  const std::string img = dir_.file("half.png");
  write_image(img, red_and_green(0));
  const auto r = extract_rows({img, "-k", "3", "--alpha-threshold", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(std::set<std::string>(r.rows[0].colors.begin(), r.rows[0].colors.end()),
            (std::set<std::string>{hex(kRed), hex(kGreen)}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.5000", "0.5000"}));
}

TEST_F(ExtractTest, AlphaThresholdCountsAlphaAtOrAboveIt) {
  const std::string img = dir_.file("half.png");
  write_image(img, red_and_green(100));
  {
    // Default threshold 128: alpha 100 is below it.
    const auto r = extract_rows({img, "-k", "3"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.rows.size(), 1u);
    EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{hex(kRed)}));
  }
  for (const std::string threshold : {"100", "1"}) {
    SCOPED_TRACE("threshold " + threshold);
    const auto r = extract_rows({img, "-k", "3", "--alpha-threshold", threshold});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.rows.size(), 1u);
    EXPECT_EQ(std::set<std::string>(r.rows[0].colors.begin(), r.rows[0].colors.end()),
              (std::set<std::string>{hex(kRed), hex(kGreen)}));
    EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.5000", "0.5000"}));
  }
  {
    const auto r = extract_rows({img, "-k", "3", "--alpha-threshold", "101"});
    ASSERT_EQ(r.rows.size(), 1u);
    EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{hex(kRed)}));
  }
}

TEST_F(ExtractTest, OpaqueRgbaPngIsTheSameAsRgb) {
  const cv::Mat rgb = stripes({0x884422, 0x2288aa}, {12, 4}, 4);
  cv::Mat rgba;
  cv::cvtColor(rgb, rgba, cv::COLOR_RGB2RGBA);
  const std::string a = dir_.file("rgb.png"), b = dir_.file("rgba.png");
  write_image(a, rgb);
  write_image(b, rgba);
  const auto ra = extract_rows({a, "-k", "2"});
  const auto rb = extract_rows({b, "-k", "2"});
  EXPECT_EQ(ra.exit_code, 0);
  EXPECT_EQ(rb.exit_code, 0);
  ASSERT_EQ(ra.rows.size(), 1u);
  ASSERT_EQ(rb.rows.size(), 1u);
  EXPECT_EQ(ra.rows[0].colors, (std::vector<std::string>{"#884422", "#2288aa"}));
  EXPECT_EQ(rb.rows[0].colors, ra.rows[0].colors);
  EXPECT_EQ(rb.rows[0].shares, ra.rows[0].shares);
}

TEST_F(ExtractTest, ShrinkingRgbaDoesNotBleedTransparentColour) {
  // 200x40, shrunk by 4 to --size 50: left half opaque blue, right half transparent black.
  cv::Mat rgba(40, 200, CV_8UC4, cv::Scalar(0, 0, 255, 255));
  rgba(cv::Rect(100, 0, 100, 40)).setTo(cv::Scalar(0, 0, 0, 0));
  const std::string img = dir_.file("blue.png");
  write_image(img, rgba);
  const auto r = extract_rows({img, "-k", "3", "--size", "50"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{hex(kBlue)}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"1.0000"}));
}

// ---------------------------------------------------------------------------------------------
// Pixel formats.

TEST_F(ExtractTest, GrayscalePngGivesGreyHex) {
  cv::Mat grey(10, 20, CV_8UC1, cv::Scalar(0x40));
  grey(cv::Rect(10, 0, 10, 10)).setTo(cv::Scalar(0xc0));
  const std::string img = dir_.file("grey.png");
  write_image(img, grey);
  const auto r = extract_rows({img, "-k", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(std::set<std::string>(r.rows[0].colors.begin(), r.rows[0].colors.end()),
            (std::set<std::string>{"#404040", "#c0c0c0"}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.5000", "0.5000"}));
}

TEST_F(ExtractTest, GreyPixelsWithAlphaKeepOnlyOpaqueGrey) {
  // Left half grey 0x30 opaque, right half grey 0xa0 fully transparent.
  cv::Mat rgba(6, 12, CV_8UC4, cv::Scalar(0x30, 0x30, 0x30, 255));
  rgba(cv::Rect(6, 0, 6, 6)).setTo(cv::Scalar(0xa0, 0xa0, 0xa0, 0));
  const std::string img = dir_.file("grey-alpha.png");
  write_image(img, rgba);
  const auto r = extract_rows({img, "-k", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{"#303030"}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"1.0000"}));
}

TEST_F(ExtractTest, SixteenBitPngMatchesEightBit) {
  const std::vector<std::uint32_t> colors = {0x19a2f0, 0xe05010, 0x6b6b20};
  const cv::Mat eight = stripes(colors, {10, 6, 4}, 5);
  cv::Mat sixteen;
  eight.convertTo(sixteen, CV_16UC3, 257.0);
  const std::string p8 = dir_.file("eight.png"), p16 = dir_.file("sixteen.png");
  write_image(p8, eight);
  write_image(p16, sixteen);
  const auto r = extract_rows({p8, p16, "-k", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].colors,
            (std::vector<std::string>{hex(0x19a2f0), hex(0xe05010), hex(0x6b6b20)}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.5000", "0.3000", "0.2000"}));
  EXPECT_EQ(r.rows[1].colors, r.rows[0].colors);
  EXPECT_EQ(r.rows[1].shares, r.rows[0].shares);
  EXPECT_EQ(r.rows[1].error, "");
}

TEST_F(ExtractTest, SixteenBitGrayscalePngMatchesEightBit) {
  cv::Mat eight(4, 8, CV_8UC1, cv::Scalar(0x22));
  eight(cv::Rect(0, 0, 2, 4)).setTo(cv::Scalar(0xee));
  cv::Mat sixteen;
  eight.convertTo(sixteen, CV_16UC1, 257.0);
  const std::string p8 = dir_.file("g8.png"), p16 = dir_.file("g16.png");
  write_image(p8, eight);
  write_image(p16, sixteen);
  const auto r = extract_rows({p8, p16, "-k", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{"#222222", "#eeeeee"}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.7500", "0.2500"}));
  EXPECT_EQ(r.rows[1].cells[1], r.rows[0].cells[1]);
  EXPECT_EQ(r.rows[1].colors, r.rows[0].colors);
  EXPECT_EQ(r.rows[1].shares, r.rows[0].shares);
}

struct FormatCase {
  std::string name, ext;
  std::vector<int> params;
  bool lossless;
};

void PrintTo(const FormatCase& c, std::ostream* os) { *os << c.name; }

class FormatTest : public ExtractTest, public ::testing::WithParamInterface<FormatCase> {};

TEST_P(FormatTest, TwoBlocksDecode) {
  // 64x32, blocks aligned to JPEG's 8x8/16x16 blocks.
  const std::string img = dir_.file("blocks" + GetParam().ext);
  write_image(img, stripes({0xe02020, 0x2040d0}, {48, 16}, 32), GetParam().params);
  const auto r = extract_rows({img, "-k", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  ASSERT_EQ(r.rows[0].error, "");
  ASSERT_EQ(r.rows[0].colors.size(), 2u);
  if (GetParam().lossless) {
    EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{"#e02020", "#2040d0"}));
    EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.7500", "0.2500"}));
  } else {
    const std::uint32_t want[2] = {0xe02020, 0x2040d0};
    for (int i = 0; i < 2; ++i) {
      const std::uint32_t got = parse_hex(r.rows[0].colors[i]);
      for (int shift : {16, 8, 0}) {
        const int g = static_cast<int>((got >> shift) & 0xFF);
        const int w = static_cast<int>((want[i] >> shift) & 0xFF);
        EXPECT_NEAR(g, w, 24) << r.rows[0].colors[i] << " vs " << hex(want[i]);
      }
    }
    EXPECT_NEAR(share_e4(r.rows[0].shares[0]), 7500, 300);
  }
  expect_well_formed(r.rows[0], 2);
}

INSTANTIATE_TEST_SUITE_P(
    Cli, FormatTest,
    ::testing::Values(FormatCase{"Png", ".png", {}, true}, FormatCase{"Bmp", ".bmp", {}, true},
                      FormatCase{"Tiff", ".tiff", {}, true}, FormatCase{"Tif", ".tif", {}, true},
                      FormatCase{"WebpLossless", ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}, true},
                      FormatCase{"WebpLossy", ".webp", {cv::IMWRITE_WEBP_QUALITY, 90}, false},
                      FormatCase{"Jpeg", ".jpg", {cv::IMWRITE_JPEG_QUALITY, 95}, false},
                      FormatCase{"JpegProgressive",
                                 ".jpeg",
                                 {cv::IMWRITE_JPEG_QUALITY, 95, cv::IMWRITE_JPEG_PROGRESSIVE, 1},
                                 false}),
    [](const ::testing::TestParamInfo<FormatCase>& info) { return info.param.name; });

TEST_F(ExtractTest, ImageIsRecognisedByContentNotName) {
  // A PNG named .jpg is still decoded.
  const std::string src = png("src.png", {kRed, kBlue}, {10, 10});
  const std::string renamed = dir_.file("really-png.jpg");
  write_bytes(renamed, read_bytes(src));
  const auto r = extract_rows({renamed, "-k", "2"});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::set<std::string>(r.rows[0].colors.begin(), r.rows[0].colors.end()),
            (std::set<std::string>{hex(kRed), hex(kBlue)}));
}

// ---------------------------------------------------------------------------------------------
// Determinism on a varied set of synthetic images.

class DeterminismTest : public ExtractTest {
 protected:
  void SetUp() override { paths_ = write_varied_images(); }

  // ~20 images: gradients, uniform noise (fixed seeds), random blocks, JPEG and alpha variants,
  // some larger than --size so they are shrunk.
  std::vector<std::string> write_varied_images() {
    std::vector<std::string> out;
    auto add = [&](const std::string& name, const cv::Mat& m, const std::vector<int>& params) {
      const std::string p = dir_.file(name);
      write_image(p, m, params);
      out.push_back(p);
    };
    // Gradients.
    for (int g = 0; g < 5; ++g) {
      const int w = 60 + 50 * g, h = 40 + 30 * g;
      cv::Mat m(h, w, CV_8UC3);
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          const int r = 255 * x / (w - 1);
          const int gg = 255 * y / (h - 1);
          const int b = (g * 60 + (x + y) * 255 / (w + h)) % 256;
          m.at<cv::Vec3b>(y, x) = g % 2 ? cv::Vec3b(r, r, b) : cv::Vec3b(r, gg, b);
        }
      }
      add("gradient" + std::to_string(g) + ".png", m, {});
    }
    // Uniform noise with fixed seeds, full and narrow ranges.
    for (int n = 0; n < 5; ++n) {
      cv::Mat m(30 + 37 * n, 50 + 61 * n, CV_8UC3);
      cv::theRNG().state = 1000 + n;
      const int lo = n % 2 ? 60 : 0, hi = n % 2 ? 120 : 256;
      cv::randu(m, cv::Scalar::all(lo), cv::Scalar::all(hi));
      add("noise" + std::to_string(n) + ".png", m, {});
    }
    // Random solid blocks.
    cv::RNG rng(2024);
    for (int b = 0; b < 5; ++b) {
      cv::Mat m(90, 120, CV_8UC3, cv::Scalar(rng.uniform(0, 256), rng.uniform(0, 256), 0));
      for (int i = 0; i < 8 + b; ++i) {
        const int x = rng.uniform(0, 100), y = rng.uniform(0, 70);
        const cv::Rect rect(x, y, rng.uniform(5, 120 - x), rng.uniform(5, 90 - y));
        m(rect).setTo(cv::Scalar(rng.uniform(0, 256), rng.uniform(0, 256), rng.uniform(0, 256)));
      }
      add("blocks" + std::to_string(b) + ".png", m, {});
    }
    // JPEG versions of noise and a large gradient (shrunk at decode).
    {
      cv::Mat m(200, 300, CV_8UC3);
      cv::theRNG().state = 77;
      cv::randu(m, cv::Scalar::all(0), cv::Scalar::all(256));
      add("noise.jpg", m, {cv::IMWRITE_JPEG_QUALITY, 85});
      cv::Mat grad(320, 480, CV_8UC3);
      for (int y = 0; y < grad.rows; ++y) {
        for (int x = 0; x < grad.cols; ++x) {
          grad.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 255 / 479, y * 255 / 319, (x ^ y) & 0xFF);
        }
      }
      add("gradient-large.jpg", grad, {cv::IMWRITE_JPEG_QUALITY, 90});
    }
    // RGBA noise with partial alpha, and greyscale noise.
    {
      cv::Mat m(64, 64, CV_8UC4);
      cv::theRNG().state = 31337;
      cv::randu(m, cv::Scalar::all(0), cv::Scalar::all(256));
      add("alpha-noise.png", m, {});
      cv::Mat g(50, 70, CV_8UC1);
      cv::randu(g, cv::Scalar::all(0), cv::Scalar::all(256));
      add("grey-noise.png", g, {});
      cv::Mat big(300, 260, CV_8UC3);
      cv::randu(big, cv::Scalar::all(0), cv::Scalar::all(256));
      add("noise-large.png", big, {});
    }
    return out;
  }

  Extracted extract_all(const std::vector<std::string>& options) {
    std::vector<std::string> args = paths_;
    args.insert(args.end(), options.begin(), options.end());
    return extract_rows(args);
  }

  std::vector<std::string> paths_;
};

TEST_F(DeterminismTest, VariedImagesGiveWellFormedRows) {
  ASSERT_GE(paths_.size(), 20u);
  const auto r = extract_all({});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(r.rows), paths_);
  for (const auto& row : r.rows) {
    EXPECT_EQ(row.error, "") << row.file;
    EXPECT_EQ(row.colors.size(), 5u) << row.file;  // every image has more than 5 colours
    expect_well_formed(row, 5);
  }
}

TEST_F(DeterminismTest, OneAndTwoThreadsGiveIdenticalOutput) {
  const auto one = extract_all({"--threads", "1"});
  const auto two = extract_all({"--threads", "2"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(two.exit_code, 0) << two.err;
  EXPECT_FALSE(one.out.empty());
  EXPECT_EQ(one.out, two.out);
}

TEST_F(DeterminismTest, RepeatedRunsGiveIdenticalOutput) {
  const auto first = extract_all({"-k", "7", "--seed", "5"});
  const auto second = extract_all({"-k", "7", "--seed", "5"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_FALSE(first.out.empty());
  EXPECT_EQ(first.out, second.out);
}

TEST_F(DeterminismTest, BatchSizeDoesNotChangeOutput) {
  const auto by_default = extract_all({});
  const auto one = extract_all({"--batch", "1"});
  const auto seven = extract_all({"--batch", "7", "--threads", "2"});
  EXPECT_EQ(by_default.exit_code, 0) << by_default.err;
  EXPECT_FALSE(by_default.out.empty());
  EXPECT_EQ(one.out, by_default.out);
  EXPECT_EQ(seven.out, by_default.out);
}

TEST_F(DeterminismTest, EveryColourSpaceIsDeterministic) {
  for (const std::string space : {"lab", "oklab", "rgb"}) {
    SCOPED_TRACE(space);
    const auto a = extract_all({"--space", space, "--threads", "1"});
    const auto b = extract_all({"--space", space, "--threads", "2", "--batch", "3"});
    EXPECT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.out, b.out);
    for (const auto& row : a.rows) expect_well_formed(row, 5);
  }
}

}  // namespace
}  // namespace palette::test
