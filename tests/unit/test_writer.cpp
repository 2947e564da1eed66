#include <gtest/gtest.h>

#include "palette/writer.hpp"

namespace palette {
namespace {

Row ok_row(std::string file, std::vector<std::uint32_t> colors, std::vector<std::uint32_t> shares) {
  Row r;
  r.file = std::move(file);
  r.palette.colors = std::move(colors);
  r.palette.shares_e4 = std::move(shares);
  for (auto s : r.palette.shares_e4) r.palette.weights.push_back(s);
  return r;
}

TEST(Writer, HexIsLowerCaseSixDigits) {
  EXPECT_EQ(hex_color(0x0), "#000000");
  EXPECT_EQ(hex_color(0xABCDEF), "#abcdef");
  EXPECT_EQ(hex_color(0x00ff0a), "#00ff0a");
}

TEST(Writer, CsvHeaderNamesEveryColumn) {
  EXPECT_EQ(make_formatter(OutputFormat::kCsv, 3)->header(),
            "file,color_1,color_2,color_3,share_1,share_2,share_3,error\n");
}

TEST(Writer, CsvRowLeavesMissingColoursEmpty) {
  const auto f = make_formatter(OutputFormat::kCsv, 3);
  EXPECT_EQ(f->row(ok_row("a.png", {0xff0000, 0x00ff00}, {7500, 2500})),
            "a.png,#ff0000,#00ff00,,0.7500,0.2500,,\n");
  EXPECT_EQ(f->row(ok_row("b.png", {0x123456}, {10000})), "b.png,#123456,,,1.0000,,,\n");
}

TEST(Writer, CsvErrorRowHasOnlyTheReason) {
  Row r;
  r.file = "bad.jpg";
  r.error = "truncated JPEG";
  EXPECT_EQ(make_formatter(OutputFormat::kCsv, 2)->row(r), "bad.jpg,,,,,truncated JPEG\n");
  r.error = "line one\nline two, with comma";
  EXPECT_EQ(make_formatter(OutputFormat::kCsv, 1)->row(r),
            "bad.jpg,,,\"line one line two, with comma\"\n");
}

TEST(Writer, CsvQuotesHostileFileNames) {
  EXPECT_EQ(csv_field("plain.png"), "plain.png");
  EXPECT_EQ(csv_field("a,b.png"), "\"a,b.png\"");
  EXPECT_EQ(csv_field("say \"hi\".png"), "\"say \"\"hi\"\".png\"");
  EXPECT_EQ(csv_field("two\nlines.png"), "\"two\nlines.png\"");
  EXPECT_EQ(csv_field("cr\r.png"), "\"cr\r.png\"");
  EXPECT_EQ(csv_field(""), "");
}

TEST(Writer, JsonLinesRow) {
  const auto f = make_formatter(OutputFormat::kJsonl, 5);
  EXPECT_EQ(f->header(), "");
  EXPECT_EQ(f->row(ok_row("a \"q\".png", {0xff0000, 0x0000ff}, {6000, 4000})),
            "{\"file\":\"a \\\"q\\\".png\",\"colors\":[\"#ff0000\",\"#0000ff\"],"
            "\"shares\":[0.6000,0.4000],\"error\":null}\n");
  Row bad;
  bad.file = "tab\there\\x.png";
  bad.error = "empty file";
  EXPECT_EQ(f->row(bad),
            "{\"file\":\"tab\\u0009here\\\\x.png\",\"colors\":[],\"shares\":[],"
            "\"error\":\"empty file\"}\n");
}

TEST(Writer, JsonKeepsUtf8AndReplacesInvalidBytes) {
  const auto f = make_formatter(OutputFormat::kJsonl, 1);
  Row r;
  r.error = "x";
  r.file = "caf\xC3\xA9.png";
  EXPECT_NE(f->row(r).find("caf\xC3\xA9.png"), std::string::npos);
  r.file = "bad\xFF.png";
  EXPECT_NE(f->row(r).find("bad\xEF\xBF\xBD.png"), std::string::npos);
}

TEST(Writer, ParsesFormats) {
  EXPECT_EQ(parse_output_format("csv"), OutputFormat::kCsv);
  EXPECT_EQ(parse_output_format("jsonl"), OutputFormat::kJsonl);
  EXPECT_FALSE(parse_output_format("xml").has_value());
}

TEST(Writer, NamesAfterTheErrorColumnAndErrorRowsStillKnown) {
  const auto f = make_formatter(OutputFormat::kCsv, 3, true);
  EXPECT_EQ(f->header(),
            "file,color_1,color_2,color_3,share_1,share_2,share_3,error,name_1,name_2,name_3\n");
  const std::string ok = f->row(ok_row("a.png", {0xff0000, 0x000080}, {7500, 2500}));
  EXPECT_EQ(ok, "a.png,#ff0000,#000080,,0.7500,0.2500,,,red,navy,\n");
  Row bad;
  bad.file = "b, c.png";
  bad.error = "cannot decode: x, y";
  const std::string err = f->row(bad);
  EXPECT_EQ(err, "\"b, c.png\",,,,,,,\"cannot decode: x, y\",,,\n");
  EXPECT_FALSE(f->is_error_row(ok.substr(0, ok.size() - 1)));
  EXPECT_TRUE(f->is_error_row(err.substr(0, err.size() - 1)));
  const auto j = make_formatter(OutputFormat::kJsonl, 3, true);
  const std::string jok = j->row(ok_row("a.png", {0xff0000}, {10000}));
  EXPECT_EQ(jok,
            "{\"file\":\"a.png\",\"colors\":[\"#ff0000\"],\"shares\":[1.0000],\"names\":[\"red\"],"
            "\"error\":null}\n");
  EXPECT_FALSE(j->is_error_row(jok.substr(0, jok.size() - 1)));
}

TEST(Writer, StatsColumnsAfterErrorAndNames) {
  const auto f = make_formatter(OutputFormat::kCsv, 2, true, true);
  EXPECT_EQ(f->header(),
            "file,color_1,color_2,share_1,share_2,error,name_1,name_2,mean_delta_e,"
            "distinct_colors,iterations,converged,excluded\n");
  Row r = ok_row("a.png", {0xff0000}, {10000});
  r.palette.mean_delta_e = 1.23456;
  r.palette.distinct = 42;
  r.palette.iterations = 7;
  r.palette.converged = true;
  r.palette.excluded = 0.25;
  const std::string ok = f->row(r);
  EXPECT_EQ(ok, "a.png,#ff0000,,1.0000,,,red,,1.2346,42,7,true,0.2500\n");
  Row bad;
  bad.file = "b.png";
  bad.error = "broken";
  const std::string err = f->row(bad);
  EXPECT_EQ(err, "b.png,,,,,broken,,,,,,,\n");
  EXPECT_FALSE(f->is_error_row(ok.substr(0, ok.size() - 1)));
  EXPECT_TRUE(f->is_error_row(err.substr(0, err.size() - 1)));
  const auto plain_stats = make_formatter(OutputFormat::kCsv, 2, false, true);
  EXPECT_FALSE(plain_stats->is_error_row("a.png,#ff0000,,1.0000,,,1.2346,42,7,true,0.2500"));
  EXPECT_TRUE(plain_stats->is_error_row("b.png,,,,,broken,,,,,"));
  const auto j = make_formatter(OutputFormat::kJsonl, 2, false, true);
  EXPECT_EQ(j->row(r),
            "{\"file\":\"a.png\",\"colors\":[\"#ff0000\"],\"shares\":[1.0000],\"stats\":{"
            "\"mean_delta_e\":1.2346,\"distinct_colors\":42,\"iterations\":7,\"converged\":true,"
            "\"excluded\":0.2500},\"error\":null}\n");
  EXPECT_EQ(j->row(bad),
            "{\"file\":\"b.png\",\"colors\":[],\"shares\":[],\"stats\":null,\"error\":"
            "\"broken\"}\n");
}

}  // namespace
}  // namespace palette
