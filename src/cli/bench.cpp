// palette bench [DIR]: the same images through decoding alone and through every backend this
// build and machine offer, one table. What people run to benchmark their workstation.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "options.hpp"
#include "palette/backend.hpp"
#include "palette/error.hpp"
#include "palette/image_io.hpp"
#include "palette/inputs.hpp"
#include "palette/pipeline.hpp"
#include "palette/thread_pool.hpp"
#ifdef PALETTE_WITH_CUDA
#include "palette/cuda_backend.hpp"
#endif

namespace palette::cli {
namespace {

// -k, --size, --seed, --max-iter, --tol, --space, --threads, --device, --batch and --devices are
// extract's (kBenchClusterOptions); the rest keep ClusterOptions' defaults, which are extract's.
struct BenchOptions : ClusterOptions {
  std::string dir;
  std::size_t images = 1000;
  int width = 1920, height = 1280;
};

constexpr unsigned kBenchClusterOptions = cluster_option::kColors | cluster_option::kSize |
                                          cluster_option::kSeed | cluster_option::kMaxIter |
                                          cluster_option::kTol | cluster_option::kSpace |
                                          cluster_option::kThreads | cluster_option::kDevice |
                                          cluster_option::kBatch | cluster_option::kDevices;

// Keeps a fingerprint of every row, to tell whether two runs agree.
class DigestSink final : public RowSink {
 public:
  void write(const std::vector<Row>& rows) override {
    for (const auto& r : rows) {
      std::uint64_t h = 1469598103934665603ULL;
      auto mix = [&](std::uint64_t v) { h = (h ^ v) * 1099511628211ULL; };
      for (auto c : r.palette.colors) mix(c);
      for (auto s : r.palette.shares_e4) mix(s);
      mix(r.ok());
      digest_ = digest_ * 31 + h;
      ++rows_;
    }
  }
  std::uint64_t digest() const { return digest_; }
  std::size_t rows() const { return rows_; }

 private:
  std::uint64_t digest_ = 0;
  std::size_t rows_ = 0;
};

struct RunResult {
  std::string name;
  PipelineStats stats;
  std::uint64_t digest = 0;
  std::string device;
};

RunResult run_once(const std::string& name, const std::vector<InputItem>& items, Backend& backend,
                   PipelineOptions options) {
  InputQueue queue;
  for (const auto& it : items) queue.push(it);
  queue.close();
  DigestSink sink;
  RunResult r;
  r.name = name;
  r.stats = run_pipeline(queue, backend, options, sink);
  r.digest = sink.digest();
  r.device = backend.device();
  return r;
}

int run(const BenchOptions& o) {
  setup_logging(0);
  init_image_io();
  const PipelineOptions options = pipeline_options(o);
  const int threads = options.threads;
  // --devices, checked before any work (a list this machine cannot run is a usage error, as for
  // extract): every listed device at once, after the first one alone.
  std::unique_ptr<Backend> multi;
  if (!o.devices.empty()) multi = make_backend(o);

  // Inputs, all in memory, so that the disk stays out of the numbers.
  std::vector<InputItem> items;
  std::string what;
  if (!o.dir.empty()) {
    InputQueue q;
    std::istringstream none;
    enumerate_inputs({o.dir}, EnumerateOptions{}, q, none);
    while (auto next = q.next()) {
      if (items.size() >= o.images) break;
      InputItem it = std::move(next->second);
      if (it.error.empty()) {
        try {
          const FileBytes bytes = read_file(it.path);
          it.data = std::make_shared<const std::vector<std::uint8_t>>(bytes.begin(), bytes.end());
        } catch (const Error& e) {
          it.error = e.what();
        }
      }
      items.push_back(std::move(it));
    }
    if (items.empty()) throw UsageError("no images in " + o.dir);
    what = std::to_string(items.size()) + " images from " + o.dir;
  } else {
    items.resize(o.images);
    ThreadPool pool(threads);
    pool.parallel_for(o.images, [&](std::size_t i, int) {
      items[i].name = "synthetic-" + std::to_string(i) + ".jpg";
      items[i].data = std::make_shared<const std::vector<std::uint8_t>>(
          synthetic_jpeg(o.width, o.height, static_cast<unsigned>(i)));
    });
    what = std::to_string(o.images) + " generated " + std::to_string(o.width) + "x" +
           std::to_string(o.height) + " JPEGs";
  }

  std::vector<RunResult> results;
  auto cpu = make_cpu_backend(threads);
  {
    PipelineOptions decode_only = options;
    decode_only.skip_cluster = true;
    results.push_back(run_once("decode only", items, *cpu, decode_only));
  }
  results.push_back(run_once("cpu", items, *cpu, options));
#ifdef PALETTE_WITH_CUDA
  std::unique_ptr<Backend> gpu;
  try {
    // With --devices, alone on its first device first.
    const int single =
        o.devices.empty() || o.devices == "all" ? o.device : std::atoi(o.devices.c_str());
    gpu = make_cuda_backend(single);
  } catch (const Error& e) {
    spdlog::info("no cuda run: {}", e.what());
  }
  if (gpu) results.push_back(run_once("cuda", items, *gpu, options));
  // --devices: the same on every listed device at once (its first one above, alone).
  if (gpu && multi && multi->max_in_flight() > gpu->max_in_flight()) {
    results.push_back(run_once("cuda, all", items, *multi, options));
  }
#endif

  const double decode_rate =
      results[0].stats.wall > 0 ? results[0].stats.images / results[0].stats.wall : 0;
  std::string text;
  char line[512];
  std::snprintf(line, sizeof line, "palette bench: %s, --size %d, k=%d, --space %s, %d threads",
                what.c_str(), o.size, options.kmeans.k, o.space.c_str(), threads);
  text += line;
  // The k-means options, where not extract's defaults (as the pipeline has them).
  const KMeansParams defaults{};
  if (options.kmeans.seed != defaults.seed)
    text += ", --seed " + std::to_string(options.kmeans.seed);
  if (options.kmeans.max_iter != defaults.max_iter) {
    text += ", --max-iter " + std::to_string(options.kmeans.max_iter);
  }
  if (options.kmeans.tol != defaults.tol) {
    std::snprintf(line, sizeof line, ", --tol %g", options.kmeans.tol);
    text += line;
  }
  text += "\n";
  text += "CPU: " + cpu_model() + "\n";
#ifdef PALETTE_WITH_CUDA
  if (gpu) text += "GPU: " + gpu->device() + "\n";
#endif
  text +=
      "run            images/s    wall s  decode cpu s  prepare cpu s  cluster cpu s   GPU s  "
      "GPU ms/batch  of decode-only\n";
  for (const auto& r : results) {
    const auto& s = r.stats;
    const double rate = s.wall > 0 ? s.images / s.wall : 0;
    std::snprintf(line, sizeof line,
                  "%-12s %10.1f %9.3f %13.3f %14.3f %14.3f %7.3f %13.2f %14.1f%%\n", r.name.c_str(),
                  rate, s.wall, s.decode.cpu, s.prepare.cpu, s.cluster.cpu, s.device,
                  s.batches ? 1000.0 * s.device / s.batches : 0.0,
                  decode_rate > 0 ? 100.0 * rate / decode_rate : 0.0);
    text += line;
  }
  bool same = true;
  for (std::size_t r = 2; r < results.size(); ++r)
    same = same && results[r].digest == results[1].digest;
  if (results.size() >= 3) {
    text += std::string("cuda rows identical to cpu rows: ") + (same ? "yes" : "NO") + "\n";
  }
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
  if (!same) return kExitSomeFailed;
  return kExitOk;
}

}  // namespace

std::function<int()> add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Benchmark this machine: decoding alone and every backend, on the same images");
  cmd->add_option("dir", o->dir, "Images to use (default: generated JPEGs)");
  cmd->add_option("--images", o->images, "How many images (at most, with DIR)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}))
      ->capture_default_str();
  cmd->add_option("--width", o->width, "Generated image width")
      ->check(CLI::Range(16, 16384))
      ->capture_default_str();
  cmd->add_option("--height", o->height, "Generated image height")
      ->check(CLI::Range(16, 16384))
      ->capture_default_str();
  add_cluster_options(cmd, *o, kBenchClusterOptions);
  return [o] { return run(*o); };
}

}  // namespace palette::cli
