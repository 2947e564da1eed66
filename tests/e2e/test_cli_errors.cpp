// End-to-end tests of `palette extract`: failures become rows (exit 1, the good images keep their
// rows, in order), hostile inputs, and stderr (palette's own lines only). Helpers in
// cli_helpers.hpp.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli_helpers.hpp"

namespace palette::test {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Failures become rows: exit 1, the good images keep their rows, in order.

class ErrorRowTest : public ExtractTest {
 protected:
  // Runs `good1 bad good2 [extra...]` and checks the contract for one failed image between two
  // good ones. Returns the failed row's error text.
  std::string expect_error_row(const std::string& bad, const std::vector<std::string>& extra = {}) {
    const std::string good1 = png("good1.png", {kRed, kBlue}, {10, 10}, 4);
    const std::string good2 = solid_png("good2.png", kGreen, 4, 4);
    std::vector<std::string> args = {good1, bad, good2};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = extract_rows(args);
    last_ = r;
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(files_of(r.rows), (std::vector<std::string>{good1, bad, good2}));
    if (r.rows.size() != 3) return "";
    EXPECT_EQ(r.rows[0].error, "");
    EXPECT_EQ(std::set<std::string>(r.rows[0].colors.begin(), r.rows[0].colors.end()),
              (std::set<std::string>{hex(kRed), hex(kBlue)}));
    EXPECT_EQ(r.rows[2].error, "");
    EXPECT_EQ(r.rows[2].colors, (std::vector<std::string>{hex(kGreen)}));
    const auto& failed = r.rows[1];
    EXPECT_NE(failed.error, "");
    EXPECT_LT(failed.error.size(), 200u) << "reason should be short: " << failed.error;
    for (int i = 1; i <= 10; ++i) EXPECT_EQ(failed.cells[i], "") << "cell " << i;
    expect_well_formed(failed, 5);
    return failed.error;
  }

  // A JPEG large enough that cutting it in half cuts into the entropy-coded data.
  std::string jpeg(const std::string& name) {
    cv::Mat img(96, 128, CV_8UC3);
    cv::theRNG().state = 12345;
    cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(256));
    const std::string p = dir_.file(name);
    write_image(p, img, {cv::IMWRITE_JPEG_QUALITY, 90});
    return p;
  }

  static void truncate_half(const std::string& path) {
    auto bytes = read_bytes(path);
    bytes.resize(bytes.size() / 2);
    write_bytes(path, bytes);
  }

  RunResult last_;
};

TEST_F(ErrorRowTest, UntouchedJpegIsFine) {
  const std::string ok = jpeg("ok.jpg");
  const auto r = extract_rows({ok});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  expect_well_formed(r.rows[0], 5);
  EXPECT_EQ(r.rows[0].colors.size(), 5u);
}

TEST_F(ErrorRowTest, TruncatedJpeg) {
  const std::string bad = jpeg("cut.jpg");
  truncate_half(bad);
  expect_error_row(bad);
}

TEST_F(ErrorRowTest, TruncatedProgressiveJpeg) {
  const std::string bad = dir_.file("cut-progressive.jpg");
  cv::Mat img(96, 128, CV_8UC3);
  cv::theRNG().state = 777;
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(256));
  write_image(bad, img, {cv::IMWRITE_JPEG_QUALITY, 90, cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  truncate_half(bad);
  expect_error_row(bad);
}

TEST_F(ErrorRowTest, TruncatedPng) {
  cv::Mat img(64, 64, CV_8UC3);
  cv::theRNG().state = 4242;
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(256));
  const std::string bad = dir_.file("cut.png");
  write_image(bad, img);
  truncate_half(bad);
  expect_error_row(bad);
}

TEST_F(ErrorRowTest, ZeroByteFile) {
  const std::string bad = dir_.file("x.jpg");
  write_bytes(bad, {});
  expect_error_row(bad);
}

TEST_F(ErrorRowTest, TextFileNamedJpg) {
  const std::string bad = dir_.file("x.jpg");
  write_text(bad, "This is plain text, not a JPEG.\nSecond line.\n");
  expect_error_row(bad);
}

TEST_F(ErrorRowTest, UnreadableFile) {
  if (::geteuid() == 0) {
    // Root reads files with mode 000: run palette as "nobody" instead, when we can.
    if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "root, and no setpriv";
    as_user_ = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    if (run({as_user_[0], as_user_[1], as_user_[2], as_user_[3], PALETTE_BINARY, "--version"})
            .exit_code != 0) {
      GTEST_SKIP() << "nobody cannot run " << PALETTE_BINARY;
    }
  }
  const std::string bad = solid_png("locked.png", kRed);
  fs::permissions(bad, fs::perms::none);
  expect_error_row(bad);
}

TEST_F(ErrorRowTest, NonexistentPath) { expect_error_row(dir_.file("does-not-exist.png")); }

TEST_F(ErrorRowTest, ImageOverMaxPixels) {
  const std::string bad = solid_png("big.png", kRed, 20, 20);  // 400 pixels > 100
  // good1 is 20x4 = 80 pixels and good2 4x4 = 16: under the limit.
  expect_error_row(bad, {"--max-pixels", "100"});
}

TEST_F(ErrorRowTest, MaxPixelsRefusesJpegBeforeDecoding) {
  const std::string bad = jpeg("big.jpg");  // 128x96
  const std::string error = expect_error_row(bad, {"--max-pixels", "100"});
  EXPECT_NE(error.find("pixels"), std::string::npos) << error;
}

// Hostile inputs (issue 13): one error row each, never a crash, a hang or a lost row.

TEST_F(ErrorRowTest, JpegWithOversubscribedHuffmanTable) {
  // Large enough for the DC-only decoder; its first Huffman table claims all its codes at
  // length 1 (two fit). Before: a stack overflow that killed the run, rows and all.
  cv::Mat img(1600, 2400, CV_8UC3);
  for (int y = 0; y < img.rows; ++y) {
    for (int x = 0; x < img.cols; ++x) {
      img.at<cv::Vec3b>(y, x) = cv::Vec3b(x % 256, y % 256, (x + y) % 256);
    }
  }
  const std::string bad = dir_.file("crafted.jpg");
  write_image(bad, img, {cv::IMWRITE_JPEG_QUALITY, 90});
  auto bytes = read_bytes(bad);
  std::size_t o = 2;
  while (!(bytes[o] == 0xFF && bytes[o + 1] == 0xC4)) o += 2 + ((bytes[o + 2] << 8) | bytes[o + 3]);
  int total = 0;
  for (int i = 0; i < 16; ++i) total += std::exchange(bytes[o + 5 + i], 0);
  bytes[o + 5] = static_cast<std::uint8_t>(total);
  write_bytes(bad, bytes);
  const std::string error = expect_error_row(bad);
  EXPECT_NE(error.find("corrupt JPEG"), std::string::npos) << error;
  // An unused table of 255 length-1 codes put first: the overflow went off the decoder's stack
  // frame and the run died with SIGSEGV, having written the header only. libjpeg decodes it.
  write_image(bad, img, {cv::IMWRITE_JPEG_QUALITY, 90});
  bytes = read_bytes(bad);
  std::vector<std::uint8_t> dht = {0xFF, 0xC4, 0x01, 0x12, 0x13, 255};
  dht.resize(dht.size() + 15, 0);
  for (int i = 0; i < 255; ++i) dht.push_back(static_cast<std::uint8_t>(i));
  bytes.insert(bytes.begin() + 2, dht.begin(), dht.end());
  write_bytes(bad, bytes);
  const std::string first = solid_png("first.png", kRed);
  const std::string last = solid_png("last.png", kBlue);
  const auto r = extract_rows({first, bad, last});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(r.rows), (std::vector<std::string>{first, bad, last}));
  for (const auto& row : r.rows) EXPECT_EQ(row.error, "") << row.file;
}

TEST_F(ErrorRowTest, FifoNamedLikeAnImageIsAnErrorRowNotAHang) {
  const std::string fifo = dir_.file("pipe.jpg");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(expect_error_row(fifo), "not a regular file (FIFO)");
}

TEST_F(ErrorRowTest, DevZeroIsAnErrorRowNotAnEndlessRead) {
  EXPECT_EQ(expect_error_row("/dev/zero"), "not a regular file (character device)");
}

TEST_F(ErrorRowTest, FullyTransparentPng) {
  cv::Mat rgba(10, 10, CV_8UC4, cv::Scalar(10, 200, 30, 0));
  const std::string bad = dir_.file("transparent.png");
  write_image(bad, rgba);
  const std::string error = expect_error_row(bad);
  EXPECT_NE(error.find("alpha"), std::string::npos) << error;
}

TEST_F(ErrorRowTest, DirectoryNamedLikeAnImageIsNeverAnOkRow) {
  make_dir("folder.png");
  // A directory given directly is expanded; an empty one alongside an image adds no row, but a
  // directory must never be counted as an ok image either.
  const std::string good = solid_png("good.png", kRed);
  const auto r = extract_rows({good, dir_.file("folder.png")});
  ASSERT_GE(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].file, good);
  for (std::size_t i = 1; i < r.rows.size(); ++i) EXPECT_NE(r.rows[i].error, "");
}

TEST_F(ErrorRowTest, EveryFailureInOneRunKeepsOrderAndCounts) {
  const std::string cut = jpeg("cut.jpg");
  truncate_half(cut);
  const std::string empty = dir_.file("empty.jpg");
  write_bytes(empty, {});
  const std::string text = dir_.file("text.jpg");
  write_text(text, "hello");
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kBlue);
  const std::string missing = dir_.file("missing.png");
  const std::vector<std::string> inputs = {cut, a, empty, text, b, missing};
  for (const std::string threads : {"1", "2"}) {
    SCOPED_TRACE("threads " + threads);
    std::vector<std::string> args = inputs;
    args.push_back("--threads");
    args.push_back(threads);
    const auto r = extract_rows(args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(files_of(r.rows), inputs);
    ASSERT_EQ(r.rows.size(), inputs.size());
    const std::vector<bool> ok = {false, true, false, false, true, false};
    for (std::size_t i = 0; i < r.rows.size(); ++i) {
      EXPECT_EQ(r.rows[i].error.empty(), ok[i]) << r.rows[i].file << ": " << r.rows[i].error;
      expect_well_formed(r.rows[i], 5);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// stderr: palette's own lines only.

TEST_F(ErrorRowTest, TruncatedJpegDecoderDoesNotPrintOnItsOwn) {
  const std::string bad = jpeg("cut.jpg");
  truncate_half(bad);
  expect_error_row(bad);
  const std::string& err = last_.err;
  EXPECT_NE(err.find("palette: warning: " + bad + ": "), std::string::npos) << err;
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_EQ(line.rfind("palette: ", 0), 0u) << "a line palette did not write: " << line;
  }
}

TEST_F(ErrorRowTest, TruncatedJpegStderrHasNoLibjpegOrLibpngText) {
  // The contract: stderr must not contain libjpeg's "Premature end of JPEG file" nor "libpng",
  // not even inside palette's own warning line.
  const std::string bad = jpeg("cut.jpg");
  truncate_half(bad);
  expect_error_row(bad);
  const std::string& err = last_.err;
  EXPECT_EQ(err.find("Premature end of JPEG file"), std::string::npos) << err;
  EXPECT_EQ(err.find("libpng"), std::string::npos) << err;
}

TEST_F(ErrorRowTest, TruncatedPngLeavesNoDecoderMessagesOnStderr) {
  cv::Mat img(64, 64, CV_8UC3);
  cv::theRNG().state = 99;
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(256));
  const std::string bad = dir_.file("cut.png");
  write_image(bad, img);
  truncate_half(bad);
  expect_error_row(bad);
  const std::string& err = last_.err;
  EXPECT_EQ(err.find("libpng"), std::string::npos) << err;
  EXPECT_NE(err.find("palette: warning: " + bad + ": "), std::string::npos) << err;
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_EQ(line.rfind("palette: ", 0), 0u) << "a line palette did not write: " << line;
  }
}

TEST_F(ErrorRowTest, WarningLineNamesEachFailedFile) {
  const std::string missing = dir_.file("missing.png");
  const std::string text = dir_.file("text.png");
  write_text(text, "not a png");
  const auto r = extract({missing, solid_png("ok.png", kRed), text});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("palette: warning: " + missing + ": "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("palette: warning: " + text + ": "), std::string::npos) << r.err;
}

TEST_F(ErrorRowTest, QuietSuppressesWarningsAndSummary) {
  const std::string cut = jpeg("cut.jpg");
  truncate_half(cut);
  const std::vector<std::string> args = {solid_png("ok.png", kRed), cut, dir_.file("missing.png")};
  const auto loud = extract(args);
  EXPECT_EQ(loud.exit_code, 1);
  EXPECT_NE(loud.err, "");

  for (const std::string flag : {"-q", "--quiet"}) {
    std::vector<std::string> quiet_args = args;
    quiet_args.push_back(flag);
    const auto quiet = extract(quiet_args);
    EXPECT_EQ(quiet.exit_code, 1) << flag;
    EXPECT_EQ(quiet.err, "") << flag;
    EXPECT_EQ(quiet.out, loud.out) << flag;
  }
}

TEST_F(ExtractTest, SummaryLineOnSuccessAndNoneWhenQuiet) {
  const std::string a = solid_png("a.png", kRed);
  const auto loud = extract({a});
  EXPECT_EQ(loud.exit_code, 0);
  EXPECT_GE(count_lines(loud.err), 1u) << "expected a summary line";
  const auto quiet = extract({a, "-q"});
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.err, "");
  EXPECT_EQ(quiet.out, loud.out);
}

TEST_F(ExtractTest, TimingsGoToStderrAndLeaveStdoutAlone) {
  const std::string a = png("a.png", {kRed, kBlue}, {10, 10});
  const auto plain = extract({a, "--progress", "never"});
  const auto timed = extract({a, "--progress", "never", "--timings"});
  EXPECT_EQ(timed.exit_code, 0) << timed.err;
  EXPECT_EQ(timed.out, plain.out);
  EXPECT_GE(count_lines(timed.err), count_lines(plain.err) + 2) << timed.err;
}

TEST_F(ExtractTest, ProgressAndVerbosityLeaveStdoutAlone) {
  const std::string a = png("a.png", {kRed, kBlue}, {10, 10});
  const std::string b = solid_png("b.png", kGreen);
  const auto plain = extract({a, b});
  EXPECT_EQ(plain.exit_code, 0);
  for (const auto& extra : std::vector<std::vector<std::string>>{{"--progress", "always"},
                                                                 {"--progress", "never"},
                                                                 {"--progress", "auto"},
                                                                 {"-v"},
                                                                 {"--verbose"}}) {
    std::vector<std::string> args = {a, b};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = extract(args);
    EXPECT_EQ(r.exit_code, 0) << extra[0];
    EXPECT_EQ(r.out, plain.out) << extra[0];
  }
}

}  // namespace
}  // namespace palette::test
