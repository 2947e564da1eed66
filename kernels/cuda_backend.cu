// The CUDA backend: batches go to the device through pinned staging buffers on two streams, so
// that one batch is copied in while the previous one computes; results come back the same way.

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>

#include "cuda_backend_internal.hpp"
#include "cuda_check.cuh"
#include "cuda_memory.cuh"
#include "kmeans_kernels.cuh"
#include "palette/clock.hpp"
#include "palette/cuda_backend.hpp"
#include "palette/error.hpp"

namespace palette {
namespace {

using cuda::CudaError;
using cuda::DeviceBuffer;
using cuda::Event;
using cuda::PinnedBuffer;
using cuda::Stream;

constexpr int kMinMajor = 8;  // kernels are built for compute capability 8.0 and newer

__global__ void fault_kernel() { __trap(); }

int raw_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error here
    return 0;
  }
  return n;
}

// One of the two in-flight slots: its stream, staging and device buffers, reused batch after
// batch and grown when a batch needs more.
struct Slot {
  Stream stream;
  Event start, stop;
  PinnedBuffer<std::int16_t> hx, hy, hz;
  PinnedBuffer<std::uint32_t> hw, hoff;
  PinnedBuffer<ClusterStats> hclusters;
  PinnedBuffer<std::uint16_t> hcount, hiter;
  DeviceBuffer<std::int16_t> dx, dy, dz;
  DeviceBuffer<std::uint32_t> dw, doff;
  DeviceBuffer<cuda::SeedPoint> sample;
  DeviceBuffer<std::uint8_t> label;
  DeviceBuffer<ClusterStats> dclusters;
  DeviceBuffer<std::uint16_t> dcount, diter;
  // The batch this slot works on.
  BatchResult* out = nullptr;
  std::size_t images = 0;
  int k = 0;
  double cpu = 0;

  void reserve(std::size_t points, std::size_t image_count, int colors) {
    const std::size_t clusters = image_count * static_cast<std::size_t>(colors);
    hx.reserve(points);
    hy.reserve(points);
    hz.reserve(points);
    hw.reserve(points);
    hoff.reserve(image_count + 1);
    hclusters.reserve(clusters);
    hcount.reserve(image_count);
    hiter.reserve(image_count);
    dx.reserve(points + cuda::kPointPadding);
    dy.reserve(points + cuda::kPointPadding);
    dz.reserve(points + cuda::kPointPadding);
    dw.reserve(points + cuda::kPointPadding);
    sample.reserve(points);
    label.reserve(points);
    doff.reserve(image_count + 1);
    dclusters.reserve(clusters);
    dcount.reserve(image_count);
    diter.reserve(image_count);
  }
  void release_host() {
    hx = {};
    hy = {};
    hz = {};
    hw = {};
    hoff = {};
    hclusters = {};
    hcount = {};
    hiter = {};
  }
  void release_device() {
    dx = {};
    dy = {};
    dz = {};
    dw = {};
    sample = {};
    label = {};
    doff = {};
    dclusters = {};
    dcount = {};
    diter = {};
  }
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, const cuda::BackendTestOptions& options)
      : device_(device), lloyd_(options.lloyd), fault_batch_(options.fault_batch) {
    const int n = raw_device_count();
    if (device < 0 || device >= n) {
      throw Error(n == 0 ? std::string("no CUDA device (or no driver) on this machine")
                         : "no CUDA device " + std::to_string(device) + " (found " +
                               std::to_string(n) + ")");
    }
    PALETTE_CUDA_TRY(cudaSetDevice(device));
    cudaDeviceProp prop{};
    PALETTE_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
    if (prop.major < kMinMajor) {
      throw Error(std::string("CUDA device ") + prop.name + " has compute capability " +
                  std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                  "; palette's kernels need 8.0 or newer");
    }
    name_ = prop.name;
    multiprocessors_ = prop.multiProcessorCount;
    for (auto& slot : slots_) slot = std::make_unique<Slot>();  // streams on this device
    std::size_t free = 0, total = 0;
    PALETTE_CUDA_TRY(cudaMemGetInfo(&free, &total));
    // Half of the free memory, shared by the two slots, bounded so one batch stays modest.
    max_points_ = std::clamp<std::size_t>(free / 2 / 2 / cuda::kDeviceBytesPerPoint,
                                          std::size_t{1} << 16, std::size_t{1} << 28);
  }

  ~CudaBackend() override {
    // Let work in flight end before the buffers go.
    for (auto& s : slots_) {
      if (s) PALETTE_CUDA_TRY_NO_THROW(cudaStreamSynchronize(s->stream.get()));
    }
    if (spare_) PALETTE_CUDA_TRY_NO_THROW(cudaStreamSynchronize(spare_->stream.get()));
  }

  std::string name() const override { return "cuda"; }
  std::string device() const override {
    return name_ + " (device " + std::to_string(device_) + ", " + std::to_string(multiprocessors_) +
           " SMs" +
           (lloyd_ == cuda::LloydVariant::kColumns ? "" : std::string(", ") + to_string(lloyd_)) +
           ")";
  }
  std::size_t preferred_batch_images() const override { return 1024; }
  bool low_latency() const override { return false; }
  int max_in_flight() const override { return 2; }
  std::size_t max_batch_points() const override { return max_points_; }
  // After a device fault (sticky: the context is unusable) every call fails with it; after an
  // error that is not (a lack of memory), calls succeed again.
  bool healthy() const override {
    if (cudaSetDevice(device_) != cudaSuccess) return false;
    const cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess) return true;
    (void)cudaGetLastError();
    return cudaDeviceSynchronize() == cudaSuccess;
  }

  // The slots' page-locked staging and device buffers, grown to the largest batch met (a
  // combined palette's millions of points), are given back; the next batch grows them again.
  void release_memory() override {
    if (!order_.empty() || cudaSetDevice(device_) != cudaSuccess) return;
    for (auto& s : slots_) {
      s->release_host();
      s->release_device();
    }
    spare_.reset();
  }

  // This batch, whatever else is in flight (those stay in flight, for their finish()): in a free
  // slot, or, when both hold a batch (a multi-device backend hands a failed device's batch to
  // this one while it has two in flight), in a spare slot kept for this.
  void fit(const Batch& batch, const KMeansParams& params, BatchResult& out) override {
    validate(params);
    if (order_.size() < slots_.size()) {
      submit(batch, params, out);
      const int index = order_.back();
      order_.pop_back();
      complete(*slots_[index]);
      return;
    }
    PALETTE_CUDA_TRY(cudaSetDevice(device_));
    if (!spare_) spare_ = std::make_unique<Slot>();
    if (start(batch, params, out, *spare_)) complete(*spare_);
  }

  void submit(const Batch& batch, const KMeansParams& params, BatchResult& out) override {
    validate(params);
    if (order_.size() >= slots_.size()) throw Error("too many batches in flight");
    PALETTE_CUDA_TRY(cudaSetDevice(device_));
    // A slot with no batch in flight (fit() may leave an older batch in either).
    int index = 0;
    while (std::find(order_.begin(), order_.end(), index) != order_.end()) ++index;
    start(batch, params, out, *slots_[index]);
    order_.push_back(index);
  }

  void finish() override {
    if (order_.empty()) return;
    const int index = order_.front();
    order_.pop_front();
    complete(*slots_[index]);
  }

 private:
  // Starts `batch` on slot `s` (free): queued on its stream, for complete(s), and true; or, when
  // the device lacks the memory for it, clustered at once in pieces, and false.
  bool start(const Batch& batch, const KMeansParams& params, BatchResult& out, Slot& s) {
    const double cpu0 = thread_cpu_seconds();
    const std::size_t images = batch.images(), points = batch.points();
    out.reset(images, params.k);
    try {
      s.reserve(std::max<std::size_t>(points, 1), images, params.k);
    } catch (const CudaError& e) {
      // Out of device memory (someone else took it): run this batch in smaller pieces, one
      // after the other, and plan smaller batches from now on. Any other error (a device fault)
      // goes to the caller, whose CPU fallback takes over (with_cpu_fallback).
      if (!e.out_of_memory()) throw;
      s.release_device();
      cudaGetLastError();
      max_points_ = std::max<std::size_t>(max_points_ / 2, 1);
      fit_in_pieces(batch, params, out, s);
      out.host_cpu_seconds += thread_cpu_seconds() - cpu0;
      s.out = nullptr;
      return false;
    }
    if (batches_++ == fault_batch_) {
      fault_kernel<<<1, 1, 0, s.stream.get()>>>();
      PALETTE_CUDA_CHECK_LAUNCH();
    }
    enqueue(batch, 0, images, params, s);
    s.out = &out;
    s.images = images;
    s.k = params.k;
    s.cpu = thread_cpu_seconds() - cpu0;
    return true;
  }

  // Waits for the batch of slot `s` (taken out of order_) and hands its results over.
  void complete(Slot& s) {
    if (!s.out) return;  // done synchronously in pieces
    const double cpu0 = thread_cpu_seconds();
    BatchResult& out = *s.out;
    s.out = nullptr;
    PALETTE_CUDA_TRY(cudaStreamSynchronize(s.stream.get()));
    float ms = 0;
    PALETTE_CUDA_TRY(cudaEventElapsedTime(&ms, s.start.get(), s.stop.get()));
    std::memcpy(out.clusters.data(), s.hclusters.data(),
                s.images * static_cast<std::size_t>(s.k) * sizeof(ClusterStats));
    std::memcpy(out.count.data(), s.hcount.data(), s.images * sizeof(std::uint16_t));
    std::memcpy(out.iterations.data(), s.hiter.data(), s.images * sizeof(std::uint16_t));
    out.device_seconds = ms / 1000.0;
    out.host_cpu_seconds = s.cpu + (thread_cpu_seconds() - cpu0);
  }

  // Copies images [first, first + count) of `batch` in, runs the kernel and copies the results
  // back, all queued on the slot's stream; results land in the slot's pinned buffers.
  void enqueue(const Batch& batch, std::size_t first, std::size_t count, const KMeansParams& params,
               Slot& s) {
    const std::uint32_t p0 = batch.offsets[first], p1 = batch.offsets[first + count];
    const std::size_t points = p1 - p0;
    std::memcpy(s.hx.data(), batch.x.data() + p0, points * sizeof(std::int16_t));
    std::memcpy(s.hy.data(), batch.y.data() + p0, points * sizeof(std::int16_t));
    std::memcpy(s.hz.data(), batch.z.data() + p0, points * sizeof(std::int16_t));
    std::memcpy(s.hw.data(), batch.weight.data() + p0, points * sizeof(std::uint32_t));
    for (std::size_t i = 0; i <= count; ++i) s.hoff.data()[i] = batch.offsets[first + i] - p0;
    const cudaStream_t st = s.stream.get();
    PALETTE_CUDA_TRY(cudaEventRecord(s.start.get(), st));
    auto h2d = [&](void* dst, const void* src, std::size_t bytes) {
      if (bytes) PALETTE_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st));
    };
    h2d(s.dx.data(), s.hx.data(), points * sizeof(std::int16_t));
    h2d(s.dy.data(), s.hy.data(), points * sizeof(std::int16_t));
    h2d(s.dz.data(), s.hz.data(), points * sizeof(std::int16_t));
    h2d(s.dw.data(), s.hw.data(), points * sizeof(std::uint32_t));
    h2d(s.doff.data(), s.hoff.data(), (count + 1) * sizeof(std::uint32_t));
    const cuda::DevicePoints dp{s.dx.data(), s.dy.data(),   s.dz.data(),
                                s.dw.data(), s.doff.data(), static_cast<std::uint32_t>(count)};
    const cuda::DeviceScratch scratch{s.sample.data(), s.label.data()};
    const cuda::DeviceResults res{s.dclusters.data(), s.dcount.data(), s.diter.data()};
    cuda::launch_kmeans_batch(dp, scratch, params, shift_limit2(params, batch.space), res, st,
                              lloyd_);
    const std::size_t clusters = count * static_cast<std::size_t>(params.k);
    PALETTE_CUDA_TRY(cudaMemcpyAsync(s.hclusters.data(), s.dclusters.data(),
                                     clusters * sizeof(ClusterStats), cudaMemcpyDeviceToHost, st));
    PALETTE_CUDA_TRY(cudaMemcpyAsync(s.hcount.data(), s.dcount.data(),
                                     count * sizeof(std::uint16_t), cudaMemcpyDeviceToHost, st));
    PALETTE_CUDA_TRY(cudaMemcpyAsync(s.hiter.data(), s.diter.data(), count * sizeof(std::uint16_t),
                                     cudaMemcpyDeviceToHost, st));
    PALETTE_CUDA_TRY(cudaEventRecord(s.stop.get(), st));
  }

  // The whole batch, synchronously, in pieces that fit what the device can still give.
  void fit_in_pieces(const Batch& batch, const KMeansParams& params, BatchResult& out, Slot& s) {
    for (std::size_t first = 0; first < batch.images();) {
      std::size_t count = 0;
      while (
          first + count < batch.images() &&
          (count == 0 || batch.offsets[first + count + 1] - batch.offsets[first] <= max_points_)) {
        ++count;
      }
      const std::size_t points = batch.offsets[first + count] - batch.offsets[first];
      try {
        s.reserve(std::max<std::size_t>(points, 1), count, params.k);
      } catch (const CudaError& e) {
        if (!e.out_of_memory()) throw;
        s.release_device();
        cudaGetLastError();
        if (count == 1 && max_points_ <= points) throw;  // one image does not fit at all
        max_points_ = std::max<std::size_t>(points / 2, 1);
        continue;
      }
      enqueue(batch, first, count, params, s);
      PALETTE_CUDA_TRY(cudaStreamSynchronize(s.stream.get()));
      float ms = 0;
      PALETTE_CUDA_TRY(cudaEventElapsedTime(&ms, s.start.get(), s.stop.get()));
      out.device_seconds += ms / 1000.0;
      std::memcpy(out.clusters.data() + first * params.k, s.hclusters.data(),
                  count * static_cast<std::size_t>(params.k) * sizeof(ClusterStats));
      std::memcpy(out.count.data() + first, s.hcount.data(), count * sizeof(std::uint16_t));
      std::memcpy(out.iterations.data() + first, s.hiter.data(), count * sizeof(std::uint16_t));
      first += count;
    }
  }

  int device_;
  cuda::LloydVariant lloyd_;
  long long fault_batch_;
  long long batches_ = 0;
  std::string name_;
  int multiprocessors_ = 0;
  std::size_t max_points_ = 0;
  std::array<std::unique_ptr<Slot>, 2> slots_;
  std::unique_ptr<Slot> spare_;  // fit() while both slots hold a batch
  std::deque<int> order_;        // slots with a batch, oldest first
};

}  // namespace

std::vector<CudaDeviceInfo> cuda_devices() {
  std::vector<CudaDeviceInfo> out;
  const int n = raw_device_count();
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    CudaDeviceInfo info;
    info.index = d;
    info.name = prop.name;
    info.total_memory = prop.totalGlobalMem;
    info.cc_major = prop.major;
    info.cc_minor = prop.minor;
    info.multiprocessors = prop.multiProcessorCount;
    info.usable = prop.major >= kMinMajor;
    int current = 0;
    if (cudaGetDevice(&current) == cudaSuccess && cudaSetDevice(d) == cudaSuccess) {
      std::size_t free = 0, total = 0;
      if (cudaMemGetInfo(&free, &total) == cudaSuccess) info.free_memory = free;
      cudaSetDevice(current);
    }
    cudaGetLastError();
    out.push_back(info);
  }
  return out;
}

int cuda_device_count() {
  int usable = 0;
  for (const auto& d : cuda_devices()) usable += d.usable ? 1 : 0;
  return usable;
}

std::string cuda_versions() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  const bool has_driver = cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0;
  cudaGetLastError();
  auto text = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
  return "CUDA runtime " + text(runtime) + " (static), driver " +
         (has_driver ? text(driver) : std::string("none"));
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  return std::make_unique<CudaBackend>(device, cuda::BackendTestOptions{});
}

std::unique_ptr<Backend> cuda::make_backend_for_tests(int device,
                                                      const BackendTestOptions& options) {
  return std::make_unique<CudaBackend>(device, options);
}

}  // namespace palette
