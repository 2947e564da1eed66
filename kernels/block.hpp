#pragma once
// What code written once for a CUDA thread block and for the host's emulation of one needs:
// function qualifiers, unrolling hints, and the few device intrinsics with host equivalents.
//
// Block code takes a `Block` with three functions: tid() (this thread's index in the block),
// sync() (a barrier of the whole block) and max(v) (the maximum of a 64-bit value over the block,
// returned to every thread, past a barrier). image::DeviceBlock (kmeans_image.cuh) is a CUDA
// block: __syncthreads, and the kernel's one block reduction (CUB); the unit tests run the same
// source with one std::thread per thread of the block, a std::barrier and a reduction of their
// own. Everything else that crosses threads goes through shared state between two sync() calls;
// there are no atomics and no warp-synchronous steps in block code.

#include <cstdint>
#include <limits>

#include "palette/hd.hpp"

#if defined(__CUDACC__)
#define PALETTE_BLOCK_FN __device__ __forceinline__
#define PALETTE_UNROLL _Pragma("unroll")
#define PALETTE_NO_UNROLL _Pragma("unroll 1")
#else
#define PALETTE_BLOCK_FN inline
#define PALETTE_UNROLL _Pragma("GCC unroll 16")
#define PALETTE_NO_UNROLL
#endif

namespace palette::columns {

PALETTE_HD float infinity_f() {
#if defined(__CUDA_ARCH__)
  return __int_as_float(0x7f800000);
#else
  return std::numeric_limits<float>::infinity();
#endif
}

/// An int16 coordinate as float, exactly (on the device without the slow conversion unit:
/// 1.5 * 2^23 + v is exact in the mantissa for |v| < 2^22).
PALETTE_HD float exact_float(int v) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(__int_as_float(0x4B400000 + v), 12582912.0f);
#else
  return static_cast<float>(v);
#endif
}

}  // namespace palette::columns
