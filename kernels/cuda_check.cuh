#pragma once
// Checking every CUDA call and launch.

#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "palette/error.hpp"

namespace palette::cuda {

/// A failed CUDA call. Out of memory (the call failed, the context is fine: free something and
/// try again smaller) is told apart from everything else, a device fault above all, after
/// which the context is unusable and every later call fails.
class CudaError : public Error {
 public:
  CudaError(cudaError_t code, const std::string& what) : Error(what), code_(code) {}
  cudaError_t code() const { return code_; }
  bool out_of_memory() const { return code_ == cudaErrorMemoryAllocation; }

 private:
  cudaError_t code_;
};

/// Throws CudaError naming the call, its place and the CUDA error.
[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* call, const char* file,
                                          int line) {
  throw CudaError(e, std::string("CUDA error ") + cudaGetErrorName(e) + " (" +
                         cudaGetErrorString(e) + ") in " + call + " at " + file + ":" +
                         std::to_string(line));
}

}  // namespace palette::cuda

/// Checks a CUDA runtime call; throws palette::cuda::CudaError on failure.
#define PALETTE_CUDA_TRY(call)                                                            \
  do {                                                                                    \
    const cudaError_t palette_cuda_status_ = (call);                                      \
    if (palette_cuda_status_ != cudaSuccess) {                                            \
      ::palette::cuda::throw_cuda_error(palette_cuda_status_, #call, __FILE__, __LINE__); \
    }                                                                                     \
  } while (0)

namespace palette::cuda {

/// Set once a destructor has reported a CUDA failure: after a device fault every later release
/// fails the same way, and one line says enough.
inline std::atomic<bool> release_failure_reported{false};

}  // namespace palette::cuda

/// For destructors: reports a failure on stderr instead of throwing (the first one only).
#define PALETTE_CUDA_TRY_NO_THROW(call)                                                     \
  do {                                                                                      \
    const cudaError_t palette_cuda_status_ = (call);                                        \
    if (palette_cuda_status_ != cudaSuccess &&                                              \
        !::palette::cuda::release_failure_reported.exchange(true)) {                        \
      std::fprintf(stderr,                                                                  \
                   "palette: CUDA error %s in %s at %s:%d (later failures to release CUDA " \
                   "resources are not reported)\n",                                         \
                   cudaGetErrorName(palette_cuda_status_), #call, __FILE__, __LINE__);      \
    }                                                                                       \
  } while (0)

/// Checks the launch just made (configuration errors; execution errors surface at the next
/// synchronising call, which is checked too).
#define PALETTE_CUDA_CHECK_LAUNCH() PALETTE_CUDA_TRY(cudaGetLastError())
