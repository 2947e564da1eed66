#pragma once
// Output rows: one per input, in input order. The CSV contract (header, quoting, number format)
// is relied on by tests and other tools; see README.md "Output".

#include <memory>
#include <string>
#include <string_view>

#include "palette/palette.hpp"

namespace palette {

/// One input's outcome: a palette, or an error text (then the palette is empty).
struct Row {
  std::string file;
  Palette palette;
  std::string error;

  bool ok() const { return error.empty(); }
};

enum class OutputFormat { kCsv, kJsonl };

std::optional<OutputFormat> parse_output_format(std::string_view name);

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
};

std::unique_ptr<RowFormatter> make_formatter(OutputFormat format, int k);

}  // namespace palette
