#include "options.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "commands.hpp"
#include "palette/error.hpp"
#include "palette/thread_pool.hpp"
#ifdef PALETTE_WITH_CUDA
#include "palette/cuda_backend.hpp"
#endif

namespace palette::cli {

void add_cluster_options(CLI::App* cmd, ClusterOptions& o, unsigned which) {
  using namespace cluster_option;
  if (which & kColors) {
    cmd->add_option("-k,--colors", o.k, "Colours per image")
        ->check(CLI::Range(1, kMaxColors))
        ->capture_default_str();
  }
  if (which & kSize) {
    cmd->add_option("--size", o.size, "Long side in pixels after shrinking")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
  }
  if (which & kSeed) {
    // CLI11 converts with strtoull, which takes "-1" and wraps it, and saturates values past
    // 2^64 - 1: the text is checked first, digits only and in range.
    const CLI::Validator whole_u64(
        [](std::string& text) -> std::string {
          std::uint64_t v = 0;
          const char* end = text.data() + text.size();
          const auto [p, ec] = std::from_chars(text.data(), end, v);
          if (text.empty() || ec != std::errc() || p != end) {
            return "must be a whole number from 0 to 18446744073709551615, not '" + text + "'";
          }
          return {};
        },
        "0..2^64-1");
    cmd->add_option("--seed", o.seed, "Random seed (same seed, same output)")
        ->check(whole_u64)
        ->capture_default_str();
  }
  if (which & kMaxIter) {
    cmd->add_option("--max-iter", o.max_iter, "Lloyd iterations at most")
        ->check(CLI::Range(1, 10000))
        ->capture_default_str();
  }
  if (which & kTol) {
    cmd->add_option("--tol", o.tol,
                    "Stop when no centroid moves more than this, in 1/255 of the colour range")
        ->check(CLI::Range(0.0, 1e6))
        ->capture_default_str();
  }
  if (which & kSpace) {
    cmd->add_option("--space", o.space, "Colour space to cluster in")
        ->check(CLI::IsMember({"lab", "oklab", "rgb"}))
        ->capture_default_str();
  }
  if (which & kAlphaThreshold) {
    cmd->add_option("--alpha-threshold", o.alpha_threshold,
                    "Pixels with alpha below this are not counted (0 counts all)")
        ->check(CLI::Range(0, 255))
        ->capture_default_str();
  }
  if (which & kMaxPixels) {
    cmd->add_option("--max-pixels", o.max_pixels,
                    "Refuse images with more pixels than this, before decoding")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40))
        ->capture_default_str();
  }
  if (which & kThreads) {
    cmd->add_option("--threads", o.threads, "Worker threads (default: all CPUs)")
        ->check(CLI::Range(1, 4096));
  }
  if (which & kBackend) {
    cmd->add_option("--backend", o.backend, "Compute backend (auto: CUDA when a GPU is usable)")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
        ->capture_default_str();
  }
  if (which & kDevice) {
    cmd->add_option("--device", o.device, "CUDA device index")->check(CLI::Range(0, 1024));
  }
  if (which & kBatch) {
    cmd->add_option("--batch", o.batch, "Images per batch (default: what the backend prefers)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
  }
  if (which & kDevices) {
    cmd->add_option("--devices", o.devices,
                    "CUDA devices to spread batches over: all, or a list such as 0,2 (rows the "
                    "same as on one device)")
        ->excludes(cmd->get_option_no_throw("--device"));
  }
}

int thread_count(const ClusterOptions& o) { return o.threads > 0 ? o.threads : available_cpus(); }

PipelineOptions pipeline_options(const ClusterOptions& o) {
  const auto space = parse_color_space(o.space);
  if (!space) throw UsageError("invalid --space");
  PipelineOptions options;
  options.decode.size = o.size;
  options.decode.alpha_threshold = o.alpha_threshold;
  options.decode.max_pixels = o.max_pixels;
  options.space = *space;
  options.kmeans = KMeansParams{o.k, o.seed, o.max_iter, o.tol};
  options.threads = thread_count(o);
  options.batch_images = o.batch;
  try {
    validate(options.kmeans);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  return options;
}

namespace {

// --devices: "all" (every usable device) or distinct numbers "0,2,...".
std::vector<int> device_list(const std::string& text) {
#ifdef PALETTE_WITH_CUDA
  std::vector<int> usable;
  for (const auto& d : cuda_devices()) {
    if (d.usable) usable.push_back(d.index);
  }
  if (text == "all") {
    if (usable.empty()) throw UsageError("--devices all: no usable CUDA device here");
    return usable;
  }
  std::vector<int> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    const std::string item = text.substr(at, comma - at);
    int v = -1;
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v < 0) {
      throw UsageError("--devices: '" + text + "' is not all or a list of device numbers");
    }
    if (std::find(usable.begin(), usable.end(), v) == usable.end()) {
      throw UsageError("--devices: no usable CUDA device " + std::to_string(v) + " here");
    }
    if (std::find(out.begin(), out.end(), v) != out.end()) {
      throw UsageError("--devices: device " + std::to_string(v) + " is listed twice");
    }
    out.push_back(v);
    at = comma + 1;
  }
  return out;
#else
  (void)text;
  throw UsageError("--devices: this build of palette has no CUDA backend");
#endif
}

}  // namespace

std::unique_ptr<Backend> make_backend(const ClusterOptions& o) {
  const auto kind = parse_backend_kind(o.backend);
  if (!kind) throw UsageError("invalid --backend");
  if (!o.devices.empty()) {
    if (*kind == BackendKind::kCpu) throw UsageError("--devices needs the CUDA backend");
    const std::vector<int> ids = device_list(o.devices);
    if (ids.size() > 1) {
      std::vector<DeviceBackend> devices;
      try {
        for (const int id : ids) {
          devices.push_back({id, palette::make_backend(BackendKind::kCuda, thread_count(o), id)});
        }
      } catch (const Error& e) {
        throw UsageError(e.what());
      }
      return with_devices(std::move(devices), thread_count(o), [](const std::string& notice) {
        spdlog::warn("{} (same results)", notice);
      });
    }
    ClusterOptions one = o;
    one.devices.clear();
    one.device = ids[0];
    one.backend = "cuda";
    return make_backend(one);
  }
  std::unique_ptr<Backend> backend;
  try {
    backend = palette::make_backend(*kind, thread_count(o), o.device);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (backend->name() == "cpu") return backend;
  // A GPU that fails mid-run (lost, reset) must not turn the rest of the run into error rows:
  // the CPU takes over, with the same results.
  return with_cpu_fallback(std::move(backend), thread_count(o), [](const std::string& error) {
    spdlog::warn("{}; clustering the rest on the CPU (same results, slower)", error);
  });
}

}  // namespace palette::cli
