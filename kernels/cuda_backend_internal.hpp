#pragma once
// The CUDA backend with settings that only tests, the GPU check and the kernel benchmark use:
// the Lloyd variant, and a deliberate device fault. Internal: not part of include/palette.

#include <memory>

#include "lloyd_variant.hpp"
#include "palette/backend.hpp"

namespace palette::cuda {

struct BackendTestOptions {
  LloydVariant lloyd = LloydVariant::kColumns;
  /// Before this batch (counted from 0), a kernel that traps: an unrecoverable device fault,
  /// after which every CUDA call of the process fails. -1: none.
  long long fault_batch = -1;
};

/// make_cuda_backend(device) with these settings.
std::unique_ptr<Backend> make_backend_for_tests(int device, const BackendTestOptions& options);

}  // namespace palette::cuda
