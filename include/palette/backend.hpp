#pragma once
// The seam between the host pipeline and the compute backends: one virtual call per batch.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "palette/kmeans.hpp"
#include "palette/points.hpp"

namespace palette {

/// Runs k-means for every image of a batch. Implementations: CPU threads, CUDA kernels.
/// fit() is called from one thread at a time; a backend may use threads of its own inside.
class Backend {
 public:
  virtual ~Backend() = default;
  /// "cpu" or "cuda".
  virtual std::string name() const = 0;
  /// Human-readable device, e.g. "AMD EPYC 7B13 (2 threads)" or "NVIDIA H100 80GB HBM3".
  virtual std::string device() const = 0;
  /// How many images a batch should hold for this backend to run well.
  virtual std::size_t preferred_batch_images() const = 0;
  /// Whether rows should leave as soon as possible (small batches) rather than in big batches.
  virtual bool low_latency() const = 0;
  /// Clusters every image of `batch` with `params`; replaces `out`. Throws palette::Error.
  /// Works whatever is outstanding (submitted, not yet finished, up to max_in_flight()): those
  /// batches stay outstanding, for their finish(). A multi-device backend hands a failed
  /// device's batch to a busy device this way.
  virtual void fit(const Batch& batch, const KMeansParams& params, BatchResult& out) = 0;

  // Asynchronous use, so that a GPU works on one batch while the next one is copied in: up to
  // max_in_flight() batches may be submitted before the oldest is finished. `batch` and `out`
  // must stay alive and untouched until finish() returns for them. The default runs fit() in
  // submit(); errors surface from finish() (or submit()).

  /// Batches that may be outstanding at once (>= 1).
  virtual int max_in_flight() const { return 1; }
  /// Most points a batch may hold (memory of the device), 0: no limit beyond 2^30.
  virtual std::size_t max_batch_points() const { return 0; }
  /// Starts clustering `batch` into `out`.
  virtual void submit(const Batch& batch, const KMeansParams& params, BatchResult& out) {
    fit(batch, params, out);
  }
  /// Waits until the oldest submitted batch is done and its `out` filled. Throws its error; the
  /// batch is no longer outstanding then either (the next finish() is for the next one).
  virtual void finish() {}
  /// Gives back the memory kept between batches for speed (scratch sized for the largest image
  /// met: a --combined palette's millions of points make it hundreds of MB), as a server does
  /// after each request. Only while no batch is outstanding.
  virtual void release_memory() {}

  /// Whether the backend can still work after one of its calls failed (false, say, once a GPU's
  /// context is lost: every later call would fail too).
  virtual bool healthy() const { return true; }
};

enum class BackendKind { kAuto, kCpu, kCuda };

std::optional<BackendKind> parse_backend_kind(std::string_view name);

/// The CPU backend: images of a batch in parallel on `threads` threads (>= 1).
std::unique_ptr<Backend> make_cpu_backend(int threads);

/// Whether this build contains the CUDA backend.
bool cuda_compiled();

/// `primary` with the CPU to fall back on. When the primary fails on a batch (its submit() or
/// finish() throws), that batch is clustered again by a CPU backend of `threads` threads and
/// `on_failover` says so in one line; the primary goes on with the next batches. A primary that
/// is no longer healthy() (a GPU lost or reset mid-run) or has failed kMaxPrimaryFailures times
/// is dropped: every batch still outstanding on it and every later one goes to the CPU, and
/// `on_failover` says so ("cuda backend failed: ..."). Every backend gives the same results, so
/// the rows are those of a run that never failed. Errors of the CPU backend itself propagate as
/// usual.
inline constexpr int kMaxPrimaryFailures = 3;
std::unique_ptr<Backend> with_cpu_fallback(
    std::unique_ptr<Backend> primary, int threads,
    std::function<void(const std::string&)> on_failover = {});

/// One device of a multi-device backend: its number (for messages) and its backend.
struct DeviceBackend {
  int id = 0;
  std::unique_ptr<Backend> backend;
};

/// Several devices as one backend (--devices): each batch goes to the device with the fewest
/// batches outstanding (each takes up to its own max_in_flight()), and finish() returns them in
/// the order they were submitted, so rows keep the input order and are those of one device. A
/// device that fails on a batch hands that batch to another device (or, when none is left, to a
/// CPU backend of `threads` threads) and goes on; one that is no longer healthy() or has failed
/// kMaxPrimaryFailures times is dropped, and its outstanding and later batches go to the others.
/// `on_failover` says so in one line each time.
std::unique_ptr<Backend> with_devices(std::vector<DeviceBackend> devices, int threads,
                                      std::function<void(const std::string&)> on_failover = {});

/// Picks a backend: kCpu, kCuda (throws palette::Error if unavailable), or kAuto (CUDA when a
/// usable device exists, else CPU). `threads` is for the CPU backend, `device` for CUDA.
std::unique_ptr<Backend> make_backend(BackendKind kind, int threads, int device);

/// A short description of the host CPU model (from /proc/cpuinfo), or "unknown CPU".
std::string cpu_model();

}  // namespace palette
