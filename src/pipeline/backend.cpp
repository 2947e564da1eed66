#include "palette/backend.hpp"

#include <algorithm>
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

  void release_memory() override {
    if (primary_) primary_->release_memory();
    if (fallback_) fallback_->release_memory();
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

class MultiDeviceBackend final : public Backend {
 public:
  MultiDeviceBackend(std::vector<DeviceBackend> devices, int threads,
                     std::function<void(const std::string&)> on_failover)
      : threads_(threads), on_failover_(std::move(on_failover)) {
    if (devices.empty()) throw Error("no devices given");
    for (auto& d : devices) {
      Member m;
      m.label =
          d.backend->name() + " device " + std::to_string(d.id) + " (" + d.backend->device() + ")";
      m.backend = std::move(d.backend);
      if (m.backend->max_batch_points() > 0) {
        max_points_ = max_points_ == 0 ? m.backend->max_batch_points()
                                       : std::min(max_points_, m.backend->max_batch_points());
      }
      members_.push_back(std::move(m));
    }
    name_ = members_[0].backend->name();
    preferred_ = members_[0].backend->preferred_batch_images();
    low_latency_ = members_[0].backend->low_latency();
  }

  std::string name() const override { return active() > 0 ? name_ : "cpu"; }
  std::string device() const override {
    std::string text;
    int n = 0;
    for (const auto& m : members_) {
      if (!m.backend) continue;
      text += (n++ ? ", " : "") + m.backend->device();
    }
    if (n == 0) return cpu_ ? cpu_->device() : "cpu";
    return std::to_string(n) + (n == 1 ? " device: " : " devices: ") + text;
  }
  std::size_t preferred_batch_images() const override { return preferred_; }
  bool low_latency() const override { return low_latency_; }
  std::size_t max_batch_points() const override { return max_points_; }
  int max_in_flight() const override {
    int n = 0;
    for (const auto& m : members_) {
      if (m.backend) n += std::max(1, m.backend->max_in_flight());
    }
    return std::max(1, n);
  }

  void fit(const Batch& batch, const KMeansParams& params, BatchResult& out) override {
    submit(batch, params, out);
    finish();
  }

  void submit(const Batch& batch, const KMeansParams& params, BatchResult& out) override {
    // The device with the fewest batches outstanding and room for one more (the lowest number
    // among equals).
    int pick = -1;
    for (int i = 0; i < static_cast<int>(members_.size()); ++i) {
      const Member& m = members_[i];
      if (!m.backend || m.outstanding >= std::max(1, m.backend->max_in_flight())) continue;
      if (pick < 0 || m.outstanding < members_[pick].outstanding) pick = i;
    }
    Job job{&batch, params, &out, -1, pick};
    if (pick >= 0) {
      try {
        members_[pick].backend->submit(batch, params, out);
        ++members_[pick].outstanding;
        job.member = pick;
      } catch (const std::exception& e) {
        failed(pick, e.what());  // clustered elsewhere in finish(), where errors surface
      }
    }
    jobs_.push_back(job);
  }

  void finish() override {
    if (jobs_.empty()) return;
    const Job job = jobs_.front();
    jobs_.pop_front();
    if (job.member >= 0) {
      Member& m = members_[job.member];
      --m.outstanding;
      if (m.backend) {
        try {
          m.backend->finish();
          return;
        } catch (const std::exception& e) {
          failed(job.member, e.what());
        }
      }
    }
    // Another device, the least busy first; the CPU when none is left (or all fail).
    while (true) {
      int pick = -1;
      for (int i = 0; i < static_cast<int>(members_.size()); ++i) {
        if (i == job.device || !members_[i].backend) continue;
        if (pick < 0 || members_[i].outstanding < members_[pick].outstanding) pick = i;
      }
      if (pick < 0) break;
      try {
        members_[pick].backend->fit(*job.batch, job.params, *job.out);
        return;
      } catch (const std::exception& e) {
        failed(pick, e.what());
      }
    }
    cpu().fit(*job.batch, job.params, *job.out);
  }

  void release_memory() override {
    for (auto& m : members_) {
      if (m.backend) m.backend->release_memory();
    }
    if (cpu_) cpu_->release_memory();
  }

  bool healthy() const override { return true; }

 private:
  struct Member {
    std::string label;
    std::unique_ptr<Backend> backend;  // null once dropped
    int outstanding = 0;
    int failures = 0;
  };
  struct Job {
    const Batch* batch;
    KMeansParams params;
    BatchResult* out;
    int member;  // where it is outstanding; -1: to be clustered in finish()
    int device;  // the device it was given to (-1: none had room), not to be tried again
  };

  int active() const {
    int n = 0;
    for (const auto& m : members_) n += m.backend != nullptr;
    return n;
  }
  Backend& cpu() {
    if (!cpu_) cpu_ = make_cpu_backend(threads_);
    return *cpu_;
  }
  // Where a batch device i failed on goes.
  std::string elsewhere(int i) const {
    return active() - (members_[i].backend ? 1 : 0) > 0 ? "another device" : "the CPU";
  }

  // Device i failed on one batch (which the caller hands on): it goes on, or is dropped.
  void failed(int i, const std::string& error) {
    Member& m = members_[i];
    if (++m.failures < kMaxPrimaryFailures && m.backend->healthy()) {
      if (on_failover_) {
        on_failover_(m.label + " failed on one batch (" + error + "): that batch goes to " +
                     elsewhere(i));
      }
      return;
    }
    // Released first: it waits for its own work and touches no result after failing (results
    // are only written in finish()). Its batches still outstanding go to the others.
    m.backend.reset();
    if (on_failover_) {
      on_failover_(m.label + " failed: " + error + "; its batches go to " +
                   (active() > 0 ? "the other devices" : "the CPU"));
    }
  }

  int threads_;
  std::function<void(const std::string&)> on_failover_;
  std::vector<Member> members_;
  std::unique_ptr<Backend> cpu_;
  std::deque<Job> jobs_;  // submitted, not yet finished, oldest first
  std::string name_;
  std::size_t preferred_ = 0, max_points_ = 0;
  bool low_latency_ = false;
};

}  // namespace

std::unique_ptr<Backend> with_devices(std::vector<DeviceBackend> devices, int threads,
                                      std::function<void(const std::string&)> on_failover) {
  return std::make_unique<MultiDeviceBackend>(std::move(devices), threads, std::move(on_failover));
}

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
