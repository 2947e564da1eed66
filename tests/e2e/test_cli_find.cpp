// palette find --color over results files built by hand: which rows match (CIEDE2000 within
// --max-delta-e, share at least --min-share; error rows skipped), in which order (difference,
// then the larger share), CSV and JSON Lines inputs alike, and usage errors.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli_helpers.hpp"

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
