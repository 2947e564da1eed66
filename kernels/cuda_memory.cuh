#pragma once
// RAII owners of what the GPU side holds: device and pinned host buffers, streams, events.
// Move-only; created once and reused across batches.

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "cuda_check.cuh"

namespace palette::cuda {

/// Device memory for `size` elements of T (uninitialised).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t size) { allocate(size); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  /// Makes room for at least `size` elements (contents are not kept). Throws on failure,
  /// leaving the buffer empty.
  void reserve(std::size_t size) {
    if (size <= size_) return;
    release();
    allocate(size);
  }
  T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void allocate(std::size_t size) {
    if (size == 0) return;
    void* p = nullptr;
    PALETTE_CUDA_TRY(cudaMalloc(&p, size * sizeof(T)));
    data_ = static_cast<T*>(p);
    size_ = size;
  }
  void release() {
    if (data_) PALETTE_CUDA_TRY_NO_THROW(cudaFree(data_));
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Page-locked host memory for `size` elements of T (uninitialised), for asynchronous copies.
template <class T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { release(); }
  PinnedBuffer(PinnedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void reserve(std::size_t size) {
    if (size <= size_) return;
    release();
    void* p = nullptr;
    PALETTE_CUDA_TRY(cudaMallocHost(&p, size * sizeof(T)));
    data_ = static_cast<T*>(p);
    size_ = size;
  }
  T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void release() {
    if (data_) PALETTE_CUDA_TRY_NO_THROW(cudaFreeHost(data_));
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// A non-blocking CUDA stream.
class Stream {
 public:
  Stream() { PALETTE_CUDA_TRY(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) PALETTE_CUDA_TRY_NO_THROW(cudaStreamDestroy(s_));
  }
  Stream(Stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Stream& operator=(Stream&&) = delete;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

/// A CUDA event with timing.
class Event {
 public:
  Event() { PALETTE_CUDA_TRY(cudaEventCreate(&e_)); }
  ~Event() {
    if (e_) PALETTE_CUDA_TRY_NO_THROW(cudaEventDestroy(e_));
  }
  Event(Event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  Event& operator=(Event&&) = delete;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

}  // namespace palette::cuda
