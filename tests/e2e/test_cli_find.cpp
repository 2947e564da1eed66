// palette find over results files built by hand: --color (CIEDE2000 within --max-delta-e, share
// at least --min-share; a CSS name; a colour class), --colors, --palette and --like (EMD), which
// rows match (error rows skipped), in which order, CSV and JSON Lines inputs alike, and usage
// errors.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli_helpers.hpp"
#include "palette/color.hpp"

namespace palette::test {
namespace {

// The file column of find's CSV output, header dropped.
std::vector<std::string> files_of_rows(const std::string& csv) {
  std::vector<std::string> out;
  const auto rows = parse_csv(csv);
  for (std::size_t i = 1; i < rows.size(); ++i) out.push_back(rows[i].at(0));
  return out;
}

class FindTest : public ExtractTest {
 protected:
  std::string results_csv() {
    const std::string p = dir_.file("lib.csv");
    write_text(p,
               "file,color_1,color_2,color_3,share_1,share_2,share_3,error\n"
               "a.png,#0000ff,#ffffff,,0.6000,0.4000,,\n"
               "b.png,#ff0000,#0000ff,,0.8000,0.2000,,\n"
               "broken.png,,,,,,,corrupt PNG\n"
               "c.png,#0a0aff,#000000,#ffffff,0.5000,0.3000,0.2000,\n"
               "\"far, away.png\",#00ff00,,,1.0000,,,\n"
               "d.png,#0000ff,,,1.0000,,,\n");
    return p;
  }
  std::string results_jsonl() {
    const std::string p = dir_.file("lib.jsonl");
    write_text(p,
               "{\"file\":\"e.png\",\"colors\":[\"#0000fe\"],\"shares\":[1.0000],\"error\":null}\n"
               "{\"file\":\"f.png\",\"colors\":[],\"shares\":[],\"error\":\"truncated JPEG\"}\n");
    return p;
  }
  RunResult find(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {PALETTE_BINARY, "find"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
};

TEST_F(FindTest, ColourMatchesBestFirst) {
  const auto r = find({results_csv(), "--color", "#0000ff"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // d and a hold the colour itself (the larger share first), then c's near blue, then b's.
  const auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 5u) << r.out;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"file", "score", "color", "share"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"d.png", "0.0000", "#0000ff", "1.0000"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"a.png", "0.0000", "#0000ff", "0.6000"}));
  EXPECT_EQ(rows[3], (std::vector<std::string>{"b.png", "0.0000", "#0000ff", "0.2000"}));
  EXPECT_EQ(rows[4][0], "c.png");
  EXPECT_EQ(rows[4][2], "#0a0aff");
  EXPECT_GT(std::stod(rows[4][1]), 0.0);
  EXPECT_LT(std::stod(rows[4][1]), 10.0);
}

TEST_F(FindTest, ShareLimitTopAndDifferenceLimit) {
  auto r = find({results_csv(), "--color", "0000ff", "--min-share", "0.5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of_rows(r.out), (std::vector<std::string>{"d.png", "a.png", "c.png"}));
  r = find({results_csv(), "--color", "rgb(0, 0, 255)", "--top", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of_rows(r.out), (std::vector<std::string>{"d.png", "a.png"}));
  r = find({results_csv(), "--color", "#0000ff", "--max-delta-e", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of_rows(r.out), (std::vector<std::string>{"d.png", "a.png", "b.png"}));
  r = find({results_csv(), "--color", "#00ff00"});
  EXPECT_EQ(files_of_rows(r.out), (std::vector<std::string>{"far, away.png"}));
}

TEST_F(FindTest, JsonLinesInAndOut) {
  const auto r = find(
      {results_jsonl(), results_csv(), "--color", "#0000ff", "--top", "3", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"file\":\"d.png\",\"score\":0.0,\"color\":\"#0000ff\",\"share\":1.0}\n"
            "{\"file\":\"a.png\",\"score\":0.0,\"color\":\"#0000ff\",\"share\":0.6}\n"
            "{\"file\":\"b.png\",\"score\":0.0,\"color\":\"#0000ff\",\"share\":0.2}\n");
  const auto e = find({results_jsonl(), "--color", "#0000ff"});
  EXPECT_EQ(files_of_rows(e.out), (std::vector<std::string>{"e.png"}));
}

TEST_F(FindTest, UsageErrors) {
  for (const std::string bad : {"blue-ish", "#12345", "rgb(1,2)", "rgb(1,2,300)", "#gggggg"}) {
    const auto r = find({results_csv(), "--color", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  }
  const std::string junk = dir_.file("junk.csv");
  write_text(junk, "name,value\nx,1\n");
  auto r = find({junk, "--color", "#000000"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not a palette results file"), std::string::npos) << r.err;
  r = find({dir_.file("missing.csv"), "--color", "#000000"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(FindTest, NamedColoursAndColourClasses) {
  // A CSS name is that colour: navy is #000080, within 10 of none but... the blues are far.
  auto r = find({results_csv(), "--color", "RebeccaPurple"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(files_of_rows(r.out).empty()) << r.out;
  r = find({results_csv(), "--color", "lime"});  // #00ff00
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of_rows(r.out), (std::vector<std::string>{"far, away.png"}));
  // A class word matches every colour of the class (score 0), the larger share first.
  r = find({results_csv(), "--color", "blue"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 5u) << r.out;
  EXPECT_EQ(rows[1], (std::vector<std::string>{"d.png", "0.0000", "#0000ff", "1.0000"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"a.png", "0.0000", "#0000ff", "0.6000"}));
  EXPECT_EQ(rows[3], (std::vector<std::string>{"c.png", "0.0000", "#0a0aff", "0.5000"}));
  EXPECT_EQ(rows[4], (std::vector<std::string>{"b.png", "0.0000", "#0000ff", "0.2000"}));
  r = find({results_csv(), "--color", "WHITE", "--min-share", "0.3"});
  EXPECT_EQ(files_of_rows(r.out), (std::vector<std::string>{"a.png"}));
  r = find({results_csv(), "--color", "gray"});  // the grey class: nothing grey here
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(files_of_rows(r.out).empty()) << r.out;
  r = find({results_csv(), "--color", "black"});
  EXPECT_EQ(files_of_rows(r.out), (std::vector<std::string>{"c.png"}));
}

// ΔE*ab, as the EMD's ground distance.
double de76(std::uint32_t x, std::uint32_t y) {
  const auto a = srgb_to_lab(x), b = srgb_to_lab(y);
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                   (a[2] - b[2]) * (a[2] - b[2]));
}

TEST_F(FindTest, WeightedColoursByPartialEmd) {
  // 60 % blue, the rest anything: a and d hold it (score 0, input order), c nearly, b only 20 %.
  auto r = find({results_csv(), "--colors", "#0000ff:60"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 6u) << r.out;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"file", "score", "color_1", "color_2", "color_3",
                                               "share_1", "share_2", "share_3"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"a.png", "0.0000", "#0000ff", "#ffffff", "",
                                               "0.6000", "0.4000", ""}));
  EXPECT_EQ(rows[2][0], "d.png");
  EXPECT_EQ(rows[2][1], "0.0000");
  EXPECT_EQ(rows[3][0], "c.png");
  EXPECT_EQ(rows[4][0], "b.png");
  // b moves 0.2 of the 0.6 to its blue, 0.4 to its red: (0.4 · ΔE(blue, red)) / 0.6.
  EXPECT_NEAR(std::stod(rows[4][1]), 0.4 * de76(0x0000ff, 0xff0000) / 0.6, 1e-4);
  EXPECT_EQ(rows[5][0], "far, away.png");
  // Two colours, the rest free; --top and the JSON Lines answer.
  r = find({results_csv(), "--colors", "#0000ff:50,rgb(255,255,255):20", "--top", "1", "--format",
            "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"file\":\"a.png\",\"score\":0.0,\"colors\":[\"#0000ff\",\"#ffffff\"],"
            "\"shares\":[0.6,0.4]}\n");
}

TEST_F(FindTest, NearestPalettesByEmd) {
  // a's own palette: a first (0), then the others by their EMD to it.
  auto r = find({results_csv(), "--palette", "#0000ff:60,#ffffff:40", "--top", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 3u) << r.out;
  EXPECT_EQ(rows[1][0], "a.png");
  EXPECT_EQ(rows[1][1], "0.0000");
  // Weights may be left out: equal parts.
  r = find({results_csv(), "--palette", "#0000ff,#ffffff"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 6u) << r.out;  // five images with palettes (top 10 by default)
  EXPECT_EQ(rows[1][0], "a.png");
  EXPECT_NEAR(std::stod(rows[1][1]), 0.1 * de76(0x0000ff, 0xffffff), 1e-4);
  // --like an image of the results: its row is the query, and it is not in the answer.
  r = find({results_csv(), "--like", "a.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto like = files_of_rows(r.out);
  EXPECT_EQ(like.size(), 4u) << r.out;
  EXPECT_EQ(std::count(like.begin(), like.end(), "a.png"), 0);
  rows = parse_csv(r.out);
  for (std::size_t i = 2; i < rows.size(); ++i) {
    EXPECT_LE(std::stod(rows[i - 1][1]), std::stod(rows[i][1])) << r.out;
  }
  // d is all blue: 0.4 of a's weight moves from white to blue.
  for (const auto& row : rows) {
    if (row[0] == "d.png") {
      EXPECT_NEAR(std::stod(row[1]), 0.4 * de76(0xffffff, 0x0000ff), 1e-4);
    }
  }
  // The same answer through --max-delta-e as a score limit.
  r = find({results_csv(), "--like", "./a.png", "--max-delta-e", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(files_of_rows(r.out).empty()) << r.out;
}

TEST_F(FindTest, PalettesWithoutWeightAreNoMatch) {
  const std::string p = dir_.file("zero.csv");
  write_text(p,
             "file,color_1,share_1,error\n"
             "zero.png,#0000ff,0.0000,\n"
             "blue.png,#0000ff,1.0000,\n");
  for (const char* query : {"--palette", "--colors"}) {
    const auto r = find({p, query, "#0000ff:50"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(files_of_rows(r.out), (std::vector<std::string>{"blue.png"})) << query;
  }
}

TEST_F(FindTest, LikeAnImageOutsideTheResultsDecodesIt) {
  const std::string out = dir_.file("out.csv");
  ASSERT_EQ(extract({solid_png("red.png", kRed), png("blue.png", {kBlue, kWhite}, {6, 2}), "-o",
                     out, "-q"})
                .exit_code,
            0);
  const std::string query = png("query.png", {kBlue, kWhite}, {5, 3});
  const auto r = find({out, "--like", query, "--top", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of_rows(r.out), (std::vector<std::string>{dir_.file("blue.png")}));
  const auto bad = find({out, "--like", dir_.file("nowhere.png")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("neither in the results nor an image file"), std::string::npos);
}

TEST_F(FindTest, QueryUsageErrors) {
  const std::string lib = results_csv();
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{lib},
                                             {lib, "--color", "#000000", "--colors", "#000000:10"},
                                             {lib, "--colors", "#000000:60,#ffffff:50"},
                                             {lib, "--colors", "#000000:0"},
                                             {lib, "--colors", "#000000:x"},
                                             {lib, "--colors", "bluish:50"},
                                             {lib, "--colors", "#000000:100,#ffffff"},
                                             {lib, "--palette", "nocolour"},
                                             {lib, "--colors", "#000000:50", "--min-share", "0.1"},
                                             {"-", "--like", "a.png"}}) {
    const auto r = find(args);
    EXPECT_EQ(r.exit_code, 2) << args.back() << r.out;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  }
}

// Results of extract itself: an image found by its own dominant colour.
TEST_F(FindTest, FindsWhatExtractWrote) {
  const std::string red = solid_png("red.png", kRed);
  const std::string blue = png("blue.png", {kBlue, kWhite}, {6, 2});
  const std::string out = dir_.file("out.csv");
  ASSERT_EQ(extract({red, blue, "-o", out, "-q"}).exit_code, 0);
  const auto r = find({out, "--color", "#0000ff", "--max-delta-e", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of_rows(r.out), (std::vector<std::string>{blue}));
}

}  // namespace
}  // namespace palette::test
