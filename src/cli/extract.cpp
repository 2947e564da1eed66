// palette extract INPUT... : palettes of many images to CSV / JSON Lines.

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "commands.hpp"
#include "console.hpp"
#ifdef PALETTE_WITH_CUDA
#include "palette/cuda_backend.hpp"
#endif
#include "distribute.hpp"
#include "mpi.hpp"
#include "options.hpp"
#include "palette/backend.hpp"
#include "palette/clock.hpp"
#include "palette/error.hpp"
#include "palette/image_io.hpp"
#include "palette/inputs.hpp"
#include "palette/pipeline.hpp"
#include "palette/thread_pool.hpp"
#include "palette/writer.hpp"
#include "pictures.hpp"
#include "progress.hpp"
#include "resume.hpp"
#include "shard.hpp"

namespace palette::cli {
namespace {

struct ExtractOptions : ClusterOptions {
  std::vector<std::string> inputs;
  std::string output = "-";
  std::string format;
  std::string progress = "auto";
  int verbose = 0;
  bool quiet = false;
  bool timings = false;
  bool hidden = false;
  bool resume = false;
  bool names = false;
  std::string shard_text;  // --shard I/N
  std::size_t shard_block = Shard{}.block;
  Shard shard;  // resolved: --shard, a Slurm array task, or none
  std::size_t chunk = DistributedOptions{}.chunk;
  bool chunk_given = false;
  bool device_given = false;
  bool stats = false;  // quality figures per image
  std::string ignore;  // --ignore white,black,grey,background
  double ignore_threshold = IgnoreOptions{}.threshold;
  std::string region;         // --region x,y,w,h
  std::string swatches;       // --swatches DIR
  std::string contact_sheet;  // --contact-sheet FILE.png
  bool combined = false;      // one palette of every counted pixel, as a last row
  std::string combined_output;
  double merge_delta_e = 0;  // palette shaping (ShapeOptions)
  double min_share = 0;
  std::string sort = "share";
};

// The pipeline's options: the clustering ones and the palette shaping.
PipelineOptions extract_pipeline_options(const ExtractOptions& o) {
  PipelineOptions options = pipeline_options(o);
  options.shape.merge_delta_e = o.merge_delta_e;
  options.shape.min_share = o.min_share;
  const auto sort = parse_palette_sort(o.sort);
  if (!sort) throw UsageError("invalid --sort");
  options.shape.sort = *sort;
  options.quality = o.stats;
  options.combined = o.combined || !o.combined_output.empty();
  if (!o.ignore.empty()) {
    const auto ignore = parse_ignore(o.ignore);
    if (!ignore) {
      throw UsageError("--ignore: '" + o.ignore +
                       "' is not a list of white, black, grey, background");
    }
    options.ignore = *ignore;
  }
  options.ignore.threshold = o.ignore_threshold;
  if (!o.contact_sheet.empty()) {
    options.thumbnail_width = SheetLayout{}.thumb_width;
    options.thumbnail_height = SheetLayout{}.thumb_height;
  }
  if (!o.region.empty()) {
    options.region = parse_region(o.region);
    if (!options.region) {
      throw UsageError("--region: '" + o.region +
                       "' is not x,y,w,h in pixels or x%,y%,w%,h% (w, h > 0)");
    }
  }
  return options;
}

// The place in the whole output (1-based) of input `index` (0-based) of this run's inputs: a
// shard's are every N-th block of them. --swatches and --contact-sheet number their pictures so.
std::size_t output_number(const Shard& shard, std::size_t index) {
  return (shard.sharded() ? global_index(shard, index) : index) + 1;
}

std::string exact(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

// Rows are written a batch at a time under this lock, so that an exit forced by a signal (see
// StopSignals) never leaves half a row behind.
std::mutex g_rows_mutex;
std::atomic<std::size_t> g_rows_written{0};  // rows in the output, a resumed run's earlier ones too
bool g_run_over = false;                     // under g_rows_mutex: the run has said its last word
std::string g_output_name;                   // for the line that says how to resume
bool g_resumable = true;                     // the format can be resumed (csv, jsonl)

const char* signal_name(int sig) { return sig == SIGTERM ? "SIGTERM" : "SIGINT"; }

// The line an interrupted run ends with.
std::string resume_hint(int sig) {
  const std::size_t rows = g_rows_written.load();
  if (g_output_name == "-") {
    return std::string("interrupted by ") + signal_name(sig) + ": " + std::to_string(rows) +
           " rows written to stdout (to resume a run later, write it to a file with -o FILE)";
  }
  if (!g_resumable) {
    return std::string("interrupted by ") + signal_name(sig) + ": " + std::to_string(rows) +
           " images' rows in " + g_output_name + " (this format cannot be resumed)";
  }
  return std::string("interrupted by ") + signal_name(sig) + ": " + std::to_string(rows) +
         " rows in " + g_output_name + "; run the same command with --resume to finish it";
}

// SIGINT and SIGTERM: blocked in every thread (constructed before any other thread starts, which
// inherit the mask) and taken by one thread of their own. The first asks the run to stop taking
// new images and to write every row already complete; the run then exits with 128 + the
// signal's number. A second signal, or a run still going kGraceSeconds later (an input blocked
// on a slow file system), ends the process at once, between two batches of rows.
// (Its state is static: the thread outlives the object, until the process ends.)
class StopSignals {
 public:
  static constexpr int kGraceSeconds = 5;

  StopSignals() {
    sigset_t set = signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread(wait).detach();
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  const std::atomic<bool>& requested() const { return requested_; }
  int signal() const { return signal_.load(); }
  int exit_code() const { return 128 + signal(); }

 private:
  static sigset_t signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
  }

  static void wait() {
    const sigset_t set = signals();
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return;
    signal_ = sig;
    requested_ = true;
    const timespec grace{kGraceSeconds, 0};
    sigtimedwait(&set, nullptr, &grace);  // a second signal, or the time is up
    std::lock_guard lock(g_rows_mutex);   // no batch of rows half-written
    if (g_run_over) return;
    spdlog::warn("{} (forced exit)", resume_hint(sig));
    std::fflush(stdout);
    _exit(128 + sig);
  }

  static inline std::atomic<bool> requested_{false};
  static inline std::atomic<int> signal_{SIGINT};
};

// --combined to a file in one process: the colours of the rows written so far, saved beside the
// output (OUTPUT.palette-checkpoint) now and then, when the run stops and when it ends, so that
// --resume can go on gathering them: "PALETTE-CHECKPOINT 1\n", the rows they cover (u64,
// little-endian), then ColorWeights::serialize()'s bytes. The output is flushed to the disk
// first, so the file always holds at least the rows a checkpoint covers.
class ColoursCheckpoint {
 public:
  static constexpr std::string_view kMagic = "PALETTE-CHECKPOINT 1\n";
  static std::string path_of(const std::string& output) { return output + ".palette-checkpoint"; }

  ColoursCheckpoint(const std::string& output, ColorWeights& colours)
      : path_(path_of(output)), colours_(colours), last_(wall_seconds()) {
    // Test hook (tests/e2e/test_cli_resume.cpp): seconds between saves (default 60).
    if (const char* every = std::getenv("PALETTE_TEST_CHECKPOINT_SECONDS")) {
      every_ = std::atof(every);
    }
  }
  bool due() const { return wall_seconds() - last_ >= every_; }
  // Saves the colours as those of the first `rows` rows of `out` (flushed and synced first).
  void save(std::size_t rows, std::FILE* out) {
    if (std::fflush(out) != 0 || ::fsync(::fileno(out)) != 0) {
      throw Error(std::string("cannot write output: ") + std::strerror(errno));
    }
    std::string bytes(kMagic);
    for (int i = 0; i < 8; ++i) bytes += static_cast<char>(std::uint64_t{rows} >> (8 * i) & 0xFF);
    bytes += colours_.serialize();
    write_file_atomically(path_, bytes, true);
    last_ = wall_seconds();
  }
  // The rows the checkpoint beside `output` covers, its colours added to `colours`; 0 (and no
  // colours) when there is none. Throws UsageError when it is damaged.
  static std::size_t load(const std::string& output, ColorWeights& colours) {
    const std::string path = path_of(output);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    FileBytes file;
    try {
      file = read_file(path, 64 + 11 * (std::uint64_t{1} << 24));
    } catch (const Error& e) {
      throw UsageError("cannot resume " + output + ": " + path + ": " + e.what());
    }
    const std::string_view bytes(reinterpret_cast<const char*>(file.data()), file.size());
    if (!bytes.starts_with(kMagic) || bytes.size() < kMagic.size() + 8) {
      throw UsageError("cannot resume " + output + ": " + path +
                       " is damaged (remove it to start the run again from its first input)");
    }
    std::uint64_t rows = 0;
    for (int i = 0; i < 8; ++i) {
      rows |= std::uint64_t{static_cast<unsigned char>(bytes[kMagic.size() + i])} << (8 * i);
    }
    try {
      colours.add_serialized(bytes.substr(kMagic.size() + 8));
    } catch (const Error& e) {
      throw UsageError("cannot resume " + output + ": " + path + ": " + e.what() +
                       " (remove it to start the run again from its first input)");
    }
    return static_cast<std::size_t>(rows);
  }

 private:
  std::string path_;
  ColorWeights& colours_;
  double every_ = 60, last_;
};

// Writes rows to a FILE*, flushed after every batch so an interrupted run keeps them.
class FileSink final : public RowSink {
 public:
  FileSink(std::FILE* out, const RowFormatter& formatter, bool header = true)
      : out_(out), formatter_(formatter) {
    if (header) put(formatter_.header());
    flush();
  }

  // --swatches, --contact-sheet: `number` gives the place in the whole output (1-based) of
  // the file's row `i` (0-based, rows already there before this run included).
  void draw_pictures(Pictures& pictures, std::function<std::size_t(std::size_t)> number) {
    pictures_ = &pictures;
    number_ = std::move(number);
  }
  void draw_pictures_off() { pictures_ = nullptr; }
  // --combined to a file: saves `checkpoint` after the rows of a batch when it is due (the
  // pipeline gathers a batch's colours just before it writes its rows, in this thread).
  void checkpoint_to(ColoursCheckpoint* checkpoint) { checkpoint_ = checkpoint; }
  // A resumed run's first rows are those already in the file from row `first` (0-based) on
  // (Output::replay): their pictures are drawn, each is checked against the row there, and none
  // is written again.
  void replay(std::vector<std::string> rows, std::size_t first) {
    replay_ = std::move(rows);
    replay_first_ = first;
  }

  // Rows already formatted (a distributed run's, in input order).
  void write_text(const std::string& text, std::size_t rows) {
    std::lock_guard lock(g_rows_mutex);
    put(text);
    flush();
    g_rows_written += rows;
  }

  void write(const std::vector<Row>& rows) override {
    std::lock_guard lock(g_rows_mutex);
    std::size_t first = 0;  // rows[first...] are new
    for (; first < rows.size() && replayed_ < replay_.size(); ++first, ++replayed_) {
      const std::size_t at = replay_first_ + replayed_;
      if (formatter_.row(rows[first]) != replay_[replayed_] + "\n") {
        throw Error("cannot resume: row " + std::to_string(at + 1) + " (" + rows[first].file +
                    ") comes out other than the one already there: the inputs changed");
      }
      if (pictures_) pictures_->add(number_(at), rows[first]);
      if (!rows[first].ok()) spdlog::warn("{}: {}", rows[first].file, rows[first].error);
    }
    // The pictures before the rows: a row in the output has its strip, and every sheet before
    // its own (what --resume relies on).
    if (pictures_) {
      for (std::size_t i = first; i < rows.size(); ++i) {
        pictures_->add(number_(g_rows_written + i - first), rows[i]);
      }
    }
    std::string text;
    for (std::size_t i = first; i < rows.size(); ++i) {
      const Row& row = rows[i];
      text += formatter_.row(row);
      if (!row.ok()) {
        spdlog::warn("{}: {}", row.file, row.error);
      } else {
        spdlog::debug("{}: {} distinct colours, {} iterations", row.file, row.palette.distinct,
                      row.palette.iterations);
      }
    }
    put(text);
    flush();
    g_rows_written += rows.size() - first;
    if (checkpoint_ && checkpoint_->due()) checkpoint_->save(g_rows_written, out_);
  }

 private:
  std::vector<std::string> replay_;
  std::size_t replay_first_ = 0, replayed_ = 0;
  Pictures* pictures_ = nullptr;
  ColoursCheckpoint* checkpoint_ = nullptr;
  std::function<std::size_t(std::size_t)> number_;

  void put(const std::string& s) {
    if (!s.empty() && std::fwrite(s.data(), 1, s.size(), out_) != s.size()) fail();
  }
  void flush() {
    if (std::fflush(out_) != 0) fail();
  }
  [[noreturn]] void fail() {
    throw Error(std::string("cannot write output: ") + std::strerror(errno));
  }

  std::FILE* out_;
  const RowFormatter& formatter_;
};

void print_timings(const PipelineStats& s, int threads) {
  const double busy = s.read.cpu + s.decode.cpu + s.prepare.cpu + s.cluster.cpu + s.write.cpu;
  std::string text = "stage                   wall s      cpu s   of busy CPU\n";
  auto line = [&](const char* name, const StageTime& t) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%-18s %11.3f %10.3f %12.1f%%\n", name, t.wall, t.cpu,
                  busy > 0 ? 100.0 * t.cpu / busy : 0.0);
    text += buf;
  };
  line("read", s.read);
  line("decode+shrink", s.decode);
  line("prepare (dedup)", s.prepare);
  line("cluster", s.cluster);
  line("write", s.write);
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "busy CPU %.3f s; process: wall %.3f s, cpu %.3f s, %d threads, %.1f images/s",
                busy, s.wall, s.cpu, threads, s.wall > 0 ? s.images / s.wall : 0.0);
  text += buf;
  if (s.device > 0) {
    std::snprintf(buf, sizeof buf, "; GPU %.3f s", s.device);
    text += buf;
  }
  text += "\n";
  Console::instance().print(text);
}

// The options that shape rows, as the run record keeps them (resume.hpp).
std::vector<RecordedOption> recorded_options(const ExtractOptions& o, OutputFormat format) {
  char tol[32];
  std::snprintf(tol, sizeof tol, "%.17g", o.tol);
  return {
      {"palette version", PALETTE_VERSION},
      {"--format", std::string(to_string(format))},
      {"-k", std::to_string(o.k)},
      {"--space", o.space},
      {"--size", std::to_string(o.size)},
      {"--seed", std::to_string(o.seed)},
      {"--max-iter", std::to_string(o.max_iter)},
      {"--tol", tol},
      {"--alpha-threshold", std::to_string(o.alpha_threshold)},
      {"--max-pixels", std::to_string(o.max_pixels)},
      {"--hidden", o.hidden ? "yes" : "no"},
      {"--names", o.names ? "yes" : "no", "no"},
      {"--merge-delta-e", exact(o.merge_delta_e), "0"},
      {"--min-share", exact(o.min_share), "0"},
      {"--sort", o.sort, "share"},
      {"--stats", o.stats ? "yes" : "no", "no"},
      {"--ignore", o.ignore.empty() ? "none" : o.ignore, "none"},
      {"--ignore-threshold", exact(o.ignore_threshold), "8"},
      {"--region", o.region.empty() ? "none" : o.region, "none"},
      {"--combined", o.combined && o.combined_output.empty() ? "yes" : "no", "no"},
      {"--shard", to_record(o.shard), "none"},
      {"the inputs", nlohmann::json(o.inputs).dump()},
  };
}

// What a run writes to and what it found there.
struct Output {
  std::FILE* out = stdout;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file{nullptr, &std::fclose};
  bool header = true;       // the header is still to be written
  std::size_t skipped = 0;  // rows a resumed run found (and the inputs it took for them)
  std::size_t skipped_failed = 0;
  // Rows after those, already there, that a resumed run makes again to draw their contact sheet
  // (their colours are in the saved ones): not written again, nor their pixels gathered.
  std::vector<std::string> replay;
};

// --contact-sheet: the rows of the sheets already drawn, up to the first one missing. (A sheet
// is drawn before any row of the next is written, so the one missing is the sheet that was
// being filled when the run stopped, or under mpirun one another rank had not finished.)
std::size_t rows_with_sheets(const ExtractOptions& o) {
  const std::size_t cells = Pictures::kCellsPerSheet;
  std::size_t rows = 0;
  std::error_code ec;
  while (std::filesystem::exists(
      Pictures::sheet_path(o.contact_sheet, (output_number(o.shard, rows) - 1) / cells), ec)) {
    rows += cells;
  }
  return rows;
}

// --resume of an existing output: checks the record and the rows against this run (taking
// their inputs from the queue), cuts a last row that was cut off, and opens it for appending.
// Rows are cut off too, to be made again:
// - `colours` (--combined): past those the checkpoint beside the output covers (written after
//   it was saved, and a finished run's combined row); the colours of the rows kept come from it;
// - --contact-sheet: past the last whole sheet, and from the first sheet missing.
// With both, the rows the saved colours cover stay, but those past the last whole sheet are made
// again for their sheet (Output::replay) without their pixels being gathered a second time.
void resume(const ExtractOptions& o, OutputFormat format, const RowFormatter& formatter,
            InputQueue& inputs, Output& w, ColorWeights* colours) {
  const std::string diff = compare_run_record(o.output, recorded_options(o, format));
  if (!diff.empty()) throw UsageError("cannot resume " + o.output + ": " + diff);
  const double t0 = wall_seconds();
  std::optional<std::size_t> covered;  // rows kept at most
  std::size_t group = 1;               // rows are kept a group at a time (a sheet's)
  std::optional<std::size_t> saved;    // --combined: the rows the saved colours cover
  std::size_t replay_from = SIZE_MAX;  // rows from here to `covered` are replayed
  if (colours) covered = saved = ColoursCheckpoint::load(o.output, *colours);
  if (!o.contact_sheet.empty()) {
    const std::size_t sheets = rows_with_sheets(o);
    if (saved) {
      const std::size_t cells = Pictures::kCellsPerSheet;
      replay_from = std::min(*saved, sheets) / cells * cells;
    } else {
      covered = sheets;
      group = Pictures::kCellsPerSheet;
    }
  }
  std::uint64_t replay_bytes = 0;
  std::size_t kept = 0;
  std::uint64_t kept_bytes = 0;
  std::size_t kept_failed = 0;
  const auto keep = [&](std::string_view row) {
    kept_bytes += row.size() + 1;
    kept_failed += formatter.is_error_row(row) ? 1 : 0;
    const auto next = inputs.next();
    if (!next) {
      throw UsageError("cannot resume " + o.output + ": it has more rows than this run has " +
                       "inputs (" + std::to_string(kept) + ")");
    }
    if (!row.starts_with(formatter.row_start(next->second.name))) {
      throw UsageError("cannot resume " + o.output + ": its row " + std::to_string(kept + 1) +
                       " is not for this run's input " + std::to_string(kept + 1) + " (" +
                       next->second.name + "): the inputs changed");
    }
    ++kept;
  };
  std::vector<std::string> pending;  // rows of a group not yet whole
  WrittenOutput written =
      read_written_output(o.output, formatter, format, [&](std::size_t i, std::string_view row) {
        if (covered && i >= *covered) return;
        if (i >= replay_from) {
          replay_bytes += row.size() + 1;
          w.replay.emplace_back(row);
          return;
        }
        if (group == 1) return keep(row);
        pending.emplace_back(row);
        if (pending.size() < group) return;
        for (const auto& r : pending) keep(r);
        pending.clear();
      });
  if (saved && written.rows < *saved) {
    throw UsageError("cannot resume " + o.output + ": its saved colours for --combined (" +
                     ColoursCheckpoint::path_of(o.output) + ") cover " + std::to_string(*saved) +
                     " rows, it holds " + std::to_string(written.rows) +
                     " (remove that file to start the run again from its first input)");
  }
  if (!w.replay.empty()) {
    spdlog::info(
        "resuming {}: rows {} to {} are made again to draw their contact sheet (not "
        "written again)",
        o.output, kept + 1, kept + w.replay.size());
  }
  if (written.rows > kept + w.replay.size()) {
    spdlog::info("resuming {}: its last {} rows are made again ({})", o.output,
                 written.rows - kept - w.replay.size(),
                 colours ? "past the saved colours" : "to draw their contact sheets whole");
    written.keep_bytes =
        (written.header ? formatter.header().size() : 0) + kept_bytes + replay_bytes;
  }
  written.rows = kept;  // the rows replayed are counted as this run makes them
  written.failed = kept_failed;
  if (::truncate(o.output.c_str(), static_cast<off_t>(written.keep_bytes)) != 0) {
    throw UsageError("cannot resume " + o.output + ": " + std::strerror(errno));
  }
  w.file.reset(std::fopen(o.output.c_str(), "ab"));
  if (!w.file) throw UsageError("cannot open output '" + o.output + "': " + std::strerror(errno));
  w.out = w.file.get();
  w.header = !written.header;
  w.skipped = written.rows;
  w.skipped_failed = written.failed;
  spdlog::info("resuming {}: {} rows already there (read in {:.2f} s)", o.output,
               written.rows + w.replay.size(), wall_seconds() - t0);
}

Output open_output(const ExtractOptions& o, OutputFormat format, const RowFormatter& formatter,
                   InputQueue& inputs, ColorWeights* colours) {
  Output w;
  if (o.output == "-") return w;
  struct stat st {};
  if (o.resume && ::stat(o.output.c_str(), &st) == 0) {
    resume(o, format, formatter, inputs, w, colours);
    return w;
  }
  // A new run (or nothing to resume yet): its record first, then the output; no checkpoint of
  // another run's colours.
  require_parent_directory(o.output);
  try {
    write_run_record(o.output, recorded_options(o, format));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  std::remove(ColoursCheckpoint::path_of(o.output).c_str());
  w.file.reset(std::fopen(o.output.c_str(), "wb"));
  if (!w.file) throw UsageError("cannot open output '" + o.output + "': " + std::strerror(errno));
  w.out = w.file.get();
  return w;
}

// --format json: the JSON Lines a run wrote to `lines` as one array, written to `output` (via a
// temporary file and a rename; "-": stdout), and `lines` (and its record) removed.
void write_json_document(const std::string& lines, const std::string& output) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(lines.c_str(), "rb"), &std::fclose);
  if (!in) throw Error("cannot read " + lines + ": " + std::strerror(errno));
  const std::string tmp = output == "-" ? "" : output + ".palette-tmp";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> owned(nullptr, &std::fclose);
  std::FILE* out = stdout;
  if (!tmp.empty()) {
    owned.reset(std::fopen(tmp.c_str(), "wb"));
    if (!owned) throw Error("cannot write " + tmp + ": " + std::strerror(errno));
    out = owned.get();
  }
  std::string text = "[";
  std::size_t n = 0;
  RowSplitter splitter(OutputFormat::kJsonl);
  std::vector<char> buf(std::size_t{1} << 20);
  const auto flush = [&] {
    if (std::fwrite(text.data(), 1, text.size(), out) != text.size()) {
      throw Error(std::string("cannot write the JSON document: ") + std::strerror(errno));
    }
    text.clear();
  };
  while (const std::size_t got = std::fread(buf.data(), 1, buf.size(), in.get())) {
    splitter.feed(std::string_view(buf.data(), got), [&](std::string_view line) {
      text += n++ ? ",\n" : "\n";
      text.append(line);
    });
    flush();
  }
  text += n ? "\n]\n" : "]\n";
  flush();
  if (std::fflush(out) != 0) throw Error(std::string("cannot write: ") + std::strerror(errno));
  if (owned) {
    if (std::fclose(owned.release()) != 0 || std::rename(tmp.c_str(), output.c_str()) != 0) {
      throw Error("cannot write " + output + ": " + std::strerror(errno));
    }
  }
  in.reset();
  std::remove(lines.c_str());
  std::remove(run_record_path(lines).c_str());
}

// --combined --shard: the shard's colours, in colours_path(part), written whole or not at all.
void write_colours_file(const std::string& part, ColorWeights& colours) {
  write_file_atomically(colours_path(part), colours.serialize());
}

// A rank of a distributed run other than 0: it takes chunks of inputs from rank 0 and sends
// back their rows (distribute.hpp); rank 0 reports.
int run_worker(const ExtractOptions& o, const StopSignals& stop, const mpi::World& world,
               OutputFormat format, Pictures& pictures) {
  PipelineOptions options = extract_pipeline_options(o);
  ColorWeights colours;  // --combined: this rank's share, for rank 0
  if (options.combined) options.combined_colours = &colours;
  init_image_io();
  StderrCapture capture;
  const std::unique_ptr<Backend> backend = make_backend(o);
  spdlog::debug("rank {} (local rank {}): the {} backend: {}", world.rank, world.local_rank,
                backend->name(), backend->device());
  const auto formatter = make_formatter(format, o.k, o.names, o.stats);
  DistributedOptions d;
  d.chunk = o.chunk;
  d.colours = options.combined_colours;
  if (pictures.active()) {
    d.on_row = [&](std::size_t index, const Row& row) {
      pictures.add(output_number(o.shard, index), row);
    };
  }
  run_worker_rank(world, *backend, options, *formatter, d, &stop.requested());
  if (stop.requested()) return stop.exit_code();
  pictures.finish();  // the last sheet of this rank's chunks
  return kExitOk;
}

// mpi::start(), where a launcher started this process. Its MPI library not loading (a node
// without the MPI palette was built with, as a bundle's module needs the node's Open MPI) is
// what a build without MPI is: a usage error, unless the process is the launcher's only one or
// was given its own --shard.
mpi::World start_mpi(const ExtractOptions& o) {
  try {
    return mpi::start();
  } catch (const std::exception& e) {
    if (mpi::launched_size() == 1 || !o.shard_text.empty()) {
      spdlog::debug("{}: it runs as one process", e.what());
      return mpi::World{};
    }
    throw UsageError(std::string(e.what()) +
                     ". Under mpirun or srun, palette loads the MPI library it was built with "
                     "from the library path (Open MPI's libmpi.so.40, of Open MPI 4.1 or 5.x, for "
                     "Debian's Open MPI and the bundle: on a cluster, load its Open MPI module, "
                     "e.g. `module load openmpi`); without it, give each process its own --shard "
                     "I/N, or use a job array");
  }
}

// Logging is set up (run() does, before MPI starts).
int run_extract(ExtractOptions& o, const StopSignals& stop, const mpi::World& world) {
  // One of several processes a launcher started, but alone in its MPI world (a build without
  // MPI, or another MPI than the launcher's): every one would do the whole run into the same
  // output. Unless each was given its own shard.
  if (const int n = mpi::launched_size(); !world.distributed() && n > 1 && o.shard_text.empty()) {
    const char* why =
        !mpi::built_in() ? "palette was built without MPI (libopenmpi-dev)"
        : !mpi::launched()
            ? "srun started it without MPI (palette's Open MPI needs srun --mpi=pmix)"
            : "MPI gave it no others (is this mpirun from another MPI than palette's?)";
    throw UsageError("this is one of " + std::to_string(n) +
                     " processes started by mpirun or srun, but " + why +
                     ": each would do the whole run into the same output. Run one process, or "
                     "give each its own --shard I/N");
  }
  // mpirun's default binding leaves each process one core, or one socket, whatever the node has
  // and however many processes share it: each takes its share of the node's CPUs instead.
  if (const auto local = mpi::default_binding()) {
    const CpuShare share = take_cpu_share(local->first, local->second);
    spdlog::debug(
        "rank {}: mpirun bound it to {} CPU(s), its default; it runs on {} CPU(s), its share of "
        "the node's {} as process {} of {} there",
        world.rank, share.before, share.now, share.node, local->first, local->second);
  }
  // Other ranks than 0 say only what goes wrong, their failed images included (rank 0 tells
  // the run's story).
  if (world.rank > 0 && !o.quiet && o.verbose == 0) spdlog::set_level(spdlog::level::warn);
#ifdef PALETTE_WITH_CUDA
  if (world.distributed() && !o.device_given && o.devices.empty() && o.backend != "cpu" &&
      cuda_device_count() > 0) {
    o.device = world.local_rank % cuda_device_count();  // one GPU per rank of a node
  }
#endif
  std::optional<OutputFormat> format;
  if (!o.format.empty()) {
    format = parse_output_format(o.format);
  } else {
    const bool jsonl = o.output.ends_with(".jsonl") || o.output.ends_with(".ndjson");
    format = jsonl                         ? OutputFormat::kJsonl
             : o.output.ends_with(".json") ? OutputFormat::kJson
                                           : OutputFormat::kCsv;
  }
  if (!format) throw UsageError("invalid --format");
  const bool one_line_per_input = *format == OutputFormat::kCsv || *format == OutputFormat::kJsonl;
  if (!one_line_per_input && o.resume) {
    throw UsageError("--resume works with --format csv and jsonl, not " +
                     std::string(to_string(*format)));
  }
  g_resumable = one_line_per_input;
  if (o.resume && o.output == "-") throw UsageError("--resume needs an output file (-o FILE)");
  // A shard of the inputs: --shard, else a Slurm array task's (--shard 0/1 runs everything).
  if (!o.shard_text.empty()) {
    const auto shard = parse_shard(o.shard_text, o.shard_block);
    if (!shard) {
      throw UsageError("--shard: '" + o.shard_text +
                       "' is not I/N with 0 <= I < N <= " + std::to_string(kMaxShards));
    }
    o.shard = *shard;
  } else if (const auto shard = slurm_array_shard(o.shard_block)) {
    o.shard = *shard;
  }
  if (o.shard.sharded()) {
    if (!one_line_per_input) {
      throw UsageError("--shard works with --format csv and jsonl, not " +
                       std::string(to_string(*format)));
    }
    if (o.output == "-") throw UsageError("--shard needs an output file (-o FILE)");
    o.output = part_path(o.output, o.shard);
  }
  if (!o.contact_sheet.empty()) {
    // A sheet is drawn by the process that made its 100 rows, in order: a shard draws the sheets
    // of its blocks, and a rank those of its chunks, so blocks and chunks must be whole sheets.
    const std::size_t cells = Pictures::kCellsPerSheet;
    if (o.shard.sharded() && o.shard.block % cells != 0) {
      throw UsageError("--contact-sheet with --shard needs a --shard-block that is a multiple of " +
                       std::to_string(cells) + " (a sheet's images), not " +
                       std::to_string(o.shard.block));
    }
    if (world.distributed()) {
      if (!o.chunk_given) o.chunk = cells;
      if (o.chunk % cells != 0) {
        throw UsageError("--contact-sheet under mpirun needs a --chunk that is a multiple of " +
                         std::to_string(cells) + " (a sheet's images), not " +
                         std::to_string(o.chunk));
      }
    }
  }
  Pictures pictures;
  if (!o.swatches.empty()) pictures.swatches_to(o.swatches);
  if (!o.contact_sheet.empty()) pictures.contact_sheet_to(o.contact_sheet);
  if (o.combined || !o.combined_output.empty()) {
    // A resumed run goes on from the colours saved beside its output, in one process.
    if (o.resume && world.distributed()) {
      throw UsageError("--combined cannot be resumed under mpirun (resume it in one process)");
    }
    if (o.shard.sharded() && !o.combined_output.empty()) {
      throw UsageError(
          "--combined-output does not go with --shard (run the shards with --combined, and give "
          "palette merge --combined-output FILE)");
    }
  }
  if (world.rank > 0) return run_worker(o, stop, world, *format, pictures);
  // Its directory now, not after the run.
  if (!o.combined_output.empty() && o.combined_output != "-") {
    require_parent_directory(o.combined_output);
  }
  // --format json: the rows go to a JSON Lines file beside the output (or in $TMPDIR for
  // stdout), made into one JSON document at the end, renamed into place: the output is whole
  // or not there.
  const std::string json_output = *format == OutputFormat::kJson ? o.output : "";
  if (*format == OutputFormat::kJson) {
    if (o.output == "-") {
      const char* tmpdir = std::getenv("TMPDIR");
      std::string path = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/palette-XXXXXX";
      const int fd = ::mkstemp(path.data());
      if (fd < 0)
        throw UsageError("cannot make a temporary file: " + std::string(std::strerror(errno)));
      ::close(fd);
      o.output = path;
    } else {
      o.output += ".palette-tmp.jsonl";
    }
  }
  PipelineOptions options = extract_pipeline_options(o);
  const int threads = options.threads;
  g_output_name = o.output;

  init_image_io();
  StderrCapture capture;  // libraries must not write to the user's terminal on their own
  const std::unique_ptr<Backend> backend = make_backend(o);

  // The enumerator owns copies of what it uses, so it can be left behind (blocked on stdin, say)
  // when the run ends early.
  auto queue = std::make_shared<InputQueue>();
  InputQueue& inputs = *queue;
  EnumerateOptions enumerate;
  enumerate.hidden = o.hidden;
  auto finished = std::make_shared<std::atomic<bool>>(false);
  struct Enumerator {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
    ~Enumerator() {
      if (finished->load()) {
        thread.join();
      } else {
        thread.detach();  // still blocked reading paths; it owns everything it touches
      }
    }
  };
  if (o.shard.sharded()) queue->set_shard(o.shard.index, o.shard.count, o.shard.block);
  Enumerator enumerator{std::thread([queue, finished, args = o.inputs, enumerate] {
                          enumerate_inputs(args, enumerate, *queue, std::cin);
                          finished->store(true);
                        }),
                        finished};
  // Woken by the first input (a signal sets the flag without waking anyone: hence the timeout).
  while (!inputs.wait_ready(std::chrono::milliseconds(10)) && !stop.requested()) {
  }
  if (stop.requested()) {
    spdlog::warn("{}", resume_hint(stop.signal()));
    return stop.exit_code();
  }
  if (inputs.closed() && inputs.offered() == 0) {
    throw UsageError("no input images found");
  }
  if (o.shard.sharded()) {
    spdlog::info("shard {} of {} (blocks of {} inputs): writing {}", o.shard.index, o.shard.count,
                 o.shard.block, o.output);
  }

  // --combined: the colours of every counted pixel, gathered here rather than inside the
  // pipeline when this process must keep them: in checkpoints beside a resumable output, or in
  // a shard's colours file. (Under mpirun, rank 0 gathers every rank's.)
  ColorWeights colours;
  const bool own_colours = options.combined && (world.distributed() || o.shard.sharded() ||
                                                (o.output != "-" && g_resumable));
  const bool checkpointed = own_colours && !world.distributed() && o.output != "-" && g_resumable;
  if (own_colours) options.combined_colours = &colours;
  const auto formatter = make_formatter(*format, o.k, o.names, o.stats);
  Output output = open_output(o, *format, *formatter, inputs, checkpointed ? &colours : nullptr);
  g_rows_written = output.skipped + output.replay.size();
  options.combined_skip = output.replay.size();
  FileSink sink(output.out, *formatter, output.header);
  sink.replay(std::move(output.replay), output.skipped);
  std::optional<ColoursCheckpoint> checkpoint;
  if (checkpointed) {
    checkpoint.emplace(o.output, colours);
    sink.checkpoint_to(&*checkpoint);
  }
  if (pictures.active() && !world.distributed()) {
    const Shard shard = o.shard;
    sink.draw_pictures(pictures, [shard](std::size_t row) { return output_number(shard, row); });
  }

  if (o.backend == "auto") {
    spdlog::info("using the {} backend: {}", backend->name(), backend->device());
  } else {
    spdlog::debug("using the {} backend: {}", backend->name(), backend->device());
  }
  PipelineProgress progress;
  progress.done = output.skipped;
  progress.failed = output.skipped_failed;
  std::optional<ProgressBar> bar;
  const bool stdout_is_terminal = o.output == "-" && ::isatty(1) == 1;
  if (!world.distributed() &&
      (o.progress == "always" ||
       (o.progress == "auto" && Console::instance().is_terminal() && !stdout_is_terminal))) {
    bar.emplace(progress, inputs);
  }
  PipelineStats stats;
  // The colours gathered here, once every row is written: a shard's go to a file beside its part,
  // for `palette merge` to add up and cluster (the part has no combined row); else they make the
  // combined palette.
  const auto use_colours = [&] {
    if (stop.requested()) return;
    if (o.shard.sharded()) {
      write_colours_file(o.output, colours);
      return;
    }
    const double combine0 = wall_seconds();
    stats.combined = combined_palette(colours, options, *backend);
    stats.cluster.wall += wall_seconds() - combine0;
  };
  if (world.distributed()) {
    DistributedOptions d;
    d.chunk = o.chunk;
    d.aligned = !o.contact_sheet.empty();
    d.colours = options.combined_colours;
    if (pictures.active()) {
      d.on_row = [&](std::size_t index, const Row& row) {
        pictures.add(output_number(o.shard, index), row);
      };
    }
    d.window = std::max<std::size_t>(d.window, 8 * static_cast<std::size_t>(world.size) * o.chunk);
    spdlog::info("{} MPI ranks, chunks of {} inputs, at most {} rows held for order", world.size,
                 d.chunk, d.window);
    const double t0 = wall_seconds();
    const DistributedStats all = run_root_rank(
        world, inputs, output.skipped, *backend, options, *formatter, d,
        [&](const std::string& text, std::size_t rows) { sink.write_text(text, rows); },
        &stop.requested());
    stats = all.local;
    for (const RankReport& r : all.ranks) {
      spdlog::debug("rank {} on {}: {} images, {} failed, {:.2f} s, {:.1f} images/s ({})", r.rank,
                    r.host, r.images, r.failed, r.seconds,
                    r.seconds > 0 ? static_cast<double>(r.images) / r.seconds : 0.0, r.backend);
    }
    if (options.combined && !stop.requested() && o.output != "-" && g_resumable) {
      // Every rank's colours are here now: what a --resume in one process needs to have
      // nothing to do again.
      std::lock_guard lock(g_rows_mutex);
      ColoursCheckpoint(o.output, colours).save(g_rows_written, output.out);
    }
    if (options.combined) use_colours();
    stats.wall = wall_seconds() - t0;  // to the last row of every rank written
    stats.images = all.images;
    stats.failed = all.failed;
    stats.ok = all.images - all.failed;
  } else if (own_colours) {
    stats = run_pipeline(inputs, *backend, options, sink, &progress, &stop.requested());
    if (checkpoint) {
      // The colours of every row written, stopped or not (a finished run's too, so that a
      // --resume of it has nothing to do again).
      std::lock_guard lock(g_rows_mutex);
      checkpoint->save(g_rows_written, output.out);
      sink.checkpoint_to(nullptr);
    }
    use_colours();
  } else {
    stats = run_pipeline(inputs, *backend, options, sink, &progress, &stop.requested());
  }
  if (stats.combined && !stop.requested()) {
    Row combined;
    combined.file = "*combined*";
    combined.palette = *stats.combined;
    pictures.add_combined(combined);
    sink.draw_pictures_off();  // not a cell of a sheet
    if (o.combined_output.empty()) {
      sink.write({combined});  // the last row
    } else {
      write_output(o.combined_output, formatter->header() + formatter->row(combined));
    }
  }
  bar.reset();
  if (!stop.requested()) pictures.finish();
  output.file.reset();
  {
    std::lock_guard lock(g_rows_mutex);
    g_run_over = true;
  }

  if (stop.requested()) {
    spdlog::warn("{}", resume_hint(stop.signal()));
    if (o.timings) print_timings(stats, threads);
    return stop.exit_code();
  }
  if (o.output != "-") {
    // What `palette merge` checks a part by (and what tells a finished output from a cut one).
    try {
      complete_run_record(o.output, g_rows_written.load(), inputs.offered());
    } catch (const Error& e) {
      spdlog::warn("{}", e.what());
    }
  }
  if (*format == OutputFormat::kJson) write_json_document(o.output, json_output);
  const std::size_t failed = stats.failed + output.skipped_failed;
  if (output.skipped > 0) {
    spdlog::info(
        "{} images ({} in this run): {} ok, {} failed, {:.2f} s, {:.1f} images/s ({} on "
        "{})",
        stats.images + output.skipped, stats.images, stats.images + output.skipped - failed, failed,
        stats.wall, stats.wall > 0 ? stats.images / stats.wall : 0, backend->name(),
        backend->device());
  } else {
    spdlog::info("{} images: {} ok, {} failed, {:.2f} s, {:.1f} images/s ({} on {})", stats.images,
                 stats.ok, stats.failed, stats.wall, stats.wall > 0 ? stats.images / stats.wall : 0,
                 backend->name(), backend->device());
  }
  if (o.timings) print_timings(stats, threads);
  return failed ? kExitSomeFailed : kExitOk;
}

int run(ExtractOptions& o) {
  const StopSignals stop;  // first: every thread started from here on leaves the signals to it
  setup_logging(o.quiet ? -1 : o.verbose);  // before MPI starts, which may fail with a message
  const mpi::World world = start_mpi(o);
  int code = kExitOk;
  try {
    code = run_extract(o, stop, world);
  } catch (const std::exception& e) {
    if (world.distributed()) {
      // One rank cannot go on alone: the job ends, with this rank's reason.
      Console::instance().print("palette extract: rank " + std::to_string(world.rank) + ": " +
                                e.what() + "\n");
      mpi::abort(dynamic_cast<const UsageError*>(&e) ? kExitUsage : kExitFailed);
    }
    mpi::finish();
    throw;
  }
  mpi::finish();
  return code;
}

}  // namespace

CombinedRow combined_row_of_run(const std::vector<std::pair<std::string, std::string>>& record,
                                ColorWeights& colours) {
  const auto value = [&](const std::string& name) -> std::string {
    for (const auto& [n, v] : record) {
      if (n == name) return v;
    }
    throw UsageError("its run record has no " + name);
  };
  // In the range extract's option takes.
  const auto number = [&](const std::string& name, double lo, double hi) {
    const std::string text = value(name);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(v >= lo && v <= hi)) {
      throw UsageError("its run record's " + name + " is not a number from " + exact(lo) + " to " +
                       exact(hi) + ": " + text);
    }
    return v;
  };
  const auto whole = [&]<class T>(const std::string& name, T& out) {
    const std::string text = value(name);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      throw UsageError("its run record's " + name + " is not a whole number: " + text);
    }
  };
  ExtractOptions o;
  whole("-k", o.k);
  o.space = value("--space");
  whole("--seed", o.seed);
  whole("--max-iter", o.max_iter);
  o.tol = number("--tol", 0, 1e6);
  o.merge_delta_e = number("--merge-delta-e", 0, kMaxMergeDeltaE);
  o.min_share = number("--min-share", 0, 1);
  o.sort = value("--sort");
  o.stats = value("--stats") == "yes";
  o.names = value("--names") == "yes";
  o.combined = true;
  const auto format = parse_output_format(value("--format"));
  if (!format) throw UsageError("its run record's --format is unknown: " + value("--format"));
  PipelineOptions options = extract_pipeline_options(o);
  const auto backend = make_cpu_backend(options.threads);  // every backend gives the same
  const auto formatter = make_formatter(*format, o.k, o.names, o.stats);
  CombinedRow out;
  out.header = formatter->header();
  const std::optional<Palette> palette = combined_palette(colours, options, *backend);
  if (!palette) return out;
  out.row.emplace();
  out.row->file = "*combined*";
  out.row->palette = *palette;
  out.text = formatter->row(*out.row);
  return out;
}

std::function<int()> add_extract(CLI::App& app) {
  auto o = std::make_shared<ExtractOptions>();
  CLI::App* cmd = app.add_subcommand(
      "extract", "Extract the k dominant colours of every input image, one row per image.");
  cmd->add_option("inputs", o->inputs,
                  "Image files, directories (recursive), @list.txt (one path per line), or - "
                  "(paths on stdin)")
      ->required();
  add_cluster_options(cmd, *o);
  cmd->add_option("-o,--output", o->output, "Output file, - for stdout")->capture_default_str();
  cmd->add_option("--format", o->format,
                  "Output format: csv, jsonl, csv-long (a row per colour), json (one document) "
                  "(default: jsonl for *.jsonl/*.ndjson, json for *.json, else csv)")
      ->check(CLI::IsMember({"csv", "jsonl", "csv-long", "json"}));
  cmd->add_option("--progress", o->progress, "Progress bar on stderr (auto: when a terminal)")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->add_option("--ignore", o->ignore,
                  "Colours not counted: white, black, grey (any list of them), background (the "
                  "colour of the image's border, when one dominates it)");
  cmd->add_option("--ignore-threshold", o->ignore_threshold,
                  "--ignore's limit in CIELAB: white L* > 100-T and chroma < T, black L* < T, "
                  "grey chroma < T, background within ΔE*ab T")
      ->check(CLI::Range(0.0, kMaxIgnoreThreshold))
      ->capture_default_str();
  cmd->add_option("--region", o->region,
                  "Cluster only this rectangle: x,y,w,h in pixels of the image, or x%,y%,w%,h%");
  cmd->add_option(
      "--swatches", o->swatches,
      "Write a PNG swatch strip (400x48, a band per colour as wide as its share) per "
      "image into this directory, named NNNNNN-STEM.png by input position (combined.png: "
      "--combined's)");
  cmd->add_option("--contact-sheet", o->contact_sheet,
                  "Draw every image's thumbnail with its swatch strip and row number on PNG "
                  "sheets of 100 (FILE.png, then FILE-2.png, ...)");
  cmd->add_flag("--combined", o->combined,
                "Also one palette for the whole run (every image's counted pixels together), "
                "as a last row named *combined*");
  cmd->add_option("--combined-output", o->combined_output,
                  "Write the whole run's palette to this file (header and one row) instead");
  cmd->add_flag("--stats", o->stats,
                "Quality figures per image, in columns after error (and names): mean_delta_e "
                "(mean CIELAB distance of the counted pixels to their nearest palette colour), "
                "distinct_colors, iterations, converged, excluded (fraction of pixels not "
                "counted); JSON: a stats object");
  cmd->add_option("--merge-delta-e", o->merge_delta_e,
                  "Merge palette colours closer than this CIEDE2000 difference (shares added, "
                  "the colour their share-weighted mean in CIELAB); 0: never")
      ->check(CLI::Range(0.0, kMaxMergeDeltaE))
      ->capture_default_str();
  cmd->add_option("--min-share", o->min_share,
                  "Drop palette colours with a smaller share (0..1) and renormalise the rest "
                  "(the largest always stays)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--sort", o->sort,
                  "Order of each palette: share (largest first), lightness (darkest first) or "
                  "hue (round the CIELCh hue circle from red; neutral colours last)")
      ->check(CLI::IsMember({"share", "lightness", "hue"}))
      ->capture_default_str();
  cmd->add_flag("--names", o->names,
                "Also name each colour: its nearest CSS named colour (CIEDE2000), in columns "
                "name_1..name_K after error (JSON: a names array)");
  cmd->add_option("--shard", o->shard_text,
                  "Process shard I of N (0-based): every N-th block of the inputs, into the part "
                  "file OUT.part-I-of-N.EXT; palette merge joins the parts (default: a Slurm "
                  "array task's, from SLURM_ARRAY_TASK_ID/_COUNT; 0/1: everything)");
  cmd->add_option("--chunk", o->chunk,
                  "Under mpirun: inputs rank 0 hands a rank at a time (a slow rank asks less "
                  "often; with --contact-sheet: 100 unless given, a multiple of 100)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--shard-block", o->shard_block, "Inputs per block of a shard")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd->add_flag("--hidden", o->hidden, "Include names starting with '.' in directories");
  cmd->add_flag("--resume", o->resume,
                "Finish an interrupted run: keep the rows already in the output (-o FILE), "
                "checked against this run's inputs and options, and append the rest");
  cmd->add_flag("--timings", o->timings, "Print per-stage wall and CPU times at the end");
  cmd->add_flag("-v,--verbose", o->verbose, "More log output (debug)");
  cmd->add_flag("-q,--quiet", o->quiet, "Errors only");
  return [o, cmd] {
    o->device_given = cmd->count("--device") > 0;
    o->chunk_given = cmd->count("--chunk") > 0;
    return run(*o);
  };
}

}  // namespace palette::cli
