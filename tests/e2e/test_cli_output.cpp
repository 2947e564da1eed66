// End-to-end tests of `palette extract`: the CSV layout and its values, output destinations and
// formats (CSV, JSON Lines). Helpers in cli_helpers.hpp.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli_helpers.hpp"

namespace palette::test {
namespace {

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
  const auto r = extract_rows({img, "-k", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].file, img);
  EXPECT_EQ(r.rows[0].colors,
            (std::vector<std::string>{hex(0xd02030), hex(0x30c040), hex(0x2040e0)}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.5000", "0.3000", "0.2000"}));
  EXPECT_EQ(r.rows[0].error, "");
}

TEST_F(ExtractTest, ColoursAreSortedByShareWhateverTheirPosition) {
  // The smallest block comes first in the image, the largest last.
  const std::string img = png("stripes.png", {kYellow, kBlack, kBlue, kWhite}, {5, 15, 30, 50});
  const auto r = extract_rows({img, "-k", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].colors,
            (std::vector<std::string>{hex(kWhite), hex(kBlue), hex(kBlack), hex(kYellow)}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.5000", "0.3000", "0.1500", "0.0500"}));
}

TEST_F(ExtractTest, HexIsLowercase) {
  const std::string img = png("stripes.png", {0xabcdef, 0x0a0b0c}, {10, 10});
  const auto r = extract_rows({img, "-k", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(std::set<std::string>(r.rows[0].colors.begin(), r.rows[0].colors.end()),
            (std::set<std::string>{"#abcdef", "#0a0b0c"}));
  EXPECT_EQ(r.out.find_first_of("ABCDEF", r.out.find('\n')), std::string::npos);
}

TEST_F(ExtractTest, ThirdsRoundByLargestRemainderToExactlyOne) {
  // Three equal blocks: 1/3 each; plain rounding would give 0.9999.
  const std::string img = png("thirds.png", {kRed, kGreen, kBlue}, {10, 10, 10});
  const auto r = extract_rows({img, "-k", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.3334", "0.3333", "0.3333"}));
  EXPECT_EQ(std::set<std::string>(r.rows[0].colors.begin(), r.rows[0].colors.end()),
            (std::set<std::string>{hex(kRed), hex(kGreen), hex(kBlue)}));
}

TEST_F(ExtractTest, SeventhsRoundByLargestRemainderToExactlyOne) {
  // 1/7 = 0.142857...: four shares round up to 0.1429 and three down to 0.1428.
  const std::vector<std::uint32_t> colors = {kRed,   kGreen,   kBlue,   kYellow,
                                             kBlack, 0x00ffff, 0xff00ff};
  const std::string img = png("sevenths.png", colors, {3, 3, 3, 3, 3, 3, 3}, 4);
  const auto r = extract_rows({img, "-k", "7"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.1429", "0.1429", "0.1429", "0.1429",
                                                        "0.1428", "0.1428", "0.1428"}));
  expect_well_formed(r.rows[0], 7);
}

TEST_F(ExtractTest, FewerDistinctColoursThanKLeavesExtraCellsEmpty) {
  const std::string img = png("two.png", {kRed, kBlue}, {15, 5});
  const auto r = extract_rows({img});  // k = 5
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  const auto& c = r.rows[0].cells;
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
  const auto r = extract_rows({img, "-k", "12"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].colors.size(), 3u);
  EXPECT_EQ(std::set<std::string>(r.rows[0].colors.begin(), r.rows[0].colors.end()),
            (std::set<std::string>{hex(kRed), hex(kGreen), hex(kBlue)}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.4000", "0.4000", "0.2000"}));
  expect_well_formed(r.rows[0], 12);
}

TEST_F(ExtractTest, OneByOneImageGivesOneColourWithFullShare) {
  const std::string img = solid_png("one.png", 0x123456, 1, 1);
  const auto r = extract_rows({img, "-k", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].cells,
            (std::vector<std::string>{img, "#123456", "", "", "", "1.0000", "", "", "", ""}));
}

TEST_F(ExtractTest, SingleColourKOneGivesFullShare) {
  const std::string img = png("two.png", {kRed, kBlue}, {10, 10});
  const auto r = extract_rows({img, "-k", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  ASSERT_EQ(r.rows[0].colors.size(), 1u);
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"1.0000"}));
  expect_well_formed(r.rows[0], 1);
}

class SpaceTest : public ExtractTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(SpaceTest, SolidBlocksGiveExactColoursAndShares) {
  const std::string img =
      png("blocks.png", {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728}, {40, 30, 20, 10}, 10);
  const auto r = extract_rows({img, "-k", "4", "--space", GetParam()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].colors,
            (std::vector<std::string>{hex(0x1f77b4), hex(0xff7f0e), hex(0x2ca02c), hex(0xd62728)}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.4000", "0.3000", "0.2000", "0.1000"}));
}

INSTANTIATE_TEST_SUITE_P(Cli, SpaceTest, ::testing::Values("lab", "oklab", "rgb"));

TEST_F(ExtractTest, ShrunkImageKeepsBlockColoursAndShares) {
  // 400 columns shrunk to --size 100: a factor of 4, and every stripe width is a multiple of it,
  // so INTER_AREA never blends two stripes.
  const std::string img = png("wide.png", {0xc03030, 0x30a0c0, 0xe0e040}, {200, 120, 80}, 40);
  const auto r = extract_rows({img, "-k", "3", "--size", "100"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].colors,
            (std::vector<std::string>{hex(0xc03030), hex(0x30a0c0), hex(0xe0e040)}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.5000", "0.3000", "0.2000"}));
}

TEST_F(ExtractTest, DefaultSizeShrinksLargeImageWithoutChangingBlocks) {
  // 512 columns > 256 (the default --size): shrunk by 2; widths are even.
  const std::string img = png("large.png", {0x804020, 0x2080f0}, {384, 128}, 16);
  const auto r = extract_rows({img, "-k", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{hex(0x804020), hex(0x2080f0)}));
  EXPECT_EQ(r.rows[0].shares, (std::vector<std::string>{"0.7500", "0.2500"}));
}

TEST_F(ExtractTest, FileNamesWithCommasQuotesAndNewlinesRoundTrip) {
  const std::vector<std::string> names = {"comma,name.png", "quote\"name.png", "new\nline.png",
                                          "both,\"and\r\n.png", "plain name.png"};
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < names.size(); ++i) {
    paths.push_back(solid_png(names[i], 0x102030 * static_cast<std::uint32_t>(i + 1)));
  }
  const auto r = extract_rows(paths);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(r.rows), paths);
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    EXPECT_EQ(r.rows[i].colors,
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

// A --combined-output whose directory is not there is refused before the run (not after it,
// with every row computed), and nothing is written; so is an -o under a file.
TEST_F(ExtractTest, OutputDirectoriesAreCheckedBeforeTheRun) {
  const std::string a = solid_png("a.png", kRed);
  const std::string out = dir_.file("out.csv");
  auto r = extract({a, "-o", out, "--combined-output", dir_.file("no-such-dir/combined.csv")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("cannot write " + dir_.file("no-such-dir/combined.csv") + ": " +
                       dir_.file("no-such-dir") + " does not exist"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  write_text(dir_.file("a-file"), "x");
  r = extract({a, "-o", dir_.file("a-file/out.csv")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(dir_.file("a-file") + " is not a directory"), std::string::npos) << r.err;
}

TEST_F(ExtractTest, LongOutputOptionAndDashMeanTheSame) {
  const std::string a = solid_png("a.png", kRed);
  const std::string out = dir_.file("long.csv");
  const auto to_file = extract({a, "--output", out});
  EXPECT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_EQ(to_file.out, "");
  const auto dash = extract_rows({a, "-o", "-"});
  EXPECT_EQ(dash.exit_code, 0) << dash.err;
  const auto bytes = read_bytes(out);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), dash.out);
  EXPECT_EQ(dash.rows.size(), 1u);
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

// --names: each colour's nearest CSS named colour, after the error column (the contract
// otherwise unchanged), a JSON "names" array; error rows name nothing.
TEST_F(ExtractTest, NamesFollowTheErrorColumn) {
  const std::string a = png("two.png", {0x000080, 0xff6347}, {3, 1});  // navy, tomato
  const std::string b = solid_png("near-white.png", 0xfefefe);
  const std::string bad = dir_.file("bad.png");
  write_text(bad, "not a png");
  auto r = extract({a, b, bad, "-k", "2", "--names"});
  ASSERT_EQ(r.exit_code, 1) << r.err;
  const auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 4u) << r.out;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"file", "color_1", "color_2", "share_1", "share_2",
                                               "error", "name_1", "name_2"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{a, "#000080", "#ff6347", "0.7500", "0.2500", "",
                                               "navy", "tomato"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{b, "#fefefe", "", "1.0000", "", "", "white", ""}));
  EXPECT_EQ(rows[3].at(0), bad);
  EXPECT_FALSE(rows[3].at(5).empty());
  EXPECT_EQ(rows[3].at(6), "");
  EXPECT_EQ(rows[3].at(7), "");
  // Without --names, not a column more.
  EXPECT_EQ(parse_csv(extract({a, "-k", "2"}).out)[0].size(), 6u);

  r = extract({a, bad, "-k", "2", "--names", "--format", "jsonl"});
  const auto objects = parse_jsonl(r.out);
  ASSERT_EQ(objects.size(), 2u) << r.out;
  EXPECT_EQ(objects[0].at("names"), (nlohmann::json{"navy", "tomato"}));
  EXPECT_EQ(objects[1].at("names"), nlohmann::json::array());
  EXPECT_FALSE(objects[1].at("error").is_null());
}

// Palette shaping: look-alikes merged, small colours dropped and the rest renormalised,
// palettes reordered; fewer colours than k leave the contract's empty cells.
TEST_F(ExtractTest, ShapingMergesDropsAndSorts) {
  // Stripes: red 5, a red 2 ΔE away 3, white 1, black 1 (of 10 columns).
  const std::string img =
      png("stripes.png", {0xff0000, 0xfa0505, 0xffffff, 0x000000}, {5, 3, 1, 1});
  auto rows = parse_csv(extract({img, "-k", "4"}).out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][1], "#ff0000");
  EXPECT_EQ(rows[1][4], "#ffffff");  // all four colours (black before white on equal shares)
  rows = parse_csv(extract({img, "-k", "4", "--merge-delta-e", "5"}).out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][5], "0.8000") << rows[1][1];  // the reds, together
  EXPECT_EQ(rows[1][4], "");                      // three colours left
  EXPECT_EQ(rows[1][8], "");
  rows = parse_csv(extract({img, "-k", "4", "--min-share", "0.15"}).out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][1], "#ff0000");
  EXPECT_EQ(rows[1][2], "#fa0505");
  EXPECT_EQ(rows[1][3], "");
  EXPECT_EQ(rows[1][5], "0.6250");  // 5 of the 8 columns kept
  EXPECT_EQ(rows[1][6], "0.3750");
  rows = parse_csv(extract({img, "-k", "4", "--sort", "lightness"}).out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][1], "#000000");
  EXPECT_EQ(rows[1][4], "#ffffff");
  EXPECT_EQ(rows[1][5], "0.1000");
  // The same rows whatever the threads and batch size.
  const std::string a = extract({img, img, "-k", "4", "--merge-delta-e", "5", "--sort", "hue"}).out;
  EXPECT_EQ(extract({img, img, "-k", "4", "--merge-delta-e", "5", "--sort", "hue", "--threads", "1",
                     "--batch", "1"})
                .out,
            a);
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"--sort", "rainbow"}, {"--min-share", "1.5"}, {"--merge-delta-e", "-1"}}) {
    std::vector<std::string> args = {img};
    args.insert(args.end(), bad.begin(), bad.end());
    const auto r = extract(args);
    EXPECT_EQ(r.exit_code, 2) << bad[0];
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  }
}

// --combined: one palette of every counted pixel of the run, as a last row (or its own file);
// the same rows whatever the threads and batch size.
TEST_F(ExtractTest, CombinedPaletteOfTheWholeRun) {
  const std::string a = png("a.png", {kRed, kBlue}, {5, 5});
  const std::string b = png("b.png", {kRed, kWhite}, {5, 5});
  const auto r = extract({a, b, "-k", "3", "--combined"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 4u) << r.out;
  EXPECT_EQ(rows[3], (std::vector<std::string>{"*combined*", "#ff0000", "#0000ff", "#ffffff",
                                               "0.5000", "0.2500", "0.2500", ""}));
  EXPECT_EQ(extract({a, b, "-k", "3", "--combined", "--threads", "1", "--batch", "1"}).out, r.out);
  // Its own file: the run's rows stay one per input.
  const std::string own = dir_.file("combined.csv");
  const auto r2 = extract({a, b, "-k", "3", "--combined-output", own});
  EXPECT_EQ(count_lines(r2.out), 3u);
  const auto bytes = read_bytes(own);
  std::vector<std::string> lines;
  std::istringstream all(r.out);
  for (std::string line; std::getline(all, line);) lines.push_back(line + "\n");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), lines[0] + lines[3]);
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"--combined-output", dir_.file("c.csv"), "--shard", "0/2", "-o", dir_.file("y.csv")}}) {
    std::vector<std::string> args = {a, b};
    args.insert(args.end(), bad.begin(), bad.end());
    const auto u = extract(args);
    EXPECT_EQ(u.exit_code, 2) << bad[1];
    EXPECT_EQ(count_lines(u.err), 1u) << u.err;
  }
}

// On a machine with a GPU: the combined row (one big batch) is the CPU's.
TEST_F(ExtractTest, CombinedIsTheSameOnEveryBackend) {
  if (run({PALETTE_BINARY, "info"}).out.find("CUDA device 0") == std::string::npos) {
    GTEST_SKIP() << "no CUDA device";
  }
  std::vector<std::string> inputs;
  for (int i = 0; i < 20; ++i) {
    const auto c = static_cast<std::uint32_t>(i * 2654435761u) & 0xFFFFFF;
    inputs.push_back(png("img" + std::to_string(i) + ".png", {c, c ^ 0x804020, kWhite}, {4, 3, 3}));
  }
  auto cpu = inputs, gpu = inputs;
  cpu.insert(cpu.end(), {"--combined", "--backend", "cpu"});
  gpu.insert(gpu.end(), {"--combined", "--backend", "cuda"});
  EXPECT_EQ(extract(gpu).out, extract(cpu).out);
}

// --format csv-long: a row per colour (rank, hex, r, g, b, share), an error row alone; names
// and quality figures when asked.
TEST_F(ExtractTest, LongCsvHasARowPerColour) {
  const std::string img = png("two.png", {0x000080, 0xff6347}, {3, 1});
  const std::string bad = dir_.file("bad.png");
  write_text(bad, "not a png");
  auto r = extract({img, bad, "-k", "3", "--format", "csv-long"});
  EXPECT_EQ(r.exit_code, 1);
  auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 4u) << r.out;
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"file", "rank", "hex", "r", "g", "b", "share", "error"}));
  EXPECT_EQ(rows[1],
            (std::vector<std::string>{img, "1", "#000080", "0", "0", "128", "0.7500", ""}));
  EXPECT_EQ(rows[2],
            (std::vector<std::string>{img, "2", "#ff6347", "255", "99", "71", "0.2500", ""}));
  EXPECT_EQ(rows[3][0], bad);
  EXPECT_EQ(rows[3][1], "");
  EXPECT_FALSE(rows[3][7].empty());
  r = extract({img, "-k", "3", "--format", "csv-long", "--names", "--stats"});
  rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].size(), 14u);
  EXPECT_EQ(rows[1][8], "navy");
  EXPECT_EQ(rows[2][8], "tomato");
  EXPECT_EQ(rows[1][10], "2");  // distinct colours, on every row of the image
  EXPECT_EQ(rows[2][10], "2");
}

// The long CSV as a data team reads it: pandas with its default types, a row per colour, shares
// adding up to 1 per image, r, g, b agreeing with hex, the error row's colour cells empty
// (Debian's /usr/bin/python3 with pandas; skipped where either is missing).
TEST_F(ExtractTest, LongCsvReadsBackWithPandas) {
  const std::string python = "/usr/bin/python3";
  if (::access(python.c_str(), X_OK) != 0) GTEST_SKIP() << "no " << python;
  const std::string a = png("a, \"quoted\".png", {0x000080, 0xff6347, 0x20b2aa}, {5, 3, 2});
  const std::string b = solid_png("b.png", 0x4682b4);
  const std::string bad = dir_.file("bad.png");
  write_text(bad, "not a png");
  const std::string out = dir_.file("long.csv");
  ASSERT_EQ(extract({a, bad, b, "-k", "4", "--format", "csv-long", "--names", "-o", out}).exit_code,
            1);
  const std::string script =
      "import sys\n"
      "try:\n"
      "    import pandas\n"
      "except ImportError:\n"
      "    sys.exit(3)\n"
      "df = pandas.read_csv(sys.argv[1])\n"
      "assert list(df.columns) == ['file', 'rank', 'hex', 'r', 'g', 'b', 'share', 'error',\n"
      "                            'name'], list(df.columns)\n"
      "ok = df[df['error'].isna()]\n"
      "for c in ['r', 'g', 'b', 'rank']:\n"
      "    assert (ok[c] == ok[c].round()).all(), c\n"
      "for _, row in ok.iterrows():\n"
      "    assert row['hex'] == '#%02x%02x%02x' % (int(row['r']), int(row['g']), int(row['b']))\n"
      "sums = ok.groupby('file', sort=False)['share'].sum()\n"
      "assert ((sums - 1).abs() < 1e-9).all(), sums\n"
      "failed = df[df['error'].notna()]\n"
      "assert failed['hex'].isna().all() and failed['share'].isna().all()\n"
      "for f, g in df.groupby('file', sort=False):\n"
      "    print('%s|%d|%s|%s' % (f, len(g), ','.join(g['hex'].fillna('-')),\n"
      "                          ','.join(g['name'].fillna('-'))))\n";
  const auto pd = run({python, "-c", script, out});
  if (pd.exit_code == 3) GTEST_SKIP() << "pandas is not installed";
  ASSERT_EQ(pd.exit_code, 0) << pd.err;
  EXPECT_EQ(pd.out, a + "|3|#000080,#ff6347,#20b2aa|navy,tomato,lightseagreen\n" + bad +
                        "|1|-|-\n" + b + "|1|#4682b4|steelblue\n")
      << pd.out;
}

// --format json (or an output named *.json): one document, the JSON Lines objects in an array,
// written whole; nothing else left beside it.
TEST_F(ExtractTest, JsonIsOneDocumentWrittenWhole) {
  const std::string a = solid_png("a.png", 0x336699);
  const std::string b = png("b.png", {kRed, kWhite}, {2, 2});
  const std::string lines = extract({a, b, "--format", "jsonl"}).out;
  const std::string out = dir_.file("out.json");
  ASSERT_EQ(extract({a, b, "-o", out}).exit_code, 0);
  const auto bytes = read_bytes(out);
  const auto doc = nlohmann::json::parse(std::string(bytes.begin(), bytes.end()));
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 2u);
  std::istringstream in(lines);
  std::string line;
  for (std::size_t i = 0; std::getline(in, line); ++i) {
    EXPECT_EQ(doc[i], nlohmann::json::parse(line)) << i;
  }
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_.file(""))) {
    files += e.path().string().find("out.json") != std::string::npos;
  }
  EXPECT_EQ(files, 1u);  // no temporary file, no record of it
  const auto stdout_doc = nlohmann::json::parse(extract({a, "--format", "json"}).out);
  EXPECT_EQ(stdout_doc.size(), 1u);
  // Neither resumes nor shards.
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"--format", "json", "-o", out, "--resume"},
           {"--format", "csv-long", "-o", dir_.file("l.csv"), "--resume"},
           {"--format", "csv-long", "-o", dir_.file("l.csv"), "--shard", "0/2"}}) {
    std::vector<std::string> args = {a};
    args.insert(args.end(), bad.begin(), bad.end());
    const auto u = extract(args);
    EXPECT_EQ(u.exit_code, 2) << u.err;
    EXPECT_EQ(count_lines(u.err), 1u) << u.err;
  }
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

}  // namespace
}  // namespace palette::test
