#pragma once
// Options shared by the commands that cluster images (extract, serve, bench): each is defined
// once, here (name, default, help text and validation).

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
  std::string devices;  ///< --devices all|0,2,...: empty for one device (--device)
  std::size_t batch = 0;
};

/// The options add_cluster_options() registers, one bit each, for a command that takes only some
/// of them (the others keep their defaults).
namespace cluster_option {
inline constexpr unsigned kColors = 1u << 0;          ///< -k, --colors
inline constexpr unsigned kSize = 1u << 1;            ///< --size
inline constexpr unsigned kSeed = 1u << 2;            ///< --seed
inline constexpr unsigned kMaxIter = 1u << 3;         ///< --max-iter
inline constexpr unsigned kTol = 1u << 4;             ///< --tol
inline constexpr unsigned kSpace = 1u << 5;           ///< --space
inline constexpr unsigned kAlphaThreshold = 1u << 6;  ///< --alpha-threshold
inline constexpr unsigned kMaxPixels = 1u << 7;       ///< --max-pixels
inline constexpr unsigned kThreads = 1u << 8;         ///< --threads
inline constexpr unsigned kBackend = 1u << 9;         ///< --backend
inline constexpr unsigned kDevice = 1u << 10;         ///< --device
inline constexpr unsigned kBatch = 1u << 11;          ///< --batch
inline constexpr unsigned kDevices = 1u << 12;        ///< --devices
inline constexpr unsigned kAll = (1u << 13) - 1;
}  // namespace cluster_option

/// Registers the options `which` names (by default all: -k, --size, --seed, --max-iter, --tol,
/// --space, --alpha-threshold, --max-pixels, --threads, --backend, --device, --batch and
/// --devices, in this order) on `cmd`.
void add_cluster_options(CLI::App* cmd, ClusterOptions& o, unsigned which = cluster_option::kAll);

/// Threads to use: --threads, or every CPU.
int thread_count(const ClusterOptions& o);

/// The pipeline options they describe. Throws UsageError for values out of range.
PipelineOptions pipeline_options(const ClusterOptions& o);

/// The backend they ask for. Throws UsageError when it is not available.
std::unique_ptr<Backend> make_backend(const ClusterOptions& o);

}  // namespace palette::cli
