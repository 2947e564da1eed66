// palette merge PART... -o OUT: the part files of a sharded run (extract --shard I/N) joined in
// input order into the file one process would have written, byte for byte, with its run
// record. Parts of different runs, missing, repeated or unfinished parts are refused.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "palette/error.hpp"
#include "palette/image_io.hpp"
#include "palette/points.hpp"
#include "palette/results.hpp"
#include "palette/writer.hpp"
#include "pictures.hpp"
#include "resume.hpp"
#include "shard.hpp"

namespace palette::cli {
namespace {

struct MergeOptions {
  std::vector<std::string> parts;
  std::string output;
  std::string combined_output;  // a --combined run's palette in a file of its own
  std::string swatches;         // its strip there, as combined.png
};

using Record = std::vector<std::pair<std::string, std::string>>;

std::string value_of(const Record& r, const std::string& name) {
  for (const auto& [n, v] : r) {
    if (n == name) return v;
  }
  return {};
}

// Reads a part's lines (its header, then its rows) one at a time.
class PartReader {
 public:
  PartReader(const std::string& path, OutputFormat format)
      : path_(path), file_(std::fopen(path.c_str(), "rb"), &std::fclose), splitter_(format) {
    if (!file_) throw UsageError("cannot read " + path + ": " + std::strerror(errno));
  }
  // The next line, with its "\n"; false at the end of the file.
  bool next(std::string& line) {
    while (lines_.empty() && !eof_) {
      const std::size_t n = std::fread(buf_.data(), 1, buf_.size(), file_.get());
      if (n == 0) {
        if (std::ferror(file_.get())) {
          throw UsageError("cannot read " + path_ + ": " + std::strerror(errno));
        }
        eof_ = true;
        break;
      }
      splitter_.feed(std::string_view(buf_.data(), n),
                     [&](std::string_view l) { lines_.emplace_back(std::string(l) + "\n"); });
    }
    if (lines_.empty()) return false;
    line = std::move(lines_.front());
    lines_.pop_front();
    return true;
  }
  // Whether bytes are left after the last whole line (a row cut off).
  bool cut_off() {
    fseeko(file_.get(), 0, SEEK_END);
    return static_cast<std::uint64_t>(ftello(file_.get())) != splitter_.complete_bytes();
  }

 private:
  std::string path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
  RowSplitter splitter_;
  std::vector<char> buf_ = std::vector<char>(std::size_t{1} << 20);
  std::deque<std::string> lines_;
  bool eof_ = false;
};

int run(const MergeOptions& o) {
  setup_logging(0);
  // Every part: its record, its shard, finished, and of the same run as the first.
  std::vector<Record> records;
  std::map<std::size_t, std::size_t> by_index;  // shard index -> position in o.parts
  std::optional<Shard> first;
  const auto differs = [](const Record& a, const Record& b) -> std::string {
    const auto skip = [](const std::string& n) {
      return n == "--shard" || n == "rows" || n == "complete";
    };
    for (const auto& [n, v] : a) {
      if (skip(n)) continue;
      const std::string w = value_of(b, n);
      if (w != v)
        return n + " is " + v + " in one and " + (w.empty() ? "missing" : w) + " in the other";
    }
    for (const auto& [n, v] : b) {
      if (!skip(n) && value_of(a, n).empty()) return n + " is only in one";
    }
    return {};
  };
  for (std::size_t i = 0; i < o.parts.size(); ++i) {
    const std::string& part = o.parts[i];
    std::error_code ec;
    if (!std::filesystem::exists(part, ec)) {
      throw UsageError("cannot merge " + part + ": no such file" +
                       (part.find_first_of("*?[") != std::string::npos
                            ? " (a pattern that matched no part?)"
                            : ""));
    }
    Record r = read_run_record(part);
    if (r.empty()) {
      throw UsageError("cannot merge " + part + ": no readable run record beside it (" +
                       run_record_path(part) + ")");
    }
    const auto shard = from_record(value_of(r, "--shard"));
    if (!shard) throw UsageError("cannot merge " + part + ": it is not a part of a sharded run");
    if (value_of(r, "complete") != "yes") {
      throw UsageError("cannot merge " + part +
                       ": its run did not finish (finish it with extract --resume)");
    }
    if (first && (shard->count != first->count || shard->block != first->block)) {
      throw UsageError("cannot merge " + part + ": it is shard " + to_record(*shard) + ", " +
                       o.parts[0] + " is " + to_record(*first) + ": parts of different runs");
    }
    if (!records.empty()) {
      const std::string d = differs(records[0], r);
      if (!d.empty()) {
        throw UsageError("cannot merge " + part + " with " + o.parts[0] + ": " + d +
                         ": parts of different runs");
      }
    }
    if (!by_index.emplace(shard->index, i).second) {
      throw UsageError("cannot merge: " + o.parts[by_index[shard->index]] + " and " + part +
                       " are both shard " + std::to_string(shard->index));
    }
    if (!first) first = shard;
    records.push_back(std::move(r));
  }
  for (std::size_t s = 0; s < first->count; ++s) {
    if (!by_index.count(s)) {
      throw UsageError("cannot merge: shard " + std::to_string(s) + " of " +
                       std::to_string(first->count) + " is missing");
    }
  }
  const Record& rec = records[0];
  std::size_t inputs = 0;
  try {
    inputs = std::stoull(value_of(rec, "inputs"));
  } catch (const std::exception&) {
    throw UsageError("cannot merge " + o.parts[0] + ": its record has no input count");
  }
  const OutputFormat format =
      value_of(rec, "--format") == "jsonl" ? OutputFormat::kJsonl : OutputFormat::kCsv;
  // --combined: every part's colours, added up, make the run's palette.
  const bool combined = value_of(rec, "--combined") == "yes";
  if ((!o.combined_output.empty() || !o.swatches.empty()) && !combined) {
    throw UsageError(std::string(o.swatches.empty() ? "--combined-output" : "--swatches") +
                     ": the parts were not made with --combined");
  }
  Pictures pictures;
  if (!o.swatches.empty()) pictures.swatches_to(o.swatches);
  ColorWeights colours;
  if (combined) {
    for (const std::string& part : o.parts) {
      const std::string path = colours_path(part);
      FileBytes file;
      try {
        // The most serialize() writes: 2^24 colours, 1 + 10 bytes each.
        file = read_file(path, 26 + 11 * (std::uint64_t{1} << 24));
      } catch (const Error& e) {
        throw UsageError("cannot merge " + part + ": its colours, which --combined needs, are " +
                         "not readable (" + e.what() + ")");
      }
      try {
        colours.add_serialized(
            std::string_view(reinterpret_cast<const char*>(file.data()), file.size()));
      } catch (const Error& e) {
        throw UsageError("cannot merge " + part + ": " + path + ": " + e.what());
      }
    }
  }
  std::vector<PartReader> readers;
  for (std::size_t s = 0; s < first->count; ++s) {
    const std::size_t i = by_index[s];
    Shard shard = *first;
    shard.index = s;
    const std::string rows = value_of(records[i], "rows");
    if (rows != std::to_string(shard_inputs(shard, inputs))) {
      throw UsageError("cannot merge " + o.parts[i] + ": it has " + rows + " rows, shard " +
                       std::to_string(s) + " of " + std::to_string(inputs) + " inputs has " +
                       std::to_string(shard_inputs(shard, inputs)));
    }
    readers.emplace_back(o.parts[i], format);
  }

  // Written beside the output, then renamed over it: an output is whole or not there.
  require_parent_directory(o.output);
  const std::string tmp = o.output + ".merge-tmp";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (!out) throw UsageError("cannot open output '" + tmp + "': " + std::strerror(errno));
  // Removed again unless it became the output.
  struct Scratch {
    const std::string& path;
    bool kept = false;
    ~Scratch() {
      if (!kept) std::remove(path.c_str());
    }
  } scratch{tmp};
  const auto put = [&](const std::string& line) {
    if (std::fwrite(line.data(), 1, line.size(), out.get()) != line.size()) {
      throw Error("cannot write " + tmp + ": " + std::strerror(errno));
    }
  };
  // Error rows of a file the part's task could not open, but that opens here: that task's
  // node did not see the inputs (or the file came later). Said, not refused, as a part may be
  // hours old; extract under mpirun refuses the like at once (distribute.cpp).
  struct Unopened {
    std::unique_ptr<ResultsParser> parser;  // for the rows that may be such rows
    std::size_t rows = 0;
    std::string first;
  };
  std::vector<Unopened> unopened(readers.size());
  int k = 0;
  const std::string k_text = value_of(rec, "-k");
  std::from_chars(k_text.data(), k_text.data() + k_text.size(), k);
  const auto formatter = make_formatter(format, std::max(k, 1), value_of(rec, "--names") == "yes",
                                        value_of(rec, "--stats") == "yes");
  for (std::size_t s = 0; s < readers.size() && k > 0; ++s) {
    unopened[s].parser = std::make_unique<ResultsParser>(o.parts[by_index[s]]);
  }
  const auto check = [&](std::size_t s, const std::string& line) {
    Unopened& u = unopened[s];
    if (!u.parser || !formatter->is_error_row(std::string_view(line).substr(0, line.size() - 1))) {
      return;
    }
    try {
      u.parser->feed(line, [&](const ResultsRow& row) {
        if (!row.failed || !unreachable_file_error(row.error)) return;
        if (!can_open(std::string(row.file))) return;
        if (u.rows++ == 0) u.first = std::string(row.file) + " (" + std::string(row.error) + ")";
      });
    } catch (const Error&) {
      u.parser.reset();  // not a row as extract writes it: this part's check ends here
    }
  };
  std::string line;
  if (format == OutputFormat::kCsv) {
    std::string header;
    for (std::size_t s = 0; s < readers.size(); ++s) {
      if (!readers[s].next(line) || (s > 0 && line != header)) {
        throw UsageError("cannot merge " + o.parts[by_index[s]] + ": its header is not " +
                         o.parts[by_index[0]] + "'s");
      }
      header = line;
      try {
        unopened[s].parser->feed(line, [](const ResultsRow&) {});
      } catch (const Error&) {
        unopened[s].parser.reset();
      }
    }
    put(header);
  }
  const std::size_t blocks = (inputs + first->block - 1) / first->block;
  std::size_t rows = 0;
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t s = b % first->count;
    const std::size_t n = std::min(first->block, inputs - b * first->block);
    for (std::size_t r = 0; r < n; ++r) {
      if (!readers[s].next(line)) {
        throw UsageError("cannot merge " + o.parts[by_index[s]] + ": it ends before its rows do");
      }
      check(s, line);
      put(line);
      ++rows;
    }
  }
  for (std::size_t s = 0; s < readers.size(); ++s) {
    if (readers[s].next(line) || readers[s].cut_off()) {
      throw UsageError("cannot merge " + o.parts[by_index[s]] + ": it has more than its rows");
    }
  }
  // The combined palette: the last row, as one run writes it, or a file of its own.
  if (combined) {
    CombinedRow c;
    try {
      c = combined_row_of_run(rec, colours);
    } catch (const UsageError& e) {
      throw UsageError("cannot merge " + o.parts[0] + ": " + e.what());
    }
    if (o.combined_output.empty()) {
      put(c.text);
      rows += c.row ? 1 : 0;
    } else if (c.row) {
      write_output(o.combined_output, c.header + c.text);
    }
    if (c.row) pictures.add_combined(*c.row);
  }
  if (std::fflush(out.get()) != 0 || std::fclose(out.release()) != 0) {
    throw Error("cannot write " + tmp + ": " + std::strerror(errno));
  }
  // The record a single run would have left: the same options, not sharded, complete.
  std::vector<RecordedOption> options;
  for (const auto& [n, v] : rec) {
    if (n == "rows" || n == "inputs" || n == "complete") continue;
    // A run with --combined-output records --combined as "no": its rows are those of a run
    // without it.
    const bool own_file = n == "--combined" && !o.combined_output.empty();
    options.push_back({n, n == "--shard" ? "none" : own_file ? "no" : v});
  }
  write_run_record(o.output, options);
  if (std::rename(tmp.c_str(), o.output.c_str()) != 0) {
    throw Error("cannot write " + o.output + ": " + std::strerror(errno));
  }
  scratch.kept = true;
  complete_run_record(o.output, rows, inputs);
  spdlog::info("merged {} parts: {} rows into {}", readers.size(), rows, o.output);
  for (std::size_t s = 0; s < unopened.size(); ++s) {
    if (unopened[s].rows == 0) continue;
    const std::string& part = o.parts[by_index[s]];
    spdlog::warn(
        "{} (shard {} of {}): {} of its rows say their file could not be opened, but it opens "
        "here (the first: {}): did the node that ran it see the inputs? To make them again, "
        "remove {} and {}, run extract --shard {}/{} again, and merge",
        part, s, first->count, unopened[s].rows, unopened[s].first, part, run_record_path(part), s,
        first->count);
  }
  return kExitOk;
}

}  // namespace

std::function<int()> add_merge(CLI::App& app) {
  auto o = std::make_shared<MergeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "merge",
      "Join the part files of a sharded run (extract --shard I/N) into the file one run writes.");
  cmd->add_option("parts", o->parts, "Every part file of the run (OUT.part-I-of-N.EXT)")
      ->required();
  cmd->add_option("-o,--output", o->output, "The merged output file")->required();
  cmd->add_option("--combined-output", o->combined_output,
                  "Parts made with --combined: their palette in this file (header and one row) "
                  "instead of as the output's last row");
  cmd->add_option("--swatches", o->swatches,
                  "Parts made with --combined: their palette's strip in this directory, as "
                  "combined.png (extract --swatches draws the images' strips)");
  return [o] { return run(*o); };
}

}  // namespace palette::cli
