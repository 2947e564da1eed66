#pragma once
// Helpers shared by the end-to-end tests of the palette binary (tests/e2e/test_cli_*.cpp): the
// binary is run on synthetic images written to a temporary directory, and its exit code, stdout
// (CSV / JSON Lines) and stderr are checked against the command's contract (README.md, docs/,
// ../shared/DESIGN.md).

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "support/images.hpp"

namespace palette::test {

inline constexpr std::uint32_t kRed = 0xff0000;
inline constexpr std::uint32_t kGreen = 0x00ff00;
inline constexpr std::uint32_t kBlue = 0x0000ff;
inline constexpr std::uint32_t kYellow = 0xffff00;
inline constexpr std::uint32_t kWhite = 0xffffff;
inline constexpr std::uint32_t kBlack = 0x000000;

/// 0xrrggbb -> "#rrggbb".
std::string hex(std::uint32_t rgb);

/// "#rrggbb" -> 0xrrggbb.
std::uint32_t parse_hex(const std::string& s);

/// "0.2500" -> 2500; -1 when the text is not a share with exactly four decimals.
int share_e4(const std::string& s);

/// The CSV header for `k` colours.
std::string expected_header(int k);

std::size_t count_lines(const std::string& s);

/// One CSV data row, split into its parts.
struct PaletteRow {
  std::string file;
  std::vector<std::string> colors;  // the non-empty colour cells, in column order
  std::vector<std::string> shares;  // the non-empty share cells, in column order
  std::string error;
  std::vector<std::string> cells;  // all cells, as parsed
};

/// Parses palette's CSV for `k` colours: checks the header and each row's width and returns the
/// rows. Cell-level failures are reported with ADD_FAILURE.
std::vector<PaletteRow> parse_rows(const std::string& text, int k);

/// Checks the contract every row keeps: an ok row has 1..k distinct lowercase #rrggbb colours
/// filling the first columns, as many shares with four decimals, sorted descending and summing
/// to exactly 1.0000; a failed row has only empty colour/share cells and a one-line reason.
void expect_well_formed(const PaletteRow& row, int k);

/// The file column of `rows`, in order.
std::vector<std::string> files_of(const std::vector<PaletteRow>& rows);

/// The colour count that `palette extract ARGS...` uses: the value of the last -k / --colors in
/// `args`, or 5 (the default).
int colors_in(const std::vector<std::string>& args);

/// What `palette extract` gave, with its CSV parsed.
struct Extracted : RunResult {
  std::vector<PaletteRow> rows;  // parse_rows(out, colors_in(args))
};

class ExtractTest : public ::testing::Test {
 protected:
  /// Runs `palette extract ARGS...`.
  RunResult extract(const std::vector<std::string>& args, const std::string& stdin_text = "");

  /// Runs `palette extract ARGS...` and parses the CSV on its stdout for the colour count ARGS
  /// ask for (parse_rows() checks the header and each row's width). The exit code is left to the
  /// caller to check.
  Extracted extract_rows(const std::vector<std::string>& args, const std::string& stdin_text = "");

  /// Writes a PNG of vertical stripes and returns its path.
  std::string png(const std::string& name, const std::vector<std::uint32_t>& colors,
                  const std::vector<int>& widths, int height = 10);

  std::string solid_png(const std::string& name, std::uint32_t color, int w = 8, int h = 8);

  std::string make_dir(const std::string& name);

  TempDir dir_;
  std::vector<std::string> as_user_;  // command prefix that runs palette as another user
};

}  // namespace palette::test
