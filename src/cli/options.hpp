#pragma once
// Options shared by the commands that cluster images (extract, serve).

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "palette/backend.hpp"
#include "palette/pipeline.hpp"

namespace palette::cli {

struct ClusterOptions {
  int k = 5;
  int size = 256;
  std::uint64_t seed = 0;
  int max_iter = KMeansParams{}.max_iter;
  double tol = KMeansParams{}.tol;
  std::string space = "lab";
  int alpha_threshold = 128;
  std::uint64_t max_pixels = DecodeOptions{}.max_pixels;
  int threads = 0;
  std::string backend = "auto";
  int device = 0;
  std::size_t batch = 0;
};

/// Registers -k, --size, --seed, --max-iter, --tol, --space, --alpha-threshold, --max-pixels,
/// --threads, --backend, --device and --batch on `cmd`.
void add_cluster_options(CLI::App* cmd, ClusterOptions& o);

/// Threads to use: --threads, or every CPU.
int thread_count(const ClusterOptions& o);

/// The pipeline options they describe. Throws UsageError for values out of range.
PipelineOptions pipeline_options(const ClusterOptions& o);

/// The backend they ask for. Throws UsageError when it is not available.
std::unique_ptr<Backend> make_backend(const ClusterOptions& o);

}  // namespace palette::cli
