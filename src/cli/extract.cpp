// palette extract INPUT... : palettes of many images to CSV / JSON Lines.

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "commands.hpp"
#include "console.hpp"
#include "options.hpp"
#include "palette/backend.hpp"
#include "palette/error.hpp"
#include "palette/image_io.hpp"
#include "palette/inputs.hpp"
#include "palette/pipeline.hpp"
#include "palette/thread_pool.hpp"
#include "palette/writer.hpp"
#include "progress.hpp"

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
};

std::atomic<bool> g_interrupted{false};

extern "C" void on_signal(int) {
  if (g_interrupted.exchange(true)) _exit(kExitInterrupted);  // second Ctrl-C: stop now
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Writes rows to a FILE*, flushed after every batch so an interrupted run keeps them.
class FileSink final : public RowSink {
 public:
  FileSink(std::FILE* out, const RowFormatter& formatter) : out_(out), formatter_(formatter) {
    put(formatter_.header());
    flush();
  }

  void write(const std::vector<Row>& rows) override {
    std::string text;
    for (const auto& row : rows) {
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
  }

 private:
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

int run(ExtractOptions& o) {
  setup_logging(o.quiet ? -1 : o.verbose);
  std::optional<OutputFormat> format;
  if (!o.format.empty()) {
    format = parse_output_format(o.format);
  } else {
    const bool jsonl = o.output.ends_with(".jsonl") || o.output.ends_with(".ndjson");
    format = jsonl ? OutputFormat::kJsonl : OutputFormat::kCsv;
  }
  if (!format) throw UsageError("invalid --format");
  const PipelineOptions options = pipeline_options(o);
  const int threads = options.threads;

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
  } enumerator{std::thread([queue, finished, args = o.inputs, enumerate] {
                 enumerate_inputs(args, enumerate, *queue, std::cin);
                 finished->store(true);
               }),
               finished};
  while (!inputs.ready()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (inputs.closed() && inputs.pushed() == 0) {
    throw UsageError("no input images found");
  }

  std::FILE* out = stdout;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(nullptr, &std::fclose);
  if (o.output != "-") {
    file.reset(std::fopen(o.output.c_str(), "wb"));
    if (!file) throw UsageError("cannot open output '" + o.output + "': " + std::strerror(errno));
    out = file.get();
  }
  const auto formatter = make_formatter(*format, o.k);
  FileSink sink(out, *formatter);

  if (o.backend == "auto") {
    spdlog::info("using the {} backend: {}", backend->name(), backend->device());
  } else {
    spdlog::debug("using the {} backend: {}", backend->name(), backend->device());
  }
  install_signal_handlers();
  PipelineProgress progress;
  std::optional<ProgressBar> bar;
  const bool stdout_is_terminal = o.output == "-" && ::isatty(1) == 1;
  if (o.progress == "always" ||
      (o.progress == "auto" && Console::instance().is_terminal() && !stdout_is_terminal)) {
    bar.emplace(progress, inputs);
  }
  const PipelineStats stats =
      run_pipeline(inputs, *backend, options, sink, &progress, &g_interrupted);
  bar.reset();
  file.reset();

  if (g_interrupted) {
    spdlog::warn("interrupted: {} rows written", stats.images);
    if (o.timings) print_timings(stats, threads);
    return kExitInterrupted;
  }
  spdlog::info("{} images: {} ok, {} failed, {:.2f} s, {:.1f} images/s ({} on {})", stats.images,
               stats.ok, stats.failed, stats.wall, stats.wall > 0 ? stats.images / stats.wall : 0,
               backend->name(), backend->device());
  if (o.timings) print_timings(stats, threads);
  return stats.failed ? kExitSomeFailed : kExitOk;
}

}  // namespace

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
                  "Output format (default: jsonl for *.jsonl/*.ndjson outputs, else csv)")
      ->check(CLI::IsMember({"csv", "jsonl"}));
  cmd->add_option("--progress", o->progress, "Progress bar on stderr (auto: when a terminal)")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->add_flag("--hidden", o->hidden, "Include names starting with '.' in directories");
  cmd->add_flag("--timings", o->timings, "Print per-stage wall and CPU times at the end");
  cmd->add_flag("-v,--verbose", o->verbose, "More log output (debug)");
  cmd->add_flag("-q,--quiet", o->quiet, "Errors only");
  return [o] { return run(*o); };
}

}  // namespace palette::cli
