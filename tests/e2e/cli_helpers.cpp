#include "cli_helpers.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>
#include <utility>

namespace palette::test {
namespace {

// run() writes the test's stdin text to the child; a child that exits before reading it all
// (a usage error, say) must not kill the test process with SIGPIPE.
const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

}  // namespace

std::string hex(std::uint32_t rgb) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%06x", rgb & 0xFFFFFFu);
  return buf;
}

std::uint32_t parse_hex(const std::string& s) {
  return static_cast<std::uint32_t>(std::stoul(s.substr(1), nullptr, 16));
}

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

std::vector<std::string> files_of(const std::vector<PaletteRow>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.file);
  return out;
}

int colors_in(const std::vector<std::string>& args) {
  int k = 5;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string value;
    if ((args[i] == "-k" || args[i] == "--colors") && i + 1 < args.size()) {
      value = args[++i];
    } else if (args[i].starts_with("--colors=")) {
      value = args[i].substr(9);
    } else {
      continue;
    }
    try {
      k = std::stoi(value);
    } catch (const std::exception&) {
      ADD_FAILURE() << "colours '" << value << "' are not a number";
    }
  }
  return k;
}

RunResult ExtractTest::extract(const std::vector<std::string>& args,
                               const std::string& stdin_text) {
  // Inside a Slurm job array, extract would take the task's shard, and inside a step srun
  // started with several tasks it would refuse: not what a test means.
  std::vector<std::string> argv = {"/usr/bin/env",           "-u", "SLURM_ARRAY_TASK_ID", "-u",
                                   "SLURM_ARRAY_TASK_COUNT", "-u", "SLURM_STEP_NUM_TASKS"};
  argv.insert(argv.end(), as_user_.begin(), as_user_.end());
  argv.insert(argv.end(), {PALETTE_BINARY, "extract"});
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, stdin_text);
}

Extracted ExtractTest::extract_rows(const std::vector<std::string>& args,
                                    const std::string& stdin_text) {
  Extracted r;
  static_cast<RunResult&>(r) = extract(args, stdin_text);
  r.rows = parse_rows(r.out, colors_in(args));
  return r;
}

std::string ExtractTest::png(const std::string& name, const std::vector<std::uint32_t>& colors,
                             const std::vector<int>& widths, int height) {
  const std::string p = dir_.file(name);
  write_image(p, stripes(colors, widths, height));
  return p;
}

std::string ExtractTest::solid_png(const std::string& name, std::uint32_t color, int w, int h) {
  return png(name, {color}, {w}, h);
}

std::string ExtractTest::make_dir(const std::string& name) {
  const std::string p = dir_.file(name);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace palette::test
