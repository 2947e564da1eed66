#pragma once
// Output rows: one per input, in input order. The CSV contract (header, quoting, number format)
// is relied on by tests and other tools; see README.md "Output".

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "palette/palette.hpp"
#include "palette/sheet.hpp"

namespace palette {

/// One input's outcome: a palette, or an error text (then the palette is empty).
struct Row {
  std::string file;
  Palette palette;
  std::string error;
  Thumbnail thumbnail;  ///< only when the pipeline was asked for one (--contact-sheet)

  bool ok() const { return error.empty(); }
};

/// kCsvLong: one CSV row per colour (file,rank,hex,r,g,b,share,error); kJson: one JSON
/// document, an array of the JSON Lines objects (extract writes the lines, then the array).
enum class OutputFormat { kCsv, kJsonl, kCsvLong, kJson };

std::optional<OutputFormat> parse_output_format(std::string_view name);
/// The name parse_output_format() takes: "csv", "jsonl", "csv-long" or "json".
std::string_view to_string(OutputFormat format);

/// "#rrggbb", lower case.
std::string hex_color(std::uint32_t rgb);

/// A field quoted per RFC 4180 when it holds a comma, quote, CR or LF.
std::string csv_field(std::string_view s);

/// Formats rows for one output format and colour count k. Stateless; thread-safe.
class RowFormatter {
 public:
  virtual ~RowFormatter() = default;
  /// Text before the first row (the CSV header line), possibly empty.
  virtual std::string header() const = 0;
  /// One row, with its line terminator.
  virtual std::string row(const Row& row) const = 0;
  /// How every row of input `file` begins, up to the separator after its file field
  /// (row(r).starts_with(row_start(r.file)) for every r).
  virtual std::string row_start(std::string_view file) const = 0;
  /// Whether a row as written (without its line terminator) is an error row.
  virtual bool is_error_row(std::string_view row) const = 0;
};

/// `names`: each colour's nearest CSS named colour too (color_names.hpp): CSV columns
/// name_1..name_K after `error`, a JSON "names" array before "error".
/// `stats`: the palette's quality figures too (add_quality()): CSV columns mean_delta_e,
/// distinct_colors, iterations, converged, excluded after `error` and the names, a JSON "stats"
/// object before "error".
std::unique_ptr<RowFormatter> make_formatter(OutputFormat format, int k, bool names = false,
                                             bool stats = false);

/// Splits text written in an output format back into whole lines (the CSV header, rows), as it
/// streams in: in CSV a line break inside a quoted field belongs to its row. For reading an
/// output that a run left behind (--resume), whose last row may be cut off.
class RowSplitter {
 public:
  /// Takes the next bytes; calls on_line(line) for each line completed, without its "\n".
  template <class F>
  void feed(std::string_view bytes, F&& on_line) {
    for (const char c : bytes) {
      ++seen_;
      if (c == '\n' && !quoted_) {
        on_line(std::string_view(line_));
        line_.clear();
        complete_ = seen_;
        continue;
      }
      if (c == '"' && csv_) quoted_ = !quoted_;
      line_ += c;
    }
  }
  explicit RowSplitter(OutputFormat format)
      : csv_(format == OutputFormat::kCsv || format == OutputFormat::kCsvLong) {}
  /// Bytes up to the end of the last complete line.
  std::uint64_t complete_bytes() const { return complete_; }

 private:
  bool csv_;
  bool quoted_ = false;
  std::string line_;
  std::uint64_t seen_ = 0, complete_ = 0;
};

}  // namespace palette
