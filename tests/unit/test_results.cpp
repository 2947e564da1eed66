#include "palette/results.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "palette/error.hpp"
#include "palette/writer.hpp"

namespace palette {
namespace {

// What a ResultsRow held, copied out of the callback.
struct Got {
  std::string file;
  std::uint64_t line;
  bool failed;
  std::string error;
  std::vector<std::uint32_t> colors;
  std::vector<double> shares;
};

// Parses `text` fed in pieces of `step` bytes (0: all at once).
std::vector<Got> parse(std::string_view text, std::size_t step = 0) {
  std::vector<Got> out;
  ResultsParser p("t.csv");
  const auto on_row = [&](const ResultsRow& r) {
    out.push_back({std::string(r.file),
                   r.line,
                   r.failed,
                   std::string(r.error),
                   {r.colors.begin(), r.colors.end()},
                   {r.shares.begin(), r.shares.end()}});
  };
  if (step == 0) {
    p.feed(text, on_row);
  } else {
    for (std::size_t at = 0; at < text.size(); at += step) p.feed(text.substr(at, step), on_row);
  }
  p.finish(on_row);
  return out;
}

std::string parse_error(std::string_view text) {
  try {
    parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

Row make_row(std::string file, std::vector<std::uint32_t> colors,
             std::vector<std::uint32_t> shares_e4, std::string error = "") {
  Row r;
  r.file = std::move(file);
  r.palette.colors = std::move(colors);
  r.palette.shares_e4 = std::move(shares_e4);
  r.error = std::move(error);
  return r;
}

// Rows with every awkward file name extract can meet, written by extract's own formatters.
std::vector<Row> awkward_rows() {
  return {make_row("plain.jpg", {0xff0000, 0x00ff00, 0x0000ff}, {5000, 3000, 2000}),
          make_row("with, comma.png", {0x123456, 0xabcdef}, {9999, 1}),
          make_row("with \"quotes\".png", {0x000000}, {10000}),
          make_row("line\nbreak.png", {0xfefefe, 0x010101, 0x808080}, {3334, 3333, 3333}),
          make_row("broken.jpg", {}, {}, "cannot decode: not a JPEG, \"really\""),
          make_row("ünïcødé/ファイル.webp", {0x00ffff, 0xff00ff}, {1, 9999}),
          make_row("tab\tand\x01control.bmp", {0x0a0b0c}, {10000})};
}

void expect_rows(const std::vector<Got>& got, const std::vector<Row>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].file);
    EXPECT_EQ(got[i].file, want[i].file);
    EXPECT_EQ(got[i].failed, !want[i].ok());
    if (!want[i].ok()) {
      EXPECT_EQ(got[i].error, want[i].error);
      EXPECT_TRUE(got[i].colors.empty());
      continue;
    }
    EXPECT_EQ(got[i].colors, want[i].palette.colors);
    ASSERT_EQ(got[i].shares.size(), want[i].palette.shares_e4.size());
    for (std::size_t c = 0; c < got[i].shares.size(); ++c) {
      EXPECT_EQ(got[i].shares[c], want[i].palette.shares_e4[c] / 10000.0);
    }
  }
}

std::string written(OutputFormat format, int k, const std::vector<Row>& rows) {
  const auto f = make_formatter(format, k);
  std::string text = f->header();
  for (const auto& r : rows) text += f->row(r);
  return text;
}

TEST(Results, ReadsBackWhatExtractWritesInCsvAndJsonLines) {
  const auto rows = awkward_rows();
  for (const auto format : {OutputFormat::kCsv, OutputFormat::kJsonl}) {
    const std::string text = written(format, 3, rows);
    SCOPED_TRACE(format == OutputFormat::kCsv ? "csv" : "jsonl");
    expect_rows(parse(text), rows);
    // However the bytes arrive.
    for (const std::size_t step : {1, 2, 3, 7, 64}) expect_rows(parse(text, step), rows);
  }
}

TEST(Results, LineNumbersCountLineBreaksInsideQuotes) {
  const auto got = parse(written(OutputFormat::kCsv, 3, awkward_rows()));
  ASSERT_EQ(got.size(), 7u);
  EXPECT_EQ(got[0].line, 2u);  // after the header
  EXPECT_EQ(got[3].line, 5u);  // the row whose name holds a line break...
  EXPECT_EQ(got[4].line, 7u);  // ...spans two lines
}

TEST(Results, ColumnsAfterErrorAndUnknownJsonMembersAreSkipped) {
  const std::string csv =
      "file,color_1,color_2,share_1,share_2,error,name_1,name_2,mean_delta_e\n"
      "a.png,#ff0000,#00FF00,0.7500,0.2500,,red,lime,1.5\n"
      "b.png,,,,,\"no pixels\",,,\n";
  const auto got = parse(csv);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].colors, (std::vector<std::uint32_t>{0xff0000, 0x00ff00}));
  EXPECT_EQ(got[0].shares, (std::vector<double>{0.75, 0.25}));
  EXPECT_TRUE(got[1].failed);
  EXPECT_EQ(got[1].error, "no pixels");

  const std::string jsonl =
      "{\"file\":\"a\\u00e9\\ud83d\\ude00.png\",\"names\":[\"red\"],\"stats\":{\"x\":[1,2,{}]},"
      "\"colors\":[\"#ff0000\"],\"shares\":[1],\"error\":null,\"z\":true}\n"
      "  {\"error\":\"bad\",\"file\":\"b.png\",\"colors\":[],\"shares\":[]}  \r\n";
  const auto j = parse(jsonl);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0].file, "a\xc3\xa9\xf0\x9f\x98\x80.png");
  EXPECT_EQ(j[0].shares, std::vector<double>{1.0});
  EXPECT_TRUE(j[1].failed);
}

TEST(Results, FewerColoursThanKCrlfBomAndBlankLines) {
  const std::string csv =
      "\xEF\xBB\xBF"
      "file,color_1,color_2,color_3,share_1,share_2,share_3,error\r\n"
      "\r\n"
      "a.png,#102030,,,1.0000,,,\r\n"
      "last.png,#000000,#ffffff,,0.5,0.5,,";  // no line end at the end
  const auto got = parse(csv);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].colors, std::vector<std::uint32_t>{0x102030});
  EXPECT_EQ(got[0].line, 3u);
  EXPECT_EQ(got[1].file, "last.png");
  EXPECT_EQ(got[1].shares, (std::vector<double>{0.5, 0.5}));
}

TEST(Results, SharesAreTheNearestDoubles) {
  // The fast path must give what from_chars gives, for every form extract or a person writes.
  std::mt19937_64 rng(7);
  const std::string header = "file,color_1,share_1,error\n";
  for (int i = 0; i < 20000; ++i) {
    const int decimals = 1 + static_cast<int>(rng() % 12);
    const std::uint64_t scale = [&] {
      std::uint64_t s = 1;
      for (int d = 0; d < decimals; ++d) s *= 10;
      return s;
    }();
    const std::uint64_t v = rng() % (scale + 1);
    std::string text = std::to_string(v / scale) + ".";
    std::string frac = std::to_string(v % scale);
    text += std::string(static_cast<std::size_t>(decimals) - frac.size(), '0') + frac;
    double want = 0;
    std::from_chars(text.data(), text.data() + text.size(), want);
    const auto got = parse(header + "x,#000000," + text + ",\n");
    ASSERT_EQ(got.at(0).shares.at(0), want) << text;
  }
  EXPECT_EQ(parse(header + "x,#000000,1e-4,\n").at(0).shares.at(0), 1e-4);
  EXPECT_EQ(parse(header + "x,#000000,1,\n").at(0).shares.at(0), 1.0);
}

TEST(Results, MalformedInputIsAnErrorNamingTheLine) {
  const std::string header = "file,color_1,share_1,error\n";
  EXPECT_TRUE(parse("").empty());  // no rows: extract's JSON Lines for no inputs
  EXPECT_NE(parse_error("\n").find("no CSV header"), std::string::npos);
  EXPECT_NE(parse_error("file,colour,share,error\n").find("t.csv:1: not a palette results file"),
            std::string::npos);
  EXPECT_NE(parse_error("file,color_1,share_2,error\n").find("header"), std::string::npos);
  EXPECT_NE(parse_error("file,color_1,share_1\n").find("header"), std::string::npos);
  EXPECT_NE(parse_error(header + "a,#000000,1,\nb,#00000,1,\n").find("t.csv:3: color_1"),
            std::string::npos);
  EXPECT_NE(parse_error(header + "a,#000000,1.5,\n").find("share_1"), std::string::npos);
  EXPECT_NE(parse_error(header + "a,#000000,nan,\n").find("share_1"), std::string::npos);
  EXPECT_NE(parse_error(header + "a,#000000,-0.1,\n").find("share_1"), std::string::npos);
  EXPECT_NE(parse_error(header + "a,#000000,\n").find("too few columns"), std::string::npos);
  EXPECT_NE(parse_error(header + "\"a,#000000,1,\n").find("inside a quoted field"),
            std::string::npos);
  for (const char* bad : {"{", "{}", "{\"file\":1,\"error\":null}", "{\"file\":\"a\"}",
                          "{\"file\":\"a\",\"error\":null,\"colors\":[\"#000000\"],\"shares\":[]}",
                          "{\"file\":\"a\",\"error\":null,\"colors\":[\"#000000\"],\"shares\":[2]}",
                          "{\"file\":\"a\",\"error\":null,\"colors\":[],\"shares\":[]} x",
                          "{\"file\":\"a\\ud800\",\"error\":null,\"colors\":[],\"shares\":[]}",
                          "{\"file\":\"a\",\"error\":null,\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                          "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                          "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],\"colors\":[],"
                          "\"shares\":[]}"}) {
    EXPECT_NE(parse_error(bad).find("t.csv:1: not a row of palette's JSON Lines"),
              std::string::npos)
        << bad;
  }
}

TEST(Results, ARowLongerThanTheLimitIsRefusedNotBuffered) {
  const std::string header = "file,color_1,share_1,error\n";
  const std::string huge(kMaxResultRowBytes + 10, 'x');
  EXPECT_NE(parse_error(header + huge).find("longer than"), std::string::npos);
  EXPECT_NE(parse_error(header + "\"" + huge).find("longer than"), std::string::npos);
}

// A file of the test's own, removed at the end.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text, const std::string& ext) {
    path =
        (std::filesystem::temp_directory_path() /
         ("palette-results-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ext))
            .string();
    std::ofstream(path, std::ios::binary) << text;
  }
  ~TempFile() { std::filesystem::remove(path); }
  static inline int counter = 0;
};

// Rows read side by side, put back in input order by their order keys.
std::vector<std::string> rows_parallel(const std::vector<std::string>& paths, unsigned threads) {
  std::mutex m;
  std::map<std::uint64_t, std::string> by_order;
  std::vector<std::uint64_t> last(threads, 0);
  bool in_order = true;
  read_results_parallel(paths, threads, [&](unsigned w, const ResultsRow& r, std::uint64_t o) {
    std::string text = std::string(r.file) + "|" + std::to_string(r.line) + "|" +
                       std::string(r.error) + "|" + std::to_string(r.colors.size());
    for (double s : r.shares) text += "," + std::to_string(s);
    std::lock_guard lock(m);
    if (w >= threads || o < last[w] || by_order.count(o)) in_order = false;
    last[w] = o + 1;
    by_order[o] = text;
  });
  EXPECT_TRUE(in_order);
  std::vector<std::string> out;
  for (auto& [o, text] : by_order) out.push_back(text);
  return out;
}

std::vector<std::string> rows_sequential(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    read_results(p, [&](const ResultsRow& r) {
      std::string text = std::string(r.file) + "|" + std::to_string(r.line) + "|" +
                         std::string(r.error) + "|" + std::to_string(r.colors.size());
      for (double s : r.shares) text += "," + std::to_string(s);
      out.push_back(text);
    });
  }
  return out;
}

// Many chunks' worth of rows (over 4 MiB per file), awkward names among them.
std::string big(OutputFormat format, int rows, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const auto f = make_formatter(format, 3);
  std::string text = f->header();
  const auto awkward = awkward_rows();
  for (int i = 0; i < rows; ++i) {
    if (i % 101 == 0) {
      text += f->row(awkward[static_cast<std::size_t>(i / 101) % awkward.size()]);
      continue;
    }
    text +=
        f->row(make_row("photos/" + std::to_string(i) + "/IMG_" + std::to_string(rng()) + ".jpg",
                        {static_cast<std::uint32_t>(rng() & 0xFFFFFF),
                         static_cast<std::uint32_t>(rng() & 0xFFFFFF)},
                        {6000, 4000}));
  }
  return text;
}

TEST(Results, ParallelReadingGivesTheSameRowsInOrder) {
  for (const auto format : {OutputFormat::kCsv, OutputFormat::kJsonl}) {
    const TempFile a(big(format, 150000, 1), ".a"), b(big(format, 1000, 2), ".b");
    const TempFile empty(format == OutputFormat::kCsv ? "file,color_1,share_1,error" : "", ".c");
    const std::vector<std::string> paths = {a.path, empty.path, b.path};
    const auto want = rows_sequential(paths);
    ASSERT_EQ(want.size(), 151000u);
    for (const unsigned threads : {1u, 2u, 3u, 8u}) {
      EXPECT_EQ(rows_parallel(paths, threads), want) << threads;
    }
  }
}

TEST(Results, ParallelReadingReportsTheFirstErrorInInputOrder) {
  std::string text = big(OutputFormat::kCsv, 90000, 3);
  // Two bad rows, one early in the second chunk and one near the end.
  const std::size_t early = text.find('\n', std::size_t{5} << 20) + 1;
  const std::size_t late = text.find('\n', text.size() - 2000) + 1;
  text.insert(late, "late.png,#00000g,,,1,,,\n");
  text.insert(early, "early.png,#zzzzzz,,,1,,,\n");
  const TempFile f(text, ".csv");
  std::string want;
  try {
    rows_sequential({f.path});
  } catch (const Error& e) {
    want = e.what();
  }
  ASSERT_NE(want.find("color_1"), std::string::npos) << want;
  for (const unsigned threads : {2u, 4u}) {
    try {
      rows_parallel({f.path}, threads);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), want);
    }
  }
  // A file that is not one, and one whose last row is cut inside quotes.
  const TempFile junk("name,value\n1,2\n", ".junk"),
      open_quote(big(OutputFormat::kCsv, 10, 4) + "\"a,", ".q");
  for (const auto* bad : {&junk, &open_quote}) {
    std::string seq;
    try {
      rows_sequential({bad->path});
    } catch (const Error& e) {
      seq = e.what();
    }
    EXPECT_FALSE(seq.empty());
    EXPECT_THROW(
        {
          try {
            rows_parallel({bad->path}, 2);
          } catch (const Error& e) {
            EXPECT_EQ(std::string(e.what()), seq);
            throw;
          }
        },
        Error);
  }
}

}  // namespace
}  // namespace palette
