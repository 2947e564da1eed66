#pragma once
// Reading results files back: the CSV or JSON Lines that `palette extract` writes, for `find`,
// `stats` and friends. Streamed (any size, any split of the bytes), without an allocation per
// row, and hostile-input safe: a malformed row is an Error naming the source and line.

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace palette {

/// One row of a results file. The views live until the callback returns.
struct ResultsRow {
  std::string_view file;
  std::uint64_t line = 0;  ///< 1-based line of the source where the row begins.
  bool failed = false;     ///< An error row: `error` says why, and there are no colours.
  std::string_view error;
  std::span<const std::uint32_t> colors;  ///< 0xRRGGBB, in the file's order.
  std::span<const double> shares;         ///< One per colour, each in [0, 1].
};

/// The most colours a row may hold (extract writes at most kMaxColors = 64).
inline constexpr std::size_t kMaxResultColors = 256;
/// The longest row accepted, in bytes (a longer one is an error, not a memory balloon).
inline constexpr std::size_t kMaxResultRowBytes = 1 << 20;

/// "#rrggbb" (either case) to 0xRRGGBB; false for anything else.
bool parse_hex_color(std::string_view s, std::uint32_t& rgb);

/// Parses results text fed in pieces of any size. CSV: the first line must be extract's header,
/// `file,color_1..color_K,share_1..share_K,error`, and any further columns (names, statistics)
/// follow `error`; JSON Lines: one object per line with "file", "colors", "shares" and "error"
/// (other members are skipped). The format is told by the first byte: `{` means JSON Lines.
/// Empty lines are skipped; CRLF line ends are accepted.
class ResultsParser {
 public:
  using RowFn = std::function<void(const ResultsRow&)>;

  /// `source` names the input in error messages ("path:line: why").
  explicit ResultsParser(std::string source);

  /// Takes the next bytes; calls on_row for each complete row. Throws palette::Error on a
  /// malformed row (the parser is then unusable).
  void feed(std::string_view bytes, const RowFn& on_row);
  /// Ends the input: a last row without a line end is parsed. Throws palette::Error when a CSV
  /// file has no header or ends inside a quoted field. An empty input has no rows.
  void finish(const RowFn& on_row);

  /// Colours per row of a CSV file (its header's K); 0 for JSON Lines or before the header.
  std::size_t columns() const { return k_; }

  /// A parser in this one's state (format, header) for text that starts with a whole record on
  /// line `line`: how read_results_parallel() parses chunks of a file side by side. Call it
  /// between records only (nothing pending).
  ResultsParser fork(std::uint64_t line) const;

 private:
  enum class Format { kUnknown, kCsv, kJsonl };
  std::size_t record_end(std::string_view bytes, std::size_t from, bool& quoted) const;
  void record(std::string_view text, const RowFn& on_row);
  void csv_record(std::string_view text, const RowFn& on_row);
  void jsonl_record(std::string_view text, const RowFn& on_row);
  [[noreturn]] void fail(std::string_view why) const;
  friend void read_results_parallel(
      const std::vector<std::string>& paths, unsigned threads,
      const std::function<void(unsigned, const ResultsRow&, std::uint64_t)>& on_row);

  std::string source_;
  Format format_ = Format::kUnknown;
  std::size_t k_ = 0;
  bool header_seen_ = false;
  std::uint64_t line_ = 1;  // where the next record begins
  std::string pending_;     // an incomplete record carried to the next feed()
  bool pending_quoted_ = false;
  // Per-row buffers, reused.
  std::vector<std::string_view> fields_;
  std::string unquoted_;
  std::string file_, error_;
  std::vector<std::uint32_t> colors_;
  std::vector<double> shares_;
};

/// Reads a results file ("-" for stdin) and calls on_row for every row, error rows included.
/// Throws palette::Error when it cannot be read or a row is malformed.
void read_results(const std::string& path, const ResultsParser::RowFn& on_row);

/// A row as read_results_parallel() hands it over: which worker parsed it (0..threads-1), and
/// its place in the input order (increasing over the files, not consecutive).
using ParallelRowFn =
    std::function<void(unsigned worker, const ResultsRow& row, std::uint64_t order)>;

/// Reads results files with `threads` workers, the rows of each file in chunks of whole rows
/// (a few MiB) parsed side by side: on_row runs concurrently for different workers, in input
/// order within one worker. The same rows as read_results(); on a malformed row, the error of
/// the first one in input order is thrown once the workers have stopped.
void read_results_parallel(const std::vector<std::string>& paths, unsigned threads,
                           const ParallelRowFn& on_row);

}  // namespace palette
