// End-to-end tests of `palette extract`: the binary is run on synthetic images written to a
// temporary directory, and its exit code, stdout (CSV / JSON Lines) and stderr are checked
// against the command's contract (README.md, docs/, ../shared/DESIGN.md).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/images.hpp"

extern char** environ;

namespace palette::test {
namespace {

namespace fs = std::filesystem;

// run() writes the test's stdin text to the child; a child that exits before reading it all
// (a usage error, say) must not kill the test process with SIGPIPE.
const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

constexpr std::uint32_t kRed = 0xff0000;
constexpr std::uint32_t kGreen = 0x00ff00;
constexpr std::uint32_t kBlue = 0x0000ff;
constexpr std::uint32_t kYellow = 0xffff00;
constexpr std::uint32_t kWhite = 0xffffff;
constexpr std::uint32_t kBlack = 0x000000;

std::string hex(std::uint32_t rgb) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%06x", rgb & 0xFFFFFFu);
  return buf;
}

std::uint32_t parse_hex(const std::string& s) {
  return static_cast<std::uint32_t>(std::stoul(s.substr(1), nullptr, 16));
}

// "0.2500" -> 2500; -1 when the text is not a share with exactly four decimals.
int share_e4(const std::string& s) {
  static const std::regex kShare("^[01]\\.[0-9]{4}$");
  if (!std::regex_match(s, kShare)) return -1;
  return (s[0] - '0') * 10000 + std::stoi(s.substr(2));
}

std::string expected_header(int k) {
  std::string h = "file";
  for (int i = 1; i <= k; ++i) h += ",color_" + std::to_string(i);
  for (int i = 1; i <= k; ++i) h += ",share_" + std::to_string(i);
  return h + ",error";
}

std::size_t count_lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

// One CSV data row, split into its parts.
struct PaletteRow {
  std::string file;
  std::vector<std::string> colors;  // the non-empty colour cells, in column order
  std::vector<std::string> shares;  // the non-empty share cells, in column order
  std::string error;
  std::vector<std::string> cells;  // all cells, as parsed
};

// Parses palette's CSV for `k` colours: checks the header and each row's width and returns the
// rows. Cell-level failures are reported with ADD_FAILURE.
std::vector<PaletteRow> parse_rows(const std::string& text, int k) {
  std::vector<PaletteRow> rows;
  const auto table = parse_csv(text);
  if (table.empty()) {
    ADD_FAILURE() << "no CSV header in output: '" << text << "'";
    return rows;
  }
  std::string header;
  for (std::size_t i = 0; i < table[0].size(); ++i) header += (i ? "," : "") + table[0][i];
  EXPECT_EQ(header, expected_header(k));
  for (std::size_t r = 1; r < table.size(); ++r) {
    const auto& cells = table[r];
    if (cells.size() != static_cast<std::size_t>(2 * k + 2)) {
      ADD_FAILURE() << "row " << r << " has " << cells.size() << " cells, expected " << 2 * k + 2;
      continue;
    }
    PaletteRow row;
    row.cells = cells;
    row.file = cells[0];
    for (int i = 0; i < k; ++i) {
      if (!cells[1 + i].empty()) row.colors.push_back(cells[1 + i]);
      if (!cells[1 + k + i].empty()) row.shares.push_back(cells[1 + k + i]);
    }
    row.error = cells[2 * k + 1];
    rows.push_back(std::move(row));
  }
  return rows;
}

// Checks the contract every row keeps: an ok row has 1..k distinct lowercase #rrggbb colours
// filling the first columns, as many shares with four decimals, sorted descending and summing
// to exactly 1.0000; a failed row has only empty colour/share cells and a one-line reason.
void expect_well_formed(const PaletteRow& row, int k) {
  SCOPED_TRACE("row of " + row.file);
  static const std::regex kHex("^#[0-9a-f]{6}$");
  if (!row.error.empty()) {
    EXPECT_TRUE(row.colors.empty());
    EXPECT_TRUE(row.shares.empty());
    EXPECT_EQ(row.error.find('\n'), std::string::npos);
    return;
  }
  ASSERT_GE(row.colors.size(), 1u);
  ASSERT_LE(row.colors.size(), static_cast<std::size_t>(k));
  ASSERT_EQ(row.colors.size(), row.shares.size());
  for (std::size_t i = 0; i < row.colors.size(); ++i) {
    // Non-empty cells come first, empty ones only at the end.
    EXPECT_FALSE(row.cells[1 + i].empty());
    EXPECT_FALSE(row.cells[1 + k + i].empty());
    EXPECT_TRUE(std::regex_match(row.colors[i], kHex)) << row.colors[i];
  }
  EXPECT_EQ(std::set<std::string>(row.colors.begin(), row.colors.end()).size(), row.colors.size())
      << "duplicate colours";
  int sum = 0, previous = 10001;
  for (const auto& s : row.shares) {
    const int e4 = share_e4(s);
    EXPECT_GE(e4, 0) << "share '" << s << "' is not d.dddd";
    EXPECT_LE(e4, previous) << "shares not sorted descending";
    previous = e4;
    sum += e4;
  }
  EXPECT_EQ(sum, 10000) << "shares do not sum to 1.0000";
}

class ExtractTest : public ::testing::Test {
 protected:
  // Runs `palette extract ARGS...`.
  RunResult extract(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    std::vector<std::string> argv = as_user_;
    argv.insert(argv.end(), {PALETTE_BINARY, "extract"});
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, stdin_text);
  }

  // Writes a PNG of vertical stripes and returns its path.
  std::string png(const std::string& name, const std::vector<std::uint32_t>& colors,
                  const std::vector<int>& widths, int height = 10) {
    const std::string p = dir_.file(name);
    write_image(p, stripes(colors, widths, height));
    return p;
  }

  std::string solid_png(const std::string& name, std::uint32_t color, int w = 8, int h = 8) {
    return png(name, {color}, {w}, h);
  }

  std::string make_dir(const std::string& name) {
    const std::string p = dir_.file(name);
    fs::create_directories(p);
    return p;
  }

  TempDir dir_;
  std::vector<std::string> as_user_;  // command prefix that runs palette as another user
};

// The file column of `rows`, in order.
std::vector<std::string> files_of(const std::vector<PaletteRow>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.file);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Usage errors: exit 2, one line on stderr, nothing on stdout.

struct UsageCase {
  std::string name;
  std::vector<std::string> args;  // after `palette extract`; "IMG" is replaced by a valid image
};

void PrintTo(const UsageCase& c, std::ostream* os) { *os << c.name; }

class UsageErrorTest : public ExtractTest, public ::testing::WithParamInterface<UsageCase> {};

TEST_P(UsageErrorTest, ExitsTwoWithOneLineOnStderrAndNothingOnStdout) {
  const std::string img = solid_png("ok.png", kRed);
  std::vector<std::string> args = GetParam().args;
  for (auto& a : args) {
    if (a == "IMG") a = img;
  }
  const auto r = extract(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_EQ(r.err.back(), '\n');
}

INSTANTIATE_TEST_SUITE_P(
    Cli, UsageErrorTest,
    ::testing::Values(UsageCase{"NoInputs", {}}, UsageCase{"NoInputsButOptions", {"-k", "3"}},
                      UsageCase{"UnknownOption", {"IMG", "--no-such-option"}},
                      UsageCase{"ColorsZero", {"IMG", "-k", "0"}},
                      UsageCase{"Colors65", {"IMG", "-k", "65"}},
                      UsageCase{"ColorsLong65", {"IMG", "--colors", "65"}},
                      UsageCase{"ColorsNotANumber", {"IMG", "-k", "many"}},
                      UsageCase{"ColorsNegative", {"IMG", "-k", "-3"}},
                      UsageCase{"SpaceUnknown", {"IMG", "--space", "xyz"}},
                      UsageCase{"SizeNotANumber", {"IMG", "--size", "big"}},
                      UsageCase{"ThreadsNotANumber", {"IMG", "--threads", "two"}},
                      UsageCase{"FormatUnknown", {"IMG", "--format", "xml"}},
                      UsageCase{"ProgressUnknown", {"IMG", "--progress", "sometimes"}},
                      UsageCase{"BackendUnknown", {"IMG", "--backend", "opencl"}},
                      UsageCase{"AlphaThresholdNotANumber", {"IMG", "--alpha-threshold", "x"}},
                      UsageCase{"MaxPixelsNotANumber", {"IMG", "--max-pixels", "lots"}},
                      UsageCase{"SeedNegative", {"IMG", "--seed", "-1"}},
                      UsageCase{"SeedOver64Bits", {"IMG", "--seed", "18446744073709551616"}},
                      UsageCase{"SeedNotWhole", {"IMG", "--seed", "1e3"}},
                      UsageCase{"OptionMissingValue", {"IMG", "-k"}}),
    [](const ::testing::TestParamInfo<UsageCase>& info) { return info.param.name; });

TEST_F(ExtractTest, DirectoryWithoutImagesIsUsageError) {
  const std::string empty = make_dir("nothing-here");
  write_text(dir_.file("nothing-here/readme.txt"), "not an image\n");
  make_dir("nothing-here/sub");
  const auto r = extract({empty});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

TEST_F(ExtractTest, EmptyListFileIsUsageError) {
  const std::string list = dir_.file("empty.txt");
  write_text(list, "\n\r\n\n");
  const auto r = extract({"@" + list});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

TEST_F(ExtractTest, UnwritableOutputPathIsUsageError) {
  const std::string img = solid_png("ok.png", kRed);
  const auto r = extract({img, "-o", dir_.file("no-such-dir/out.csv")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_FALSE(fs::exists(dir_.file("no-such-dir")));
}

TEST_F(ExtractTest, CudaBackendInBuildWithoutCudaIsUsageError) {
#ifdef PALETTE_WITH_CUDA
  GTEST_SKIP() << "this build has the CUDA backend";
#endif
  const std::string img = solid_png("ok.png", kRed);
  const auto r = extract({img, "--backend", "cuda"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

TEST_F(ExtractTest, CpuAndAutoBackendsWork) {
  const std::string img = png("two.png", {kRed, kBlue}, {10, 10});
  const auto cpu = extract({img, "--backend", "cpu", "-k", "2"});
  const auto automatic = extract({img, "--backend", "auto", "-k", "2"});
  EXPECT_EQ(cpu.exit_code, 0) << cpu.err;
  EXPECT_EQ(automatic.exit_code, 0) << automatic.err;
  EXPECT_EQ(cpu.out, automatic.out);
}

TEST_F(ExtractTest, BoundaryColourCountsAreAccepted) {
  const std::string img = png("two.png", {kRed, kBlue}, {10, 10});
  for (const int k : {1, 64}) {
    SCOPED_TRACE("k=" + std::to_string(k));
    const auto r = extract({img, "-k", std::to_string(k)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto rows = parse_rows(r.out, k);
    ASSERT_EQ(rows.size(), 1u);
    expect_well_formed(rows[0], k);
  }
}

TEST_F(ExtractTest, TuningOptionsAreAccepted) {
  const std::string img = png("three.png", {kRed, kGreen, kBlue}, {10, 6, 4});
  const auto r =
      extract({img,        "-k",           "3",    "--seed",     "42",    "--max-iter",
               "1",        "--tol",        "0",    "--size",     "64",    "--threads",
               "1",        "--batch",      "1",    "--space",    "oklab", "--alpha-threshold",
               "0",        "--max-pixels", "1000", "--progress", "never", "--hidden",
               "--format", "csv"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 3);
  ASSERT_EQ(rows.size(), 1u);
  expect_well_formed(rows[0], 3);
}

// ---------------------------------------------------------------------------------------------
// CSV layout.

TEST_F(ExtractTest, DefaultHeaderHasFiveColourAndShareColumns) {
  const auto r = extract({solid_png("a.png", kRed)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_NE(r.out.find('\n'), std::string::npos);
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), expected_header(5));
}

TEST_F(ExtractTest, HeaderFollowsColourCount) {
  const auto r = extract({solid_png("a.png", kRed), "--colors", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_NE(r.out.find('\n'), std::string::npos);
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')),
            "file,color_1,color_2,color_3,share_1,share_2,share_3,error");
}

TEST_F(ExtractTest, LinesEndWithNewlineOnly) {
  const auto r = extract({solid_png("a.png", kRed), solid_png("b.png", kBlue)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find('\r'), std::string::npos);
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_EQ(count_lines(r.out), 3u);
}

TEST_F(ExtractTest, ThreeStripesGiveExactColoursAndAreaShares) {
  const std::string img = png("stripes.png", {0xd02030, 0x30c040, 0x2040e0}, {50, 30, 20}, 20);
  const auto r = extract({img, "-k", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 3);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].file, img);
  EXPECT_EQ(rows[0].colors,
            (std::vector<std::string>{hex(0xd02030), hex(0x30c040), hex(0x2040e0)}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.5000", "0.3000", "0.2000"}));
  EXPECT_EQ(rows[0].error, "");
}

TEST_F(ExtractTest, ColoursAreSortedByShareWhateverTheirPosition) {
  // The smallest block comes first in the image, the largest last.
  const std::string img = png("stripes.png", {kYellow, kBlack, kBlue, kWhite}, {5, 15, 30, 50});
  const auto r = extract({img, "-k", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 4);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].colors,
            (std::vector<std::string>{hex(kWhite), hex(kBlue), hex(kBlack), hex(kYellow)}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.5000", "0.3000", "0.1500", "0.0500"}));
}

TEST_F(ExtractTest, HexIsLowercase) {
  const std::string img = png("stripes.png", {0xabcdef, 0x0a0b0c}, {10, 10});
  const auto r = extract({img, "-k", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 2);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(std::set<std::string>(rows[0].colors.begin(), rows[0].colors.end()),
            (std::set<std::string>{"#abcdef", "#0a0b0c"}));
  EXPECT_EQ(r.out.find_first_of("ABCDEF", r.out.find('\n')), std::string::npos);
}

TEST_F(ExtractTest, ThirdsRoundByLargestRemainderToExactlyOne) {
  // Three equal blocks: 1/3 each; plain rounding would give 0.9999.
  const std::string img = png("thirds.png", {kRed, kGreen, kBlue}, {10, 10, 10});
  const auto r = extract({img, "-k", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 3);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.3334", "0.3333", "0.3333"}));
  EXPECT_EQ(std::set<std::string>(rows[0].colors.begin(), rows[0].colors.end()),
            (std::set<std::string>{hex(kRed), hex(kGreen), hex(kBlue)}));
}

TEST_F(ExtractTest, SeventhsRoundByLargestRemainderToExactlyOne) {
  // 1/7 = 0.142857...: four shares round up to 0.1429 and three down to 0.1428.
  const std::vector<std::uint32_t> colors = {kRed,   kGreen,   kBlue,   kYellow,
                                             kBlack, 0x00ffff, 0xff00ff};
  const std::string img = png("sevenths.png", colors, {3, 3, 3, 3, 3, 3, 3}, 4);
  const auto r = extract({img, "-k", "7"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 7);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.1429", "0.1429", "0.1429", "0.1429",
                                                      "0.1428", "0.1428", "0.1428"}));
  expect_well_formed(rows[0], 7);
}

TEST_F(ExtractTest, FewerDistinctColoursThanKLeavesExtraCellsEmpty) {
  const std::string img = png("two.png", {kRed, kBlue}, {15, 5});
  const auto r = extract({img});  // k = 5
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  ASSERT_EQ(rows.size(), 1u);
  const auto& c = rows[0].cells;
  EXPECT_EQ(c[1], hex(kRed));
  EXPECT_EQ(c[2], hex(kBlue));
  for (int i = 3; i <= 5; ++i) EXPECT_EQ(c[i], "") << "colour cell " << i;
  EXPECT_EQ(c[6], "0.7500");
  EXPECT_EQ(c[7], "0.2500");
  for (int i = 8; i <= 10; ++i) EXPECT_EQ(c[i], "") << "share cell " << i;
  EXPECT_EQ(c[11], "");
}

TEST_F(ExtractTest, KFarAboveDistinctColoursGivesEachDistinctColourOnce) {
  const std::string img = png("three.png", {kRed, kGreen, kBlue}, {8, 8, 4}, 5);
  const auto r = extract({img, "-k", "12"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 12);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].colors.size(), 3u);
  EXPECT_EQ(std::set<std::string>(rows[0].colors.begin(), rows[0].colors.end()),
            (std::set<std::string>{hex(kRed), hex(kGreen), hex(kBlue)}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.4000", "0.4000", "0.2000"}));
  expect_well_formed(rows[0], 12);
}

TEST_F(ExtractTest, OneByOneImageGivesOneColourWithFullShare) {
  const std::string img = solid_png("one.png", 0x123456, 1, 1);
  const auto r = extract({img, "-k", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 4);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].cells,
            (std::vector<std::string>{img, "#123456", "", "", "", "1.0000", "", "", "", ""}));
}

TEST_F(ExtractTest, SingleColourKOneGivesFullShare) {
  const std::string img = png("two.png", {kRed, kBlue}, {10, 10});
  const auto r = extract({img, "-k", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 1);
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_EQ(rows[0].colors.size(), 1u);
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"1.0000"}));
  expect_well_formed(rows[0], 1);
}

class SpaceTest : public ExtractTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(SpaceTest, SolidBlocksGiveExactColoursAndShares) {
  const std::string img =
      png("blocks.png", {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728}, {40, 30, 20, 10}, 10);
  const auto r = extract({img, "-k", "4", "--space", GetParam()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 4);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].colors,
            (std::vector<std::string>{hex(0x1f77b4), hex(0xff7f0e), hex(0x2ca02c), hex(0xd62728)}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.4000", "0.3000", "0.2000", "0.1000"}));
}

INSTANTIATE_TEST_SUITE_P(Cli, SpaceTest, ::testing::Values("lab", "oklab", "rgb"));

TEST_F(ExtractTest, ShrunkImageKeepsBlockColoursAndShares) {
  // 400 columns shrunk to --size 100: a factor of 4, and every stripe width is a multiple of it,
  // so INTER_AREA never blends two stripes.
  const std::string img = png("wide.png", {0xc03030, 0x30a0c0, 0xe0e040}, {200, 120, 80}, 40);
  const auto r = extract({img, "-k", "3", "--size", "100"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 3);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].colors,
            (std::vector<std::string>{hex(0xc03030), hex(0x30a0c0), hex(0xe0e040)}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.5000", "0.3000", "0.2000"}));
}

TEST_F(ExtractTest, DefaultSizeShrinksLargeImageWithoutChangingBlocks) {
  // 512 columns > 256 (the default --size): shrunk by 2; widths are even.
  const std::string img = png("large.png", {0x804020, 0x2080f0}, {384, 128}, 16);
  const auto r = extract({img, "-k", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 2);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].colors, (std::vector<std::string>{hex(0x804020), hex(0x2080f0)}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.7500", "0.2500"}));
}

TEST_F(ExtractTest, FileNamesWithCommasQuotesAndNewlinesRoundTrip) {
  const std::vector<std::string> names = {"comma,name.png", "quote\"name.png", "new\nline.png",
                                          "both,\"and\r\n.png", "plain name.png"};
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < names.size(); ++i) {
    paths.push_back(solid_png(names[i], 0x102030 * static_cast<std::uint32_t>(i + 1)));
  }
  const auto r = extract(paths);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  EXPECT_EQ(files_of(rows), paths);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].colors,
              (std::vector<std::string>{hex(0x102030 * static_cast<std::uint32_t>(i + 1))}));
  }
}

// The same hostile names read back by the tools people open the CSV with: Python's csv module
// and pandas (Debian's /usr/bin/python3; skipped where it or pandas is missing).
TEST_F(ExtractTest, HostileFileNamesRoundTripThroughPythonCsvAndPandas) {
  const std::string python = "/usr/bin/python3";
  if (::access(python.c_str(), X_OK) != 0) GTEST_SKIP() << "no " << python;
  const std::vector<std::string> names = {"comma,name.png", "quote\"name.png", "new\nline.png",
                                          "both,\"and\r\n.png", "caf\xC3\xA9 \xE2\x9C\x93.png"};
  std::string expected;
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < names.size(); ++i) {
    paths.push_back(solid_png(names[i], 0x102030 * static_cast<std::uint32_t>(i + 1)));
    expected += paths.back() + '\x1f';
  }
  const std::string out = dir_.file("hostile.csv");
  const auto r = extract(paths, "");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  write_text(out, r.out);
  // Each reader prints the file column joined by U+001F; both must give back the exact names.
  const std::string script =
      "import csv, sys\n"
      "with open(sys.argv[1], newline='', encoding='utf-8') as f:\n"
      "    rows = list(csv.DictReader(f))\n"
      "sys.stdout.write(''.join(r['file'] + '\\x1f' for r in rows))\n"
      "if sys.argv[2] == 'pandas':\n"
      "    try:\n"
      "        import pandas\n"
      "    except ImportError:\n"
      "        sys.exit(3)\n"
      "    df = pandas.read_csv(sys.argv[1], dtype=str, keep_default_na=False)\n"
      "    sys.stdout.write('|' + ''.join(v + '\\x1f' for v in df['file']))\n"
      "    assert list(df.columns)[:2] == ['file', 'color_1'], df.columns\n";
  const auto py = run({python, "-c", script, out, "csv"});
  ASSERT_EQ(py.exit_code, 0) << py.err;
  EXPECT_EQ(py.out, expected);
  const auto pd = run({python, "-c", script, out, "pandas"});
  if (pd.exit_code == 3) GTEST_SKIP() << "pandas is not installed";
  ASSERT_EQ(pd.exit_code, 0) << pd.err;
  EXPECT_EQ(pd.out, expected + "|" + expected);
}

// ---------------------------------------------------------------------------------------------
// Output destinations and formats.

TEST_F(ExtractTest, OutputFileHoldsTheCsvAndStdoutIsEmpty) {
  const std::string a = png("a.png", {kRed, kBlue}, {10, 30});
  const std::string b = solid_png("b.png", kGreen);
  const std::string out = dir_.file("result.csv");
  const auto to_file = extract({a, b, "-k", "3", "-o", out});
  EXPECT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_EQ(to_file.out, "");
  const auto to_stdout = extract({a, b, "-k", "3"});
  EXPECT_EQ(to_stdout.exit_code, 0) << to_stdout.err;
  const auto bytes = read_bytes(out);
  const std::string text(bytes.begin(), bytes.end());
  EXPECT_EQ(text, to_stdout.out);
  const auto rows = parse_rows(text, 3);
  EXPECT_EQ(files_of(rows), (std::vector<std::string>{a, b}));
}

TEST_F(ExtractTest, LongOutputOptionAndDashMeanTheSame) {
  const std::string a = solid_png("a.png", kRed);
  const std::string out = dir_.file("long.csv");
  const auto to_file = extract({a, "--output", out});
  EXPECT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_EQ(to_file.out, "");
  const auto dash = extract({a, "-o", "-"});
  EXPECT_EQ(dash.exit_code, 0) << dash.err;
  const auto bytes = read_bytes(out);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), dash.out);
  EXPECT_EQ(parse_rows(dash.out, 5).size(), 1u);
}

// Parses JSON Lines text into objects, checking each line is one JSON object.
std::vector<nlohmann::json> parse_jsonl(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.is_object()) << line;
    out.push_back(std::move(j));
  }
  if (!text.empty()) {
    EXPECT_EQ(text.back(), '\n');
  }
  return out;
}

TEST_F(ExtractTest, JsonlByOutputExtension) {
  const std::string a = png("a.png", {kRed, kBlue}, {30, 10});
  const std::string bad = dir_.file("bad.png");
  write_text(bad, "this is not a PNG");
  for (const std::string ext : {".jsonl", ".ndjson"}) {
    SCOPED_TRACE(ext);
    const std::string out = dir_.file("out" + ext);
    const auto r = extract({a, bad, "-k", "3", "-o", out});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.out, "");
    const auto bytes = read_bytes(out);
    const auto objects = parse_jsonl(std::string(bytes.begin(), bytes.end()));
    ASSERT_EQ(objects.size(), 2u);
    const auto& ok = objects[0];
    EXPECT_EQ(ok.at("file"), a);
    EXPECT_EQ(ok.at("colors"), (nlohmann::json{hex(kRed), hex(kBlue)}));
    ASSERT_TRUE(ok.at("shares").is_array());
    ASSERT_EQ(ok.at("shares").size(), 2u);
    EXPECT_DOUBLE_EQ(ok.at("shares")[0].get<double>(), 0.75);
    EXPECT_DOUBLE_EQ(ok.at("shares")[1].get<double>(), 0.25);
    EXPECT_TRUE(ok.at("error").is_null());
    const auto& failed = objects[1];
    EXPECT_EQ(failed.at("file"), bad);
    EXPECT_TRUE(failed.at("colors").empty());
    EXPECT_TRUE(failed.at("shares").empty());
    ASSERT_TRUE(failed.at("error").is_string());
    EXPECT_FALSE(failed.at("error").get<std::string>().empty());
  }
}

TEST_F(ExtractTest, JsonlFormatOnStdoutAndEscapedNames) {
  const std::string a = solid_png("quote\"back\\slash\nnl.png", 0x336699);
  const auto r = extract({a, "--format", "jsonl"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines(r.out), 1u) << r.out;
  const auto objects = parse_jsonl(r.out);
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].at("file"), a);
  EXPECT_EQ(objects[0].at("colors"), (nlohmann::json{"#336699"}));
  EXPECT_EQ(objects[0].at("shares").size(), 1u);
  EXPECT_DOUBLE_EQ(objects[0].at("shares")[0].get<double>(), 1.0);
  EXPECT_TRUE(objects[0].at("error").is_null());
}

TEST_F(ExtractTest, FormatCsvOverridesJsonlExtension) {
  const std::string a = solid_png("a.png", kRed);
  const std::string out = dir_.file("out.jsonl");
  const auto r = extract({a, "-o", out, "--format", "csv"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto bytes = read_bytes(out);
  const auto rows = parse_rows(std::string(bytes.begin(), bytes.end()), 5);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].colors, (std::vector<std::string>{hex(kRed)}));
}

// ---------------------------------------------------------------------------------------------
// Inputs: files, directories, @lists, stdin; order and multiplicity.

TEST_F(ExtractTest, RowsFollowCommandLineOrder) {
  const std::string c = solid_png("c.png", kBlue);
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kGreen);
  const auto r = extract({c, a, b});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  EXPECT_EQ(files_of(rows), (std::vector<std::string>{c, a, b}));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].colors[0], hex(kBlue));
  EXPECT_EQ(rows[1].colors[0], hex(kRed));
  EXPECT_EQ(rows[2].colors[0], hex(kGreen));
}

TEST_F(ExtractTest, SamePathTwiceGivesTwoRows) {
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kBlue);
  const auto r = extract({a, b, a});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  EXPECT_EQ(files_of(rows), (std::vector<std::string>{a, b, a}));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].cells, (std::vector<std::string>(rows[2].cells)));
}

TEST_F(ExtractTest, ManyImagesWithManyThreadsKeepInputOrderAndContent) {
  // Each image is one solid colour derived from its position, so a row can be matched to the
  // image it came from; names are given in an order unrelated to their sorting.
  std::vector<std::string> paths;
  std::vector<std::string> expected_colors;
  for (int i = 0; i < 40; ++i) {
    const int n = (i * 17) % 40;
    const auto color = static_cast<std::uint32_t>(0x010203 * (n + 1) + 0x400000);
    // Sizes vary so workers finish out of order.
    const int side = 4 + (n % 7) * 40;
    paths.push_back(solid_png("img" + std::to_string(n) + ".png", color, side, side));
    expected_colors.push_back(hex(color));
  }
  std::vector<std::string> args = paths;
  for (const std::string a : {"--threads", "4", "--batch", "3"}) args.push_back(a);
  const auto r = extract(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  EXPECT_EQ(files_of(rows), paths);
  ASSERT_EQ(rows.size(), paths.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].colors, (std::vector<std::string>{expected_colors[i]})) << rows[i].file;
  }
}

TEST_F(ExtractTest, DirectoryIsRecursiveSortedByFullPathAndFiltered) {
  const std::string root = make_dir("root");
  make_dir("root/a");
  make_dir("root/a/deeper");
  make_dir("root/.git");
  make_dir("root/z-empty");
  std::vector<std::string> images;
  for (const std::string name : {"root/b.png", "root/a.png", "root/a/c.png", "root/a/deeper/x.png",
                                 "root/a0.png", "root/D.PNG", "root/a-b.png", "root/Zed.png"}) {
    images.push_back(solid_png(name, kRed));
  }
  // Not images by name, or hidden: skipped.
  write_text(dir_.file("root/notes.txt"), "hello");
  write_text(dir_.file("root/png"), "no extension");
  write_text(dir_.file("root/image.png.bak"), "backup");
  solid_png("root/.hidden.png", kBlue);
  solid_png("root/.git/inside.png", kBlue);

  const auto r = extract({root});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::sort(images.begin(), images.end());
  const auto rows = parse_rows(r.out, 5);
  EXPECT_EQ(files_of(rows), images);
  for (const auto& row : rows) EXPECT_EQ(row.colors, (std::vector<std::string>{hex(kRed)}));
}

TEST_F(ExtractTest, DirectoryPathWithTrailingSlashGivesTheSameFiles) {
  const std::string root = make_dir("root");
  const std::string a = solid_png("root/a.png", kRed);
  const auto r = extract({root + "/"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(fs::path(rows[0].file).lexically_normal(), fs::path(a).lexically_normal());
}

TEST_F(ExtractTest, DirectoryExtensionsAreCaseInsensitive) {
  const std::string root = make_dir("exts");
  std::vector<std::string> images;
  // Written as PNG whatever the name says: palette recognises images by their bytes.
  for (const std::string name :
       {"a.jpg", "b.JPG", "c.jpeg", "d.JpEg", "e.png", "f.PNG", "g.webp", "h.WEBP", "i.bmp",
        "j.Bmp", "k.tif", "l.TIF", "m.tiff", "n.TIFF"}) {
    const std::string p = dir_.file("exts/" + name);
    write_bytes(p, read_bytes(solid_png("src.png", kGreen)));
    images.push_back(p);
  }
  for (const std::string name : {"x.gif", "y.txt", "z.jpg2", "w.pngx"}) {
    write_bytes(dir_.file("exts/" + name), read_bytes(solid_png("src.png", kGreen)));
  }
  const auto r = extract({root});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  std::sort(images.begin(), images.end());
  EXPECT_EQ(files_of(rows), images);
}

TEST_F(ExtractTest, HiddenIncludesDotNamesInDirectories) {
  const std::string root = make_dir("root");
  make_dir("root/.cache");
  std::vector<std::string> images = {solid_png("root/.dot.png", kRed),
                                     solid_png("root/.cache/in.png", kGreen),
                                     solid_png("root/visible.png", kBlue)};
  const auto without = extract({root});
  EXPECT_EQ(without.exit_code, 0) << without.err;
  EXPECT_EQ(files_of(parse_rows(without.out, 5)),
            (std::vector<std::string>{dir_.file("root/visible.png")}));

  const auto with = extract({root, "--hidden"});
  EXPECT_EQ(with.exit_code, 0) << with.err;
  std::sort(images.begin(), images.end());
  EXPECT_EQ(files_of(parse_rows(with.out, 5)), images);
}

TEST_F(ExtractTest, HiddenFileNamedExplicitlyIsProcessed) {
  const std::string dot = solid_png(".dot.png", kRed);
  const auto r = extract({dot});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(parse_rows(r.out, 5)), (std::vector<std::string>{dot}));
}

TEST_F(ExtractTest, ListFileWithCrlfAndEmptyLines) {
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kGreen);
  const std::string c = solid_png("c.png", kBlue);
  const std::string list = dir_.file("list.txt");
  write_text(list, "\n" + c + "\r\n\r\n" + a + "\n\n" + b + "\r\n" + c);  // no final newline
  const auto r = extract({"@" + list});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  EXPECT_EQ(files_of(rows), (std::vector<std::string>{c, a, b, c}));
  for (const auto& row : rows) EXPECT_EQ(row.error, "") << row.file;
}

TEST_F(ExtractTest, ListFileThatDoesNotExistIsAnErrorRow) {
  const std::string a = solid_png("a.png", kRed);
  const auto r = extract({a, "@" + dir_.file("missing-list.txt")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const auto rows = parse_rows(r.out, 5);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].file, a);
  EXPECT_EQ(rows[1].file, "@" + dir_.file("missing-list.txt"));
  EXPECT_NE(rows[1].error.find("cannot read list"), std::string::npos) << rows[1].error;
}

TEST_F(ExtractTest, PathsFromStdin) {
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kGreen);
  const auto r = extract({"-"}, b + "\r\n\n" + a + "\n" + b + "\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  EXPECT_EQ(files_of(rows), (std::vector<std::string>{b, a, b}));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].colors, (std::vector<std::string>{hex(kGreen)}));
  EXPECT_EQ(rows[1].colors, (std::vector<std::string>{hex(kRed)}));
}

TEST_F(ExtractTest, MixedInputKindsKeepArgumentOrder) {
  const std::string first = solid_png("first.png", kRed);
  const std::string root = make_dir("dir");
  const std::string d1 = solid_png("dir/2.png", kGreen);
  const std::string d0 = solid_png("dir/1.png", kGreen);
  const std::string listed = solid_png("listed.png", kBlue);
  const std::string piped = solid_png("piped.png", kYellow);
  const std::string list = dir_.file("list.txt");
  write_text(list, listed + "\n" + first + "\n");
  const auto r = extract({first, root, "@" + list, "-", first}, piped + "\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(parse_rows(r.out, 5)),
            (std::vector<std::string>{first, d0, d1, listed, first, piped, first}));
}

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
    const auto r = extract(args);
    last_ = r;
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const auto rows = parse_rows(r.out, 5);
    EXPECT_EQ(files_of(rows), (std::vector<std::string>{good1, bad, good2}));
    if (rows.size() != 3) return "";
    EXPECT_EQ(rows[0].error, "");
    EXPECT_EQ(std::set<std::string>(rows[0].colors.begin(), rows[0].colors.end()),
              (std::set<std::string>{hex(kRed), hex(kBlue)}));
    EXPECT_EQ(rows[2].error, "");
    EXPECT_EQ(rows[2].colors, (std::vector<std::string>{hex(kGreen)}));
    const auto& failed = rows[1];
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
  const auto r = extract({ok});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  ASSERT_EQ(rows.size(), 1u);
  expect_well_formed(rows[0], 5);
  EXPECT_EQ(rows[0].colors.size(), 5u);
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
  const auto r = extract({first, bad, last});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  EXPECT_EQ(files_of(rows), (std::vector<std::string>{first, bad, last}));
  for (const auto& row : rows) EXPECT_EQ(row.error, "") << row.file;
}

TEST_F(ErrorRowTest, FifoNamedLikeAnImageIsAnErrorRowNotAHang) {
  const std::string fifo = dir_.file("pipe.jpg");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(expect_error_row(fifo), "not a regular file (FIFO)");
}

TEST_F(ErrorRowTest, DevZeroIsAnErrorRowNotAnEndlessRead) {
  EXPECT_EQ(expect_error_row("/dev/zero"), "not a regular file (character device)");
}

TEST_F(ExtractTest, LargestSeedIsAccepted) {
  const auto r = extract({solid_png("a.png", kRed), "--seed", "18446744073709551615"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
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
  const auto r = extract({good, dir_.file("folder.png")});
  const auto rows = parse_rows(r.out, 5);
  ASSERT_GE(rows.size(), 1u);
  EXPECT_EQ(rows[0].file, good);
  for (std::size_t i = 1; i < rows.size(); ++i) EXPECT_NE(rows[i].error, "");
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
    const auto r = extract(args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const auto rows = parse_rows(r.out, 5);
    EXPECT_EQ(files_of(rows), inputs);
    ASSERT_EQ(rows.size(), inputs.size());
    const std::vector<bool> ok = {false, true, false, false, true, false};
    for (std::size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(rows[i].error.empty(), ok[i]) << rows[i].file << ": " << rows[i].error;
      expect_well_formed(rows[i], 5);
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
  const auto r = extract({img, "-k", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 3);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].colors, (std::vector<std::string>{hex(kRed)}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"1.0000"}));
}

TEST_F(ExtractTest, AlphaThresholdZeroCountsTransparentPixels) {
  const std::string img = dir_.file("half.png");
  write_image(img, red_and_green(0));
  const auto r = extract({img, "-k", "3", "--alpha-threshold", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 3);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(std::set<std::string>(rows[0].colors.begin(), rows[0].colors.end()),
            (std::set<std::string>{hex(kRed), hex(kGreen)}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.5000", "0.5000"}));
}

TEST_F(ExtractTest, AlphaThresholdCountsAlphaAtOrAboveIt) {
  const std::string img = dir_.file("half.png");
  write_image(img, red_and_green(100));
  {
    // Default threshold 128: alpha 100 is below it.
    const auto r = extract({img, "-k", "3"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto rows = parse_rows(r.out, 3);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].colors, (std::vector<std::string>{hex(kRed)}));
  }
  for (const std::string threshold : {"100", "1"}) {
    SCOPED_TRACE("threshold " + threshold);
    const auto r = extract({img, "-k", "3", "--alpha-threshold", threshold});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto rows = parse_rows(r.out, 3);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(std::set<std::string>(rows[0].colors.begin(), rows[0].colors.end()),
              (std::set<std::string>{hex(kRed), hex(kGreen)}));
    EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.5000", "0.5000"}));
  }
  {
    const auto r = extract({img, "-k", "3", "--alpha-threshold", "101"});
    const auto rows = parse_rows(r.out, 3);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].colors, (std::vector<std::string>{hex(kRed)}));
  }
}

TEST_F(ExtractTest, OpaqueRgbaPngIsTheSameAsRgb) {
  const cv::Mat rgb = stripes({0x884422, 0x2288aa}, {12, 4}, 4);
  cv::Mat rgba;
  cv::cvtColor(rgb, rgba, cv::COLOR_RGB2RGBA);
  const std::string a = dir_.file("rgb.png"), b = dir_.file("rgba.png");
  write_image(a, rgb);
  write_image(b, rgba);
  const auto ra = extract({a, "-k", "2"});
  const auto rb = extract({b, "-k", "2"});
  EXPECT_EQ(ra.exit_code, 0);
  EXPECT_EQ(rb.exit_code, 0);
  const auto rows_a = parse_rows(ra.out, 2), rows_b = parse_rows(rb.out, 2);
  ASSERT_EQ(rows_a.size(), 1u);
  ASSERT_EQ(rows_b.size(), 1u);
  EXPECT_EQ(rows_a[0].colors, (std::vector<std::string>{"#884422", "#2288aa"}));
  EXPECT_EQ(rows_b[0].colors, rows_a[0].colors);
  EXPECT_EQ(rows_b[0].shares, rows_a[0].shares);
}

TEST_F(ExtractTest, ShrinkingRgbaDoesNotBleedTransparentColour) {
  // 200x40, shrunk by 4 to --size 50: left half opaque blue, right half transparent black.
  cv::Mat rgba(40, 200, CV_8UC4, cv::Scalar(0, 0, 255, 255));
  rgba(cv::Rect(100, 0, 100, 40)).setTo(cv::Scalar(0, 0, 0, 0));
  const std::string img = dir_.file("blue.png");
  write_image(img, rgba);
  const auto r = extract({img, "-k", "3", "--size", "50"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 3);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].colors, (std::vector<std::string>{hex(kBlue)}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"1.0000"}));
}

// ---------------------------------------------------------------------------------------------
// Pixel formats.

TEST_F(ExtractTest, GrayscalePngGivesGreyHex) {
  cv::Mat grey(10, 20, CV_8UC1, cv::Scalar(0x40));
  grey(cv::Rect(10, 0, 10, 10)).setTo(cv::Scalar(0xc0));
  const std::string img = dir_.file("grey.png");
  write_image(img, grey);
  const auto r = extract({img, "-k", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 3);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(std::set<std::string>(rows[0].colors.begin(), rows[0].colors.end()),
            (std::set<std::string>{"#404040", "#c0c0c0"}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.5000", "0.5000"}));
}

TEST_F(ExtractTest, GreyPixelsWithAlphaKeepOnlyOpaqueGrey) {
  // Left half grey 0x30 opaque, right half grey 0xa0 fully transparent.
  cv::Mat rgba(6, 12, CV_8UC4, cv::Scalar(0x30, 0x30, 0x30, 255));
  rgba(cv::Rect(6, 0, 6, 6)).setTo(cv::Scalar(0xa0, 0xa0, 0xa0, 0));
  const std::string img = dir_.file("grey-alpha.png");
  write_image(img, rgba);
  const auto r = extract({img, "-k", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 2);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].colors, (std::vector<std::string>{"#303030"}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"1.0000"}));
}

TEST_F(ExtractTest, SixteenBitPngMatchesEightBit) {
  const std::vector<std::uint32_t> colors = {0x19a2f0, 0xe05010, 0x6b6b20};
  const cv::Mat eight = stripes(colors, {10, 6, 4}, 5);
  cv::Mat sixteen;
  eight.convertTo(sixteen, CV_16UC3, 257.0);
  const std::string p8 = dir_.file("eight.png"), p16 = dir_.file("sixteen.png");
  write_image(p8, eight);
  write_image(p16, sixteen);
  const auto r = extract({p8, p16, "-k", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 4);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].colors,
            (std::vector<std::string>{hex(0x19a2f0), hex(0xe05010), hex(0x6b6b20)}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.5000", "0.3000", "0.2000"}));
  EXPECT_EQ(rows[1].colors, rows[0].colors);
  EXPECT_EQ(rows[1].shares, rows[0].shares);
  EXPECT_EQ(rows[1].error, "");
}

TEST_F(ExtractTest, SixteenBitGrayscalePngMatchesEightBit) {
  cv::Mat eight(4, 8, CV_8UC1, cv::Scalar(0x22));
  eight(cv::Rect(0, 0, 2, 4)).setTo(cv::Scalar(0xee));
  cv::Mat sixteen;
  eight.convertTo(sixteen, CV_16UC1, 257.0);
  const std::string p8 = dir_.file("g8.png"), p16 = dir_.file("g16.png");
  write_image(p8, eight);
  write_image(p16, sixteen);
  const auto r = extract({p8, p16, "-k", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 2);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].colors, (std::vector<std::string>{"#222222", "#eeeeee"}));
  EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.7500", "0.2500"}));
  EXPECT_EQ(rows[1].cells[1], rows[0].cells[1]);
  EXPECT_EQ(rows[1].colors, rows[0].colors);
  EXPECT_EQ(rows[1].shares, rows[0].shares);
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
  const auto r = extract({img, "-k", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 2);
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_EQ(rows[0].error, "");
  ASSERT_EQ(rows[0].colors.size(), 2u);
  if (GetParam().lossless) {
    EXPECT_EQ(rows[0].colors, (std::vector<std::string>{"#e02020", "#2040d0"}));
    EXPECT_EQ(rows[0].shares, (std::vector<std::string>{"0.7500", "0.2500"}));
  } else {
    const std::uint32_t want[2] = {0xe02020, 0x2040d0};
    for (int i = 0; i < 2; ++i) {
      const std::uint32_t got = parse_hex(rows[0].colors[i]);
      for (int shift : {16, 8, 0}) {
        const int g = static_cast<int>((got >> shift) & 0xFF);
        const int w = static_cast<int>((want[i] >> shift) & 0xFF);
        EXPECT_NEAR(g, w, 24) << rows[0].colors[i] << " vs " << hex(want[i]);
      }
    }
    EXPECT_NEAR(share_e4(rows[0].shares[0]), 7500, 300);
  }
  expect_well_formed(rows[0], 2);
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
  const auto r = extract({renamed, "-k", "2"});
  const auto rows = parse_rows(r.out, 2);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::set<std::string>(rows[0].colors.begin(), rows[0].colors.end()),
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

  RunResult extract_all(const std::vector<std::string>& options) {
    std::vector<std::string> args = paths_;
    args.insert(args.end(), options.begin(), options.end());
    return extract(args);
  }

  std::vector<std::string> paths_;
};

TEST_F(DeterminismTest, VariedImagesGiveWellFormedRows) {
  ASSERT_GE(paths_.size(), 20u);
  const auto r = extract_all({});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_rows(r.out, 5);
  EXPECT_EQ(files_of(rows), paths_);
  for (const auto& row : rows) {
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
    for (const auto& row : parse_rows(a.out, 5)) expect_well_formed(row, 5);
  }
}

// ---------------------------------------------------------------------------------------------
// Interruption: rows written before Ctrl-C stay.

// What an interrupted `palette extract -` left behind.
struct Interrupted {
  std::string before;  // stdout before the signal
  std::string text;    // all of stdout
  bool ended = false;  // whether palette ended (stdout closed) in time
  int status = 0;      // waitpid status
};

// Runs `palette extract - --threads 2`, sends `paths` on stdin (kept open), waits for the header
// and one row per path, sends SIGINT, optionally closes stdin, and waits up to `wait` for the end
// of stdout (killing palette after that).
Interrupted interrupt_run(const std::vector<std::string>& paths, bool close_stdin_after_signal,
                          std::chrono::seconds wait) {
  Interrupted result;
  int in[2], out[2];
  if (::pipe(in) != 0 || ::pipe(out) != 0) throw std::runtime_error("pipe failed");
  const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, devnull, 2);
  for (int fd : {in[0], in[1], out[0], out[1]}) posix_spawn_file_actions_addclose(&fa, fd);
  std::vector<std::string> argv = {PALETTE_BINARY, "extract", "-", "--threads", "2"};
  std::vector<char*> args;
  for (auto& s : argv) args.push_back(s.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  ::close(devnull);
  if (spawned != 0) throw std::runtime_error("cannot run palette");

  std::string lines;
  for (const auto& p : paths) lines += p + "\n";
  if (::write(in[1], lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) {
    ADD_FAILURE() << "cannot write paths to palette's stdin";
  }
  // Reads stdout until it holds `want` lines (0: until EOF) or the time is up; false on EOF.
  auto read_until = [&](std::size_t want, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (want == 0 || count_lines(result.text) < want) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return true;
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) return false;
      result.text.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  };
  read_until(paths.size() + 1, std::chrono::seconds(10));
  result.before = result.text;
  ::kill(pid, SIGINT);
  if (close_stdin_after_signal) ::close(in[1]);
  result.ended = !read_until(0, wait);
  if (!result.ended) ::kill(pid, SIGKILL);
  ::waitpid(pid, &result.status, 0);
  if (!close_stdin_after_signal) ::close(in[1]);
  ::close(out[0]);
  return result;
}

TEST_F(ExtractTest, InterruptKeepsRowsAlreadyWritten) {
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kBlue);
  const auto r = interrupt_run({a, b}, /*close_stdin_after_signal=*/true, std::chrono::seconds(10));
  EXPECT_EQ(count_lines(r.before), 3u)
      << "rows were not written before the interrupt: " << r.before;
  ASSERT_TRUE(r.ended) << "palette did not end within 10 s of SIGINT and end of stdin";
  EXPECT_EQ(r.text.substr(0, r.before.size()), r.before);
  const auto rows = parse_rows(r.text, 5);
  EXPECT_EQ(files_of(rows), (std::vector<std::string>{a, b}));
  for (const auto& row : rows) EXPECT_EQ(row.error, "") << row.file;
  EXPECT_TRUE(WIFEXITED(r.status)) << "killed by a signal instead of exiting cleanly";
}

TEST_F(ExtractTest, InterruptEndsRunWaitingForMorePathsOnStdin) {
  // The producer of the paths is still there (stdin stays open): one SIGINT must still end the
  // run, keeping the rows written so far.
  const std::string a = solid_png("a.png", kRed);
  const auto r = interrupt_run({a}, /*close_stdin_after_signal=*/false, std::chrono::seconds(5));
  EXPECT_EQ(count_lines(r.before), 2u) << "row was not written before the interrupt: " << r.before;
  EXPECT_TRUE(r.ended) << "palette did not end within 5 s of SIGINT";
  EXPECT_EQ(files_of(parse_rows(r.text, 5)), (std::vector<std::string>{a}));
  if (r.ended) {
    EXPECT_TRUE(WIFEXITED(r.status)) << "killed by a signal instead of exiting cleanly";
    if (WIFEXITED(r.status)) {
      EXPECT_NE(WEXITSTATUS(r.status), 0);
    }
  }
}

}  // namespace
}  // namespace palette::test
