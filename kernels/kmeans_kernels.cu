// The k-means kernel. One block of kThreads threads per image; points are read from global
// memory in tiles of kThreads (thread t always handles points t, t + kThreads, ...), so the
// per-point scratch a thread writes is only ever read back by that same thread.
//
// Determinism: every decision mirrors src/core/kmeans_cpu.cpp. Distances and sums are integers
// where the CPU uses integers, float distances go through math::dist2 (explicitly rounded
// operations, no FMA), sums of weight * coordinate are exact 64-bit integers (integer atomics
// are order-independent), and every argmin/argmax breaks ties towards the lowest index, as the
// CPU's sequential loops do.

#include <cooperative_groups.h>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <algorithm>

#include "cuda_check.cuh"
#include "kmeans_kernels.cuh"
#include "lloyd_cluster.hpp"
#include "lloyd_columns.hpp"
#include "palette/error.hpp"
#include "palette/kmeans_math.hpp"
#include "seed_block.hpp"

namespace palette::cuda {
namespace {

constexpr int kThreads = 256;
static_assert(kSeedAreaPadding == kThreads - 1, "seed_block.hpp's runs need T - 1 spare entries");
constexpr int kMaxTrials = 6;  // math::kmeanspp_trials(64)
constexpr std::uint8_t kMoved = 0x80;
using u64 = unsigned long long;
using BlockScan = cub::BlockScan<u64, kThreads>;
using BlockReduce = cub::BlockReduce<u64, kThreads>;

struct Shared {
  union {
    BlockScan::TempStorage scan;
    BlockReduce::TempStorage reduce;
  } temp;
  float cx[kMaxColors], cy[kMaxColors], cz[kMaxColors];
  long long sx[kMaxColors], sy[kMaxColors], sz[kMaxColors];
  u64 sw[kMaxColors];
  unsigned members[kMaxColors];
  u64 heavy[kMaxColors];
  int centre[kMaxColors];
  u64 target[kMaxTrials];
  int cand[kMaxTrials];
  u64 carry;
  u64 value;
  unsigned shift_bits;
  int any_empty;
};

__device__ u64 block_sum(Shared& sh, u64 v) {
  const u64 total = BlockReduce(sh.temp.reduce).Sum(v);
  if (threadIdx.x == 0) sh.value = total;
  __syncthreads();
  const u64 r = sh.value;
  __syncthreads();
  return r;
}

struct MaxOp {
  __device__ u64 operator()(u64 a, u64 b) const { return a > b ? a : b; }
};

__device__ u64 block_max(Shared& sh, u64 v) {
  const u64 m = BlockReduce(sh.temp.reduce).Reduce(v, MaxOp{});
  if (threadIdx.x == 0) sh.value = m;
  __syncthreads();
  const u64 r = sh.value;
  __syncthreads();
  return r;
}

// Inverse-CDF sampling over point values in index order: for each target r_t (t < targets),
// finds the point i whose prefix interval [sum_{j<i} v_j, sum_{j<=i} v_j) holds r_t, i.e. the
// first i with inclusive prefix > r_t (std::upper_bound on the CPU). Results in sh.cand.
template <class Value>
__device__ void sample_points(Shared& sh, std::uint32_t n, int targets, Value value) {
  if (threadIdx.x == 0) sh.carry = 0;
  __syncthreads();
  for (std::uint32_t base = 0; base < n; base += kThreads) {
    const std::uint32_t i = base + threadIdx.x;
    const u64 v = i < n ? value(i) : 0;
    u64 excl, tile_total;
    BlockScan(sh.temp.scan).ExclusiveSum(v, excl, tile_total);
    excl += sh.carry;
    if (v > 0) {
      for (int t = 0; t < targets; ++t) {
        const u64 r = sh.target[t];
        if (excl <= r && r - excl < v) sh.cand[t] = static_cast<int>(i);
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) sh.carry += tile_total;
    __syncthreads();
  }
}

__device__ __forceinline__ void store_seed_point(SeedPoint* p, int x, int y, int z,
                                                 std::uint32_t w) {
  *reinterpret_cast<uint4*>(p) =
      make_uint4((static_cast<std::uint32_t>(x) & 0xFFFFu) | (static_cast<std::uint32_t>(y) << 16),
                 static_cast<std::uint32_t>(z) & 0xFFFFu, w, 0xFFFFFFFFu);
}

__device__ __forceinline__ SeedPoint load_seed_point(const SeedPoint* p) {
  const uint4 v = *reinterpret_cast<const uint4*>(p);
  SeedPoint s;
  s.x = static_cast<std::int16_t>(v.x & 0xFFFFu);
  s.y = static_cast<std::int16_t>(v.x >> 16);
  s.z = static_cast<std::int16_t>(v.y & 0xFFFFu);
  s.pad = 0;
  s.w = v.z;
  s.closest = v.w;
  return s;
}

// Weights up to this keep a warp's sums of weight * coordinate (|coordinate| < 2^15) within
// 32 bits: 32 * 2047 * 32768 < 2^31.
constexpr std::uint32_t kNarrowWeight = 2047;

// Adds each point's weight and weighted coordinates to its cluster. Lanes of a warp with the
// same cluster first sum among themselves, so one lane per cluster touches shared memory. The
// sums are exact: 32-bit when the image's weights are small (`narrow`), else each 64-bit value
// split into two 32-bit sums.
__device__ void accumulate(Shared& sh, bool narrow, int label, std::uint32_t w, long long wx,
                           long long wy, long long wz) {
  constexpr unsigned kAll = 0xffffffffu;
  const unsigned peers = __match_any_sync(kAll, label);
  if (label < 0) return;
  const unsigned ws = __reduce_add_sync(peers, w);
  auto sum64 = [peers, narrow](long long v) {
    if (narrow) return static_cast<long long>(__reduce_add_sync(peers, static_cast<int>(v)));
    const unsigned lo = __reduce_add_sync(peers, static_cast<unsigned>(v & 0xFFFF));
    const int hi = __reduce_add_sync(peers, static_cast<int>(v >> 16));
    return static_cast<long long>(hi) * 65536 + static_cast<long long>(lo);
  };
  const long long tx = sum64(wx), ty = sum64(wy), tz = sum64(wz);
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (lane == __ffs(peers) - 1) {
    atomicAdd(reinterpret_cast<u64*>(&sh.sx[label]), static_cast<u64>(tx));
    atomicAdd(reinterpret_cast<u64*>(&sh.sy[label]), static_cast<u64>(ty));
    atomicAdd(reinterpret_cast<u64*>(&sh.sz[label]), static_cast<u64>(tz));
    atomicAdd(&sh.sw[label], static_cast<u64>(ws));
    atomicAdd(&sh.members[label], static_cast<unsigned>(__popc(peers)));
  }
}

// The Block interface of lloyd_columns.hpp for a CUDA thread block.
struct DeviceBlock {
  __device__ int tid() const { return static_cast<int>(threadIdx.x); }
  __device__ void sync() const { __syncthreads(); }
};

using ColumnsShared = columns::Shared<kThreads>;

// KP = 0: Lloyd with warp sums only. KP > 0: the columns variant for k <= KP (centroids padded
// to KP in registers), in dynamic shared memory (ColumnsShared, then the columns), falling back
// to warp sums for images whose weights do not fit 32-bit columns.
// kFilter: the columns variant finds nearest centroids with the fma filter
// (CudaLloyd::kColumnsFma).
// Image `img` by this block (every thread of it).
template <int KP, bool kFilter>
__device__ void kmeans_image(const DevicePoints& P, const DeviceScratch& S, int k,
                             std::uint64_t seed, int max_iter, float limit2, const DeviceResults& R,
                             KernelMode mode, std::uint32_t img) {
  __shared__ Shared sh;
  extern __shared__ __align__(16) unsigned char dynamic_shared[];
  const std::uint32_t off = P.offsets[img];
  const std::uint32_t n = P.offsets[img + 1] - off;
  const std::int16_t* X = P.x + off;
  const std::int16_t* Y = P.y + off;
  const std::int16_t* Z = P.z + off;
  const std::uint32_t* W = P.weight + off;
  SeedPoint* sample = S.sample + off;
  std::uint8_t* label = S.label + off;
  ClusterStats* out = R.clusters + static_cast<std::size_t>(img) * k;
  const int tid = static_cast<int>(threadIdx.x);

  if (n <= static_cast<std::uint32_t>(k)) {  // every distinct colour is its own cluster
    for (std::uint32_t i = tid; i < n; i += kThreads) {
      const long long w = W[i];
      out[i] = ClusterStats{{w * X[i], w * Y[i], w * Z[i]}, static_cast<u64>(w), i, 0};
    }
    if (tid == 0) {
      R.count[img] = static_cast<std::uint16_t>(n);
      R.iterations[img] = 0;
    }
    return;
  }

  // ---- Greedy k-means++ seeding on exact integer distances (kmeanspp_seeds on the CPU), over
  // the evenly spread subsample of at most math::kSeedSample points. The fma variant seeds with
  // seed_block.hpp (one scan per draw, in dynamic shared memory); the others tile by tile here.
  if constexpr (kFilter) {
    const columns::ImageRef ref{X, Y, Z, W, n};
    columns::seed_image<kThreads>(
        DeviceBlock{}, *reinterpret_cast<columns::SeedShared<kThreads>*>(dynamic_shared), ref, k,
        seed, S.sample + off + static_cast<std::size_t>(img) * kSeedAreaPadding, sh.centre);
  } else {
    // The subsample is gathered first into `sample` (entry j: point i = seed_sample_index(j, n))
    // so that the k rounds read it contiguously, 16 bytes per point, instead of a 32-byte sector
    // per coordinate.
    const std::uint32_t m = n < math::kSeedSample ? n : math::kSeedSample;
    auto at = [n](std::uint32_t j) { return math::seed_sample_index(j, n); };
    u64 total = 0;
    for (std::uint32_t j = tid; j < m; j += kThreads) {
      const std::uint32_t i = at(j);
      const std::uint32_t w = W[i];
      store_seed_point(sample + j, X[i], Y[i], Z[i], w);
      total += w;
    }
    total = block_sum(sh, total);  // also makes the gathered sample visible to the block
    if (tid == 0) sh.target[0] = math::uniform_below(math::random_u64(seed, 0), total);
    __syncthreads();
    sample_points(sh, m, 1, [&](std::uint32_t j) { return static_cast<u64>(sample[j].w); });
    int centre = static_cast<int>(at(static_cast<std::uint32_t>(sh.cand[0])));
    if (tid == 0) sh.centre[0] = centre;
    u64 pot = 0;
    {
      const int ax = X[centre], ay = Y[centre], az = Z[centre];
      for (std::uint32_t j = tid; j < m; j += kThreads) {
        const SeedPoint s = load_seed_point(sample + j);
        const std::uint32_t d = math::dist2_exact(s.x, s.y, s.z, ax, ay, az);
        sample[j].closest = d;
        pot += static_cast<u64>(s.w) * d;
      }
    }
    pot = block_sum(sh, pot);
    const int trials = math::kmeanspp_trials(k);
    for (int c = 1; c < k; ++c) {
      if (tid < trials) {
        sh.target[tid] = math::uniform_below(
            math::random_u64(seed, static_cast<std::uint64_t>(c) * 8 + tid), pot);
      }
      __syncthreads();
      sample_points(sh, m, trials, [&](std::uint32_t j) {
        const SeedPoint s = load_seed_point(sample + j);
        return static_cast<u64>(s.w) * s.closest;
      });
      int cand[kMaxTrials], cx[kMaxTrials], cy[kMaxTrials], cz[kMaxTrials];
      u64 acc[kMaxTrials];
#pragma unroll
      for (int t = 0; t < kMaxTrials; ++t) {
        const int j = t < trials ? sh.cand[t] : sh.cand[0];
        cand[t] = static_cast<int>(at(static_cast<std::uint32_t>(j)));
        const SeedPoint s = load_seed_point(sample + j);
        cx[t] = s.x;
        cy[t] = s.y;
        cz[t] = s.z;
        acc[t] = 0;
      }
      for (std::uint32_t j = tid; j < m; j += kThreads) {
        const SeedPoint s = load_seed_point(sample + j);
        const u64 w = s.w;
#pragma unroll
        for (int t = 0; t < kMaxTrials; ++t) {
          if (t < trials) {
            const std::uint32_t d = math::dist2_exact(s.x, s.y, s.z, cx[t], cy[t], cz[t]);
            acc[t] += w * (d < s.closest ? d : s.closest);
          }
        }
      }
      int best = 0;
      u64 best_pot = 0;
#pragma unroll
      for (int t = 0; t < kMaxTrials; ++t) {
        if (t < trials) {
          const u64 p = block_sum(sh, acc[t]);
          if (t == 0 || p < best_pot) {
            best = t;
            best_pot = p;
          }
        }
      }
      int ax = 0, ay = 0, az = 0;
#pragma unroll
      for (int t = 0; t < kMaxTrials; ++t) {
        if (t == best) {
          centre = cand[t];
          ax = cx[t];
          ay = cy[t];
          az = cz[t];
        }
      }
      if (tid == 0) sh.centre[c] = centre;
      pot = best_pot;
      for (std::uint32_t j = tid; j < m; j += kThreads) {
        const SeedPoint s = load_seed_point(sample + j);
        const std::uint32_t d = math::dist2_exact(s.x, s.y, s.z, ax, ay, az);
        if (d < s.closest) sample[j].closest = d;
      }
    }
  }
  __syncthreads();
  if (mode == KernelMode::kSeedOnly) {
    if (tid < k)
      out[tid] = ClusterStats{{0, 0, 0}, 0, static_cast<std::uint32_t>(sh.centre[tid]), 0};
    if (tid == 0) {
      R.count[img] = static_cast<std::uint16_t>(k);
      R.iterations[img] = 0;
    }
    return;
  }
  if (tid < k) {
    sh.cx[tid] = X[sh.centre[tid]];
    sh.cy[tid] = Y[sh.centre[tid]];
    sh.cz[tid] = Z[sh.centre[tid]];
  }

  // ---- Lloyd iterations (kmeans_image on the CPU). One scan for the heaviest weight and, for
  // the columns variant, whether 32-bit columns hold this image's sums (lloyd_columns.hpp) and
  // how often they must be folded; the fma variant also writes the packed copy of the points
  // that its passes read when every weight fits in 16 bits.
  u64 heaviest = 0, weight_sum = 0, max_abs = 0, zero = 0;
  columns::PackedPoint* packed = S.packed + off;
  for (std::uint32_t i = tid; i < n; i += kThreads) {
    const std::uint32_t w = W[i];
    heaviest = w > heaviest ? w : heaviest;
    if constexpr (KP > 0) {
      const std::int16_t x = X[i], y = Y[i], z = Z[i];
      weight_sum += w;
      zero |= w == 0;
      for (const int v : {x, y, z}) {
        const u64 a = static_cast<u64>(v < 0 ? -v : v);
        max_abs = a > max_abs ? a : max_abs;
      }
      if constexpr (kFilter) packed[i] = {x, y, z, static_cast<std::uint16_t>(w)};
    }
  }
  heaviest = block_max(sh, heaviest);
  if constexpr (KP > 0) {
    weight_sum = block_sum(sh, weight_sum);
    max_abs = block_max(sh, max_abs);
    zero = block_max(sh, zero);
    const std::uint32_t every =
        columns::flush_tiles(heaviest, weight_sum, static_cast<std::uint32_t>(max_abs), zero != 0);
    if (every != 0) {
      auto& cs = *reinterpret_cast<ColumnsShared*>(dynamic_shared);
      auto* col = reinterpret_cast<std::int32_t*>(dynamic_shared + sizeof(ColumnsShared));
      const columns::ImageRef ref{X,
                                  Y,
                                  Z,
                                  W,
                                  n,
                                  off % columns::kQuad,
                                  kFilter && heaviest <= 0xFFFF ? packed : nullptr,
                                  static_cast<std::uint32_t>(max_abs)};
      const int iterations = columns::lloyd<kThreads, KP, kFilter>(
          DeviceBlock{}, cs, col, ref, sh.centre, k, max_iter, limit2, every, out);
      if (tid == 0) {
        R.count[img] = static_cast<std::uint16_t>(k);
        R.iterations[img] = static_cast<std::uint16_t>(iterations);
      }
      return;
    }
  }
  const bool narrow = heaviest <= kNarrowWeight;
  int iterations = 0;
  for (int it = 1; it <= max_iter; ++it) {
    iterations = it;
    __syncthreads();
    if (tid < k) {
      sh.sx[tid] = sh.sy[tid] = sh.sz[tid] = 0;
      sh.sw[tid] = 0;
      sh.members[tid] = 0;
    }
    if (tid == 0) {
      sh.shift_bits = 0;
      sh.any_empty = 0;
    }
    __syncthreads();
    // The loop bound is the same for every lane of a warp: accumulate() needs all 32.
    for (std::uint32_t base = 0; base < n; base += kThreads) {
      const std::uint32_t i = base + tid;
      int l = -1;
      std::uint32_t w = 0;
      long long wx = 0, wy = 0, wz = 0;
      if (i < n) {
        const float px = X[i], py = Y[i], pz = Z[i];
        float b = math::dist2(px, py, pz, sh.cx[0], sh.cy[0], sh.cz[0]);
        l = 0;
        for (int j = 1; j < k; ++j) {
          const float d = math::dist2(px, py, pz, sh.cx[j], sh.cy[j], sh.cz[j]);
          if (d < b) {
            b = d;
            l = j;
          }
        }
        label[i] = static_cast<std::uint8_t>(l);
        w = W[i];
        wx = static_cast<long long>(w) * X[i];
        wy = static_cast<long long>(w) * Y[i];
        wz = static_cast<long long>(w) * Z[i];
      }
      accumulate(sh, narrow, l, w, wx, wy, wz);
    }
    __syncthreads();
    if (tid < k && sh.members[tid] == 0) sh.any_empty = 1;
    __syncthreads();
    if (sh.any_empty) {
      // Empty clusters take the point farthest from its centroid among clusters with >= 2
      // members, lowest index on ties; a point moves at most once.
      for (int e = 0; e < k; ++e) {
        if (sh.members[e] != 0) continue;  // uniform: shared memory, synchronised below
        u64 key = 0;
        for (std::uint32_t i = tid; i < n; i += kThreads) {
          const std::uint8_t l = label[i];
          if (!(l & kMoved) && sh.members[l] >= 2) {
            const float d = math::dist2(X[i], Y[i], Z[i], sh.cx[l], sh.cy[l], sh.cz[l]);
            const u64 kk = (static_cast<u64>(__float_as_uint(d)) << 32) | (0xFFFFFFFFu - i);
            key = kk > key ? kk : key;
          }
        }
        key = block_max(sh, key);
        if (tid == 0 && key != 0) {
          const std::uint32_t far = 0xFFFFFFFFu - static_cast<std::uint32_t>(key);
          const int from = label[far];
          const long long w = W[far];
          sh.sx[from] -= w * X[far];
          sh.sy[from] -= w * Y[far];
          sh.sz[from] -= w * Z[far];
          sh.sw[from] -= static_cast<u64>(w);
          --sh.members[from];
          sh.sx[e] = w * X[far];
          sh.sy[e] = w * Y[far];
          sh.sz[e] = w * Z[far];
          sh.sw[e] = static_cast<u64>(w);
          sh.members[e] = 1;
          label[far] = static_cast<std::uint8_t>(e) | kMoved;
        }
        __syncthreads();
      }
    }
    if (tid < k) {
      const float nx = math::centroid_coord(sh.sx[tid], sh.sw[tid]);
      const float ny = math::centroid_coord(sh.sy[tid], sh.sw[tid]);
      const float nz = math::centroid_coord(sh.sz[tid], sh.sw[tid]);
      const float d2 = math::dist2(nx, ny, nz, sh.cx[tid], sh.cy[tid], sh.cz[tid]);
      atomicMax(&sh.shift_bits, __float_as_uint(d2));  // d2 >= 0: bits order as values
      sh.cx[tid] = nx;
      sh.cy[tid] = ny;
      sh.cz[tid] = nz;
    }
    __syncthreads();
    if (__uint_as_float(sh.shift_bits) <= limit2) break;
  }

  // ---- Heaviest member of each cluster, lowest index on ties.
  __syncthreads();
  if (tid < k) sh.heavy[tid] = 0;
  __syncthreads();
  for (std::uint32_t i = tid; i < n; i += kThreads) {
    const int l = label[i] & ~kMoved;
    atomicMax(&sh.heavy[l], (static_cast<u64>(W[i]) << 32) | (0xFFFFFFFFu - i));
  }
  __syncthreads();
  if (tid < k) {
    out[tid] = ClusterStats{{sh.sx[tid], sh.sy[tid], sh.sz[tid]},
                            sh.sw[tid],
                            0xFFFFFFFFu - static_cast<std::uint32_t>(sh.heavy[tid]),
                            0};
  }
  if (tid == 0) {
    R.count[img] = static_cast<std::uint16_t>(k);
    R.iterations[img] = static_cast<std::uint16_t>(iterations);
  }
}

// Images of [from_n, to_n) points only (the others are left to another launch).
template <int KP, bool kFilter>
__global__ void __launch_bounds__(kThreads)
    kmeans_batch_kernel(DevicePoints P, DeviceScratch S, int k, std::uint64_t seed, int max_iter,
                        float limit2, DeviceResults R, KernelMode mode, std::uint32_t from_n,
                        std::uint32_t to_n) {
  const std::uint32_t n = P.offsets[blockIdx.x + 1] - P.offsets[blockIdx.x];
  if (n < from_n || n >= to_n) return;
  kmeans_image<KP, kFilter>(P, S, k, seed, max_iter, limit2, R, mode, blockIdx.x);
}

// kmeans_batch_kernel<KP, kFilter> on the images of [from_n, to_n) points (default: all).
template <int KP, bool kFilter>
void launch(const DevicePoints& points, const DeviceScratch& scratch, const KMeansParams& params,
            float shift_limit2, const DeviceResults& out, cudaStream_t stream, KernelMode mode,
            std::uint32_t from_n = 0, std::uint32_t to_n = 0xFFFFFFFFu) {
  std::size_t dynamic = 0;
  if constexpr (KP > 0) {
    dynamic = sizeof(ColumnsShared) + columns::column_bytes(params.k, kThreads);
    if constexpr (kFilter) dynamic = std::max(dynamic, sizeof(columns::SeedShared<kThreads>));
    PALETTE_CUDA_TRY(cudaFuncSetAttribute(kmeans_batch_kernel<KP, kFilter>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(dynamic)));
  }
  kmeans_batch_kernel<KP, kFilter><<<points.images, kThreads, dynamic, stream>>>(
      points, scratch, params.k, params.seed, params.max_iter, shift_limit2, out, mode, from_n,
      to_n);
  PALETTE_CUDA_CHECK_LAUNCH();
}

// The columns variant with the register padding for k (k <= columns::kMaxK).
template <bool kFilter>
void launch_columns(const DevicePoints& points, const DeviceScratch& scratch,
                    const KMeansParams& params, float shift_limit2, const DeviceResults& out,
                    cudaStream_t stream, KernelMode mode) {
  columns::with_padded_k(params.k, [&](auto kp) {
    launch<decltype(kp)::value, kFilter>(points, scratch, params, shift_limit2, out, stream, mode);
  });
}

// ---- CudaLloyd::kColumnsCluster: one image per thread-block cluster of C blocks, its points in
// the blocks' shared memory for the whole run (lloyd_cluster.hpp). sm_90 and newer.

using ClusterShared = columns::ClusterShared<kThreads>;
constexpr std::size_t kClusterSharedBytes = (sizeof(ClusterShared) + 15) / 16 * 16;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
// The Cluster interface of lloyd_cluster.hpp for a thread-block cluster.
struct DeviceCluster {
  __device__ int rank() const {
    return static_cast<int>(cooperative_groups::this_cluster().block_rank());
  }
  __device__ int size() const {
    return static_cast<int>(cooperative_groups::this_cluster().num_blocks());
  }
  __device__ void sync() const { cooperative_groups::this_cluster().sync(); }
  template <class U>
  __device__ U* map(U* p, int r) const {
    return cooperative_groups::this_cluster().map_shared_rank(p, static_cast<unsigned>(r));
  }
};
#endif

// The k-means++ seeds come from a seeding launch before it (kmeans_batch_kernel<KP, true> in
// KernelMode::kSeedOnly, which leaves them in R.clusters[img * k + j].mode): seeding is one
// block's work, which here would keep the cluster's other blocks waiting.
// Dynamic shared memory per block: ClusterShared, then `area_bytes` for the columns (or, for an
// image block 0 runs alone, its seeding), then the block's share of the points (k = 8, 65,536
// points, 8 blocks: 105 KB, so two blocks share an SM; the launch bounds keep their registers
// within half the SM's too). Images whose weights do not fit 16 bits or 32-bit columns are run by
// block 0 alone, as kmeans_batch_kernel<KP, true> runs them. Only images of at least `from_n`
// points (smaller ones are another launch's).
template <int KP>
__global__ void __launch_bounds__(kThreads, 2)
    kmeans_cluster_kernel(DevicePoints P, DeviceScratch S, int k, std::uint64_t seed, int max_iter,
                          float limit2, DeviceResults R, std::uint32_t area_bytes,
                          std::uint32_t from_n) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  extern __shared__ __align__(16) unsigned char dynamic_shared[];
  const DeviceCluster cl;
  const int C = cl.size(), rank = cl.rank();
  const std::uint32_t img = blockIdx.x / static_cast<std::uint32_t>(C);
  const std::uint32_t off = P.offsets[img];
  const std::uint32_t n = P.offsets[img + 1] - off;
  if (n < from_n) return;
  if (n <= static_cast<std::uint32_t>(k)) {  // no seeding, no Lloyd: block 0 copies the colours
    if (rank == 0) {
      kmeans_image<KP, true>(P, S, k, seed, max_iter, limit2, R, KernelMode::kFull, img);
    }
    return;
  }
  auto& cs = *reinterpret_cast<ClusterShared*>(dynamic_shared);
  unsigned char* area = dynamic_shared + kClusterSharedBytes;
  auto* pts = reinterpret_cast<columns::PackedPoint*>(area + area_bytes);
  const columns::ImageRef ref{P.x + off, P.y + off, P.z + off, P.weight + off, n};
  ClusterStats* out = R.clusters + static_cast<std::size_t>(img) * k;
  const int tid = static_cast<int>(threadIdx.x);
  if (tid < k) cs.seeds[tid] = static_cast<int>(out[tid].mode);
  const columns::Share share = columns::share_of(n, rank, C);
  const columns::ImageSummary sum =
      columns::load_share<kThreads>(DeviceBlock{}, cl, cs, ref, share, pts);
  const std::uint32_t every = columns::flush_tiles(sum.heaviest, sum.total, sum.max_abs, sum.zero);
  if (sum.heaviest > 0xFFFF || every == 0) {
    cl.sync();  // every block has read the others' summaries
    if (rank == 0) {
      kmeans_image<KP, true>(P, S, k, seed, max_iter, limit2, R, KernelMode::kFull, img);
    }
    return;
  }
  columns::ImageRef lref = ref;
  lref.max_abs = sum.max_abs;
  const int iterations = columns::lloyd_cluster<kThreads, KP>(
      DeviceBlock{}, cl, cs, reinterpret_cast<std::int32_t*>(area), pts, share, lref, cs.seeds, k,
      max_iter, limit2, every, out);
  if (rank == 0 && tid == 0) {
    R.count[img] = static_cast<std::uint16_t>(k);
    R.iterations[img] = static_cast<std::uint16_t>(iterations);
  }
#else
  __trap();  // never launched below sm_90 (plan_cluster checks)
#endif
}

// Points per thread below which an image is left to one block (kmeans_batch_kernel<KP, true>):
// with fewer, a pass is mostly its fixed end (folds, barriers), and an image that small is read
// from the L2 cache by the single-block kernel anyway (396 resident images of 16,384 points are
// the 50 MB of an H100's L2).
constexpr std::uint32_t kClusterPointsPerThread = 16;

// How kmeans_cluster_kernel<KP> runs a batch: blocks per image (0: it cannot run here), the
// dynamic shared memory of each, and the smallest image it takes.
struct ClusterPlan {
  int blocks = 0;
  std::size_t dynamic = 0, area = 0;
  std::uint32_t from_n = 0;
};

// The cluster size that keeps the most blocks resident (the smallest on ties). None when the
// device or the batch cannot take the kernel: compute capability below 9.0, the batch's largest
// image unknown or too large for shared memory.
template <int KP>
ClusterPlan plan_cluster(std::uint32_t images, std::uint32_t max_points, int k) {
  ClusterPlan plan;
  if (max_points == 0 || images == 0) return plan;
  int device = 0, major = 0, optin = 0;
  PALETTE_CUDA_TRY(cudaGetDevice(&device));
  PALETTE_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (major < 9) return plan;
  PALETTE_CUDA_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const auto kernel = kmeans_cluster_kernel<KP>;
  cudaFuncAttributes attrs{};
  PALETTE_CUDA_TRY(cudaFuncGetAttributes(&attrs, kernel));
  const std::size_t area = (std::max<std::size_t>(sizeof(columns::SeedShared<kThreads>),
                                                  columns::column_bytes(k, kThreads)) +
                            15) /
                           16 * 16;
  // All of the SM's L1/shared memory as shared memory: two blocks of ~110 KB (k = 8) need 224 of
  // the H100's 228 KB, and the points are read from device memory once, so L1 has little to do.
  PALETTE_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                        cudaSharedmemCarveoutMaxShared));
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cudaLaunchConfig_t config{};
  config.blockDim = dim3(kThreads);
  config.attrs = &cluster;
  config.numAttrs = 1;
  int best_blocks = 0;
  for (const int c : {2, 4, 8}) {
    const std::size_t dynamic =
        kClusterSharedBytes + area +
        columns::share_capacity(max_points, c) * sizeof(columns::PackedPoint);
    if (dynamic + attrs.sharedSizeBytes > static_cast<std::size_t>(optin)) continue;
    PALETTE_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(dynamic)));
    config.gridDim = dim3(images * static_cast<unsigned>(c));
    config.dynamicSmemBytes = dynamic;
    cluster.val.clusterDim.x = static_cast<unsigned>(c);
    cluster.val.clusterDim.y = 1;
    cluster.val.clusterDim.z = 1;
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
      (void)cudaGetLastError();  // not an error of the run: this size is not possible here
      continue;
    }
    if (clusters * c > best_blocks) {
      best_blocks = clusters * c;
      plan = {c, dynamic, area, static_cast<std::uint32_t>(c) * kThreads * kClusterPointsPerThread};
    }
  }
  return plan;
}

ClusterPlan plan_cluster_any(std::uint32_t images, std::uint32_t max_points, int k) {
  return columns::with_padded_k(
      k, [&](auto kp) { return plan_cluster<decltype(kp)::value>(images, max_points, k); });
}

// Images below plan.from_n points by kmeans_batch_kernel<KP, true>; the others seeded by it,
// then kmeans_cluster_kernel<KP> as `plan` says. KernelMode::kLloydOnly: the last alone.
template <int KP>
void launch_cluster(const DevicePoints& points, const DeviceScratch& scratch,
                    const KMeansParams& params, float shift_limit2, const DeviceResults& out,
                    cudaStream_t stream, const ClusterPlan& plan, KernelMode mode) {
  if (mode != KernelMode::kLloydOnly) {
    launch<KP, true>(points, scratch, params, shift_limit2, out, stream, KernelMode::kFull, 0,
                     plan.from_n);
    if (points.max_points < plan.from_n) return;  // no image for the clusters
    launch<KP, true>(points, scratch, params, shift_limit2, out, stream, KernelMode::kSeedOnly,
                     plan.from_n);
  }
  const auto kernel = kmeans_cluster_kernel<KP>;
  PALETTE_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(plan.dynamic)));
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = static_cast<unsigned>(plan.blocks);
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(points.images * static_cast<unsigned>(plan.blocks));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = plan.dynamic;
  config.stream = stream;
  config.attrs = &cluster;
  config.numAttrs = 1;
  PALETTE_CUDA_TRY(cudaLaunchKernelEx(&config, kernel, points, scratch, params.k, params.seed,
                                      params.max_iter, shift_limit2, out,
                                      static_cast<std::uint32_t>(plan.area), plan.from_n));
  PALETTE_CUDA_CHECK_LAUNCH();
}

void launch_cluster_any(const DevicePoints& points, const DeviceScratch& scratch,
                        const KMeansParams& params, float shift_limit2, const DeviceResults& out,
                        cudaStream_t stream, const ClusterPlan& plan, KernelMode mode) {
  columns::with_padded_k(params.k, [&](auto kp) {
    launch_cluster<decltype(kp)::value>(points, scratch, params, shift_limit2, out, stream, plan,
                                        mode);
  });
}

__global__ void fault_kernel() { __trap(); }

}  // namespace

int cluster_blocks(std::uint32_t images, std::uint32_t max_points, int k) {
  if (k > columns::kMaxK) return 0;
  return plan_cluster_any(images, max_points, k).blocks;
}

void launch_fault(cudaStream_t stream) {
  fault_kernel<<<1, 1, 0, stream>>>();
  PALETTE_CUDA_CHECK_LAUNCH();
}

void launch_kmeans_batch(const DevicePoints& points, const DeviceScratch& scratch,
                         const KMeansParams& params, float shift_limit2, const DeviceResults& out,
                         cudaStream_t stream, KernelMode mode, CudaLloyd lloyd) {
  if (points.images == 0) return;
  if (mode == KernelMode::kLloydOnly) {
    const ClusterPlan plan = lloyd == CudaLloyd::kColumnsCluster && params.k <= columns::kMaxK
                                 ? plan_cluster_any(points.images, points.max_points, params.k)
                                 : ClusterPlan{};
    if (plan.blocks == 0) {
      throw Error(
          "KernelMode::kLloydOnly needs the cluster kernel (columns-cluster, k <= 16, "
          "compute capability 9.0 or newer)");
    }
    return launch_cluster_any(points, scratch, params, shift_limit2, out, stream, plan, mode);
  }
  if (lloyd == CudaLloyd::kWarp || params.k > columns::kMaxK) {
    return launch<0, false>(points, scratch, params, shift_limit2, out, stream, mode);
  }
  if (lloyd == CudaLloyd::kColumnsCluster && mode == KernelMode::kFull) {
    const ClusterPlan plan = plan_cluster_any(points.images, points.max_points, params.k);
    if (plan.blocks > 0) {
      return launch_cluster_any(points, scratch, params, shift_limit2, out, stream, plan, mode);
    }
  }
  if (lloyd == CudaLloyd::kColumnsFma || lloyd == CudaLloyd::kColumnsCluster) {
    return launch_columns<true>(points, scratch, params, shift_limit2, out, stream, mode);
  }
  launch_columns<false>(points, scratch, params, shift_limit2, out, stream, mode);
}

}  // namespace palette::cuda
