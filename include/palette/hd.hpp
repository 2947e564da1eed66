#pragma once
// PALETTE_HD marks the per-element maths shared by the CPU backend and the CUDA kernels.
// Under nvcc it is __host__ __device__; under a plain C++ compiler it is just inline.

#if defined(__CUDACC__)
#define PALETTE_HD __host__ __device__ __forceinline__
#else
#define PALETTE_HD inline
#endif
