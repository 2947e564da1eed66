#include "palette/backend.hpp"

#include <deque>

#include "palette/error.hpp"

#ifdef PALETTE_WITH_CUDA
#include "palette/cuda_backend.hpp"
#endif

namespace palette {

std::optional<BackendKind> parse_backend_kind(std::string_view name) {
  if (name == "auto") return BackendKind::kAuto;
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  return std::nullopt;
}

bool cuda_compiled() {
#ifdef PALETTE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

namespace {

class FallbackBackend final : public Backend {
 public:
  FallbackBackend(std::unique_ptr<Backend> primary, int threads,
                  std::function<void(const std::string&)> on_failover)
      : primary_(std::move(primary)),
        threads_(threads),
        on_failover_(std::move(on_failover)),
        primary_name_(primary_->name()),
        preferred_(primary_->preferred_batch_images()),
        low_latency_(primary_->low_latency()),
        max_points_(primary_->max_batch_points()) {}

  std::string name() const override { return active().name(); }
  std::string device() const override { return active().device(); }
  // The batch shape the run started with (a pipeline reads these once).
  std::size_t preferred_batch_images() const override { return preferred_; }
  bool low_latency() const override { return low_latency_; }
  std::size_t max_batch_points() const override { return max_points_; }
  int max_in_flight() const override { return active().max_in_flight(); }

  void fit(const Batch& batch, const KMeansParams& params, BatchResult& out) override {
    submit(batch, params, out);
    finish();
  }

  void submit(const Batch& batch, const KMeansParams& params, BatchResult& out) override {
    if (primary_) {
      try {
        primary_->submit(batch, params, out);
        outstanding_.push_back({&batch, params, &out, true});
        return;
      } catch (const std::exception& e) {
        failed(e.what());
      }
    }
    // Clustered by the fallback in finish(), where errors surface.
    outstanding_.push_back({&batch, params, &out, false});
  }

  void finish() override {
    if (outstanding_.empty()) return;
    const Outstanding job = outstanding_.front();
    outstanding_.pop_front();
    if (job.on_primary && primary_) {
      try {
        primary_->finish();
        return;
      } catch (const std::exception& e) {
        failed(e.what());
      }
    }
    fallback().fit(*job.batch, job.params, *job.out);
  }

 private:
  struct Outstanding {
    const Batch* batch;
    KMeansParams params;
    BatchResult* out;
    bool on_primary;
  };

  const Backend& active() const { return primary_ ? *primary_ : *fallback_; }

  Backend& fallback() {
    if (!fallback_) fallback_ = make_cpu_backend(threads_);
    return *fallback_;
  }

  // The primary failed on one batch (which the caller hands to the fallback): it goes on, or is
  // dropped when it cannot.
  void failed(const std::string& error) {
    fallback();
    if (++failures_ < kMaxPrimaryFailures && primary_->healthy()) {
      if (on_failover_) {
        on_failover_(primary_name_ + " backend failed on one batch (" + error +
                     "): that batch is clustered on the CPU");
      }
      return;
    }
    // Released first: it waits for its own work and touches no result after failing (results
    // are only written in finish()). The batches still outstanding on it go to the fallback.
    primary_.reset();
    if (on_failover_) on_failover_(primary_name_ + " backend failed: " + error);
  }

  std::unique_ptr<Backend> primary_, fallback_;
  int threads_;
  std::function<void(const std::string&)> on_failover_;
  std::string primary_name_;
  std::size_t preferred_;
  bool low_latency_;
  std::size_t max_points_;
  std::deque<Outstanding> outstanding_;  // submitted, not yet finished, oldest first
  int failures_ = 0;
};

}  // namespace

std::unique_ptr<Backend> with_cpu_fallback(std::unique_ptr<Backend> primary, int threads,
                                           std::function<void(const std::string&)> on_failover) {
  return std::make_unique<FallbackBackend>(std::move(primary), threads, std::move(on_failover));
}

std::unique_ptr<Backend> make_backend(BackendKind kind, int threads, int device) {
  if (kind == BackendKind::kCpu) return make_cpu_backend(threads);
#ifdef PALETTE_WITH_CUDA
  if (kind == BackendKind::kCuda) return make_cuda_backend(device);
  if (cuda_device_count() > 0) return make_cuda_backend(device);
  return make_cpu_backend(threads);
#else
  (void)device;
  if (kind == BackendKind::kCuda) {
    throw Error("this build of palette has no CUDA backend (rebuild with -DPALETTE_CUDA=ON)");
  }
  return make_cpu_backend(threads);
#endif
}

}  // namespace palette
