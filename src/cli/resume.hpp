#pragma once
// palette extract --resume: the record of a run's options beside its output, and reading back
// the rows an interrupted run left behind.
//
// The record is OUTPUT.palette-run.json, written (atomically) when a run to a file starts: the
// options that shape rows (format, k, space, size, seed, iteration limit, tolerance, alpha
// threshold, pixel limit, hidden files, the input arguments) and palette's version. The output
// itself stays plain CSV / JSON Lines.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "palette/writer.hpp"

namespace palette::cli {

/// One option that shapes rows: its name as a user writes it ("-k", "--space", "the inputs")
/// and its value, as text.
struct RecordedOption {
  std::string name, value;
  /// The value a record written before this option existed means (empty: none; such a record
  /// does not match).
  std::string before = {};
};

/// Where the record of `output`'s run is.
std::string run_record_path(const std::string& output);

/// Writes the record of a run to `output` (replacing one there). Throws palette::Error.
void write_run_record(const std::string& output, const std::vector<RecordedOption>& options);

/// Adds to the record of `output`'s run that the run completed: "rows" (in the output) and
/// "inputs" (all the run enumerated, those of other shards included). Throws palette::Error.
void complete_run_record(const std::string& output, std::size_t rows, std::size_t inputs);

/// The record of `output`'s run as name -> value; empty when there is none or it is damaged.
std::vector<std::pair<std::string, std::string>> read_run_record(const std::string& output);

/// The first option in which `now` differs from the record of the run that wrote `output`, as
/// "-k was 5, now 8"; empty when they agree. Throws UsageError when there is no readable record.
std::string compare_run_record(const std::string& output, const std::vector<RecordedOption>& now);

/// What an output file already holds.
struct WrittenOutput {
  std::uint64_t keep_bytes = 0;  ///< the header and the whole rows: the rest is a cut-off row
  std::size_t rows = 0;          ///< whole rows
  std::size_t failed = 0;        ///< of which error rows
  bool header = false;           ///< the header is whole (always true for JSON Lines)
};

/// Reads the output at `path` written with `formatter`: checks its header (UsageError if it is
/// another one: another format or k), and calls on_row(i, row) for every whole row, in order
/// (row i without its line end). Throws UsageError when the file cannot be read.
WrittenOutput read_written_output(const std::string& path, const RowFormatter& formatter,
                                  OutputFormat format,
                                  const std::function<void(std::size_t, std::string_view)>& on_row);

}  // namespace palette::cli
