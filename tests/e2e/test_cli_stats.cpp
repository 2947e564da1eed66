// palette stats over a results file built by hand: rows ok and failed, images per basic colour
// class (holding it; mostly it, the class's colours adding up to half or more), and the
// library's palette; text, CSV and JSON.

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_helpers.hpp"

namespace palette::test {
namespace {

class StatsTest : public ExtractTest {
 protected:
  std::string library() {
    const std::string p = dir_.file("lib.csv");
    write_text(p,
               "file,color_1,color_2,color_3,share_1,share_2,share_3,error\n"
               "a.png,#0000ff,#ffffff,,0.6000,0.4000,,\n"
               "b.png,#ff0000,#000080,,0.8000,0.2000,,\n"
               "c.png,#000000,#ffffff,#808080,0.5000,0.3000,0.2000,\n"
               "bad.png,,,,,,,\"cannot decode: broken, really\"\n"
               // Blue by two colours together (0.55), none of them half on its own.
               "d.png,#ffd700,#0000cd,#00008b,0.4500,0.3000,0.2500,\n");
    return p;
  }
  RunResult stats(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {PALETTE_BINARY, "stats"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
};

TEST_F(StatsTest, ClassesRowsAndLibraryPaletteAsJson) {
  const auto r = stats({library(), "--format", "json", "-k", "20"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("rows"), (nlohmann::json{{"ok", 4}, {"failed", 1}, {"total", 5}}));
  std::map<std::string, std::pair<int, int>> got;
  for (const auto& c : j.at("classes")) {
    got[c.at("class").get<std::string>()] = {c.at("images").get<int>(), c.at("mostly").get<int>()};
  }
  ASSERT_EQ(got.size(), 11u);
  EXPECT_EQ(got["blue"], std::make_pair(3, 2));  // a, b, d; a and d mostly
  EXPECT_EQ(got["white"], std::make_pair(2, 0));
  EXPECT_EQ(got["red"], std::make_pair(1, 1));
  EXPECT_EQ(got["black"], std::make_pair(1, 1));  // exactly half counts
  EXPECT_EQ(got["grey"], std::make_pair(1, 0));
  EXPECT_EQ(got["yellow"], std::make_pair(1, 0));
  for (const char* none : {"orange", "green", "purple", "pink", "brown"}) {
    EXPECT_EQ(got[none], std::make_pair(0, 0)) << none;
  }
  // k above the library's nine colours: each is its own cluster, share = its weight over the
  // library (4 images), largest first.
  const auto& p = j.at("palette");
  ASSERT_EQ(p.size(), 9u) << r.out;
  EXPECT_EQ(p[0].at("color"), "#ff0000");
  EXPECT_DOUBLE_EQ(p[0].at("share").get<double>(), 0.2);
  EXPECT_EQ(p[0].at("name"), "red");
  EXPECT_EQ(p[1].at("color"), "#ffffff");
  EXPECT_DOUBLE_EQ(p[1].at("share").get<double>(), 0.175);
  double total = 0;
  for (const auto& c : p) total += c.at("share").get<double>();
  EXPECT_NEAR(total, 1.0, 1e-9);
}

TEST_F(StatsTest, TextAndCsv) {
  auto r = stats({library()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rows: 5 (4 ok, 1 failed)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("library palette (5 colours"), std::string::npos) << r.out;
  r = stats({library(), "--format", "csv", "-k", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 1u + 2 + 11 + 2) << r.out;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"kind", "name", "images", "mostly", "share"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"rows", "ok", "4", "", ""}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"rows", "failed", "1", "", ""}));
  EXPECT_EQ(rows[3], (std::vector<std::string>{"class", "black", "1", "1", ""}));
  EXPECT_EQ(rows[14][0], "palette");
  EXPECT_EQ(rows[15][0], "palette");
}

TEST_F(StatsTest, JsonLinesResultsAndErrors) {
  const std::string jl = dir_.file("lib.jsonl");
  write_text(jl, "{\"file\":\"e.png\",\"colors\":[\"#00ff00\"],\"shares\":[1.0],\"error\":null}\n");
  auto r = stats({jl, library(), "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("rows").at("ok"), 5);
  r = stats({dir_.file("missing.csv")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  r = stats({library(), "--format", "xml"});
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace palette::test
