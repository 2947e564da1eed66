#pragma once
// One image by one thread block, in named stages: copy_colours (n <= k), seed (greedy
// k-means++), Lloyd by columns (lloyd_columns.hpp) or by warp sums, and the result. Included by
// the product's kernel (kmeans_kernels.cu) and by the GPU tests' kernels, which run single
// stages.
//
// Determinism: every decision follows src/core/kmeans_cpu.cpp through the shared rules of
// kmeans_math.hpp. Distances and sums are integers where the CPU uses integers, float distances
// go through math::dist2 (explicitly rounded operations, no FMA), sums of weight * coordinate
// are exact 64-bit integers (integer atomics are order-independent), and every argmin/argmax
// breaks ties towards the lowest index, as the CPU's sequential loops do.

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "kmeans_kernels.cuh"
#include "lloyd_columns.hpp"
#include "palette/kmeans_math.hpp"

namespace palette::cuda::image {

inline constexpr int kThreads = 256;
inline constexpr std::uint8_t kMoved = 0x80;  // label bit: moved into an empty cluster
using u64 = unsigned long long;
using BlockScan = cub::BlockScan<u64, kThreads>;
using BlockReduce = cub::BlockReduce<u64, kThreads>;

/// The block's shared state (static shared memory; the columns path adds dynamic memory).
struct Shared {
  union {
    BlockScan::TempStorage scan;
    BlockReduce::TempStorage reduce;
  } temp;
  float cx[kMaxColors], cy[kMaxColors], cz[kMaxColors];
  long long sx[kMaxColors], sy[kMaxColors], sz[kMaxColors];
  u64 sw[kMaxColors];
  unsigned members[kMaxColors];
  u64 mode[kMaxColors];
  int centre[kMaxColors];
  u64 target[kMaxKmeansppTrials];
  int cand[kMaxKmeansppTrials];
  u64 carry;
  u64 value;
  unsigned shift_bits;
  int any_empty;
};

/// One image of a batch as the block sees it.
struct Image {
  const std::int16_t* x;
  const std::int16_t* y;
  const std::int16_t* z;
  const std::uint32_t* w;
  std::uint32_t n;
  std::uint32_t offset;  ///< of its first point in the batch
  SeedPoint* sample;
  std::uint8_t* label;
  ClusterStats* out;  ///< k entries
};

__device__ inline Image image_of(const DevicePoints& P, const DeviceScratch& S,
                                 const DeviceResults& R, int k, std::uint32_t img) {
  const std::uint32_t off = P.offsets[img];
  return {P.x + off,
          P.y + off,
          P.z + off,
          P.weight + off,
          P.offsets[img + 1] - off,
          off,
          S.sample + off,
          S.label + off,
          R.clusters + static_cast<std::size_t>(img) * k};
}

__device__ inline u64 block_sum(Shared& sh, u64 v) {
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

__device__ inline u64 block_max(Shared& sh, u64 v) {
  const u64 m = BlockReduce(sh.temp.reduce).Reduce(v, MaxOp{});
  if (threadIdx.x == 0) sh.value = m;
  __syncthreads();
  const u64 r = sh.value;
  __syncthreads();
  return r;
}

/// Inverse-CDF sampling over point values in index order: for each target sh.target[t]
/// (t < targets), the point math::draw_hits() names (std::upper_bound over the prefix sums on
/// the CPU), into sh.cand[t].
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
        if (math::draw_hits(excl, v, sh.target[t])) sh.cand[t] = static_cast<int>(i);
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

/// n <= k: every distinct colour is its own cluster.
__device__ inline void copy_colours(const Image& im) {
  for (std::uint32_t i = threadIdx.x; i < im.n; i += kThreads) {
    const long long w = im.w[i];
    im.out[i] = ClusterStats{{w * im.x[i], w * im.y[i], w * im.z[i]}, static_cast<u64>(w), i, 0};
  }
}

/// One greedy k-means++ round for centre c >= 1 over the gathered subsample (m entries): draws
/// `trials` candidates with probability proportional to weight * closest (the potential `pot`
/// in all), keeps the one whose potential is least (math::better_candidate), writes its point
/// index to sh.centre[c] (thread 0) and lowers the entries' closest distances to it. Returns the
/// new potential.
__device__ inline u64 seed_round(Shared& sh, const Image& im, std::uint32_t m, int c, int trials,
                                 std::uint64_t seed, u64 pot) {
  const int tid = static_cast<int>(threadIdx.x);
  SeedPoint* sample = im.sample;
  if (tid < trials) sh.target[tid] = math::kmeanspp_target(seed, c, tid, pot);
  __syncthreads();
  sample_points(sh, m, trials, [&](std::uint32_t j) {
    const SeedPoint s = load_seed_point(sample + j);
    return static_cast<u64>(s.w) * s.closest;
  });
  int cand[kMaxKmeansppTrials], cx[kMaxKmeansppTrials], cy[kMaxKmeansppTrials],
      cz[kMaxKmeansppTrials];
  u64 acc[kMaxKmeansppTrials];
#pragma unroll
  for (int t = 0; t < kMaxKmeansppTrials; ++t) {
    const int j = t < trials ? sh.cand[t] : sh.cand[0];
    cand[t] = static_cast<int>(math::seed_sample_index(static_cast<std::uint32_t>(j), im.n));
    const SeedPoint s = load_seed_point(sample + j);
    cx[t] = s.x;
    cy[t] = s.y;
    cz[t] = s.z;
    acc[t] = 0;
  }
  for (std::uint32_t j = tid; j < m; j += kThreads) {
    const SeedPoint s = load_seed_point(sample + j);
#pragma unroll
    for (int t = 0; t < kMaxKmeansppTrials; ++t) {
      if (t < trials) {
        acc[t] += math::potential_term(s.w, s.closest,
                                       math::dist2_exact(s.x, s.y, s.z, cx[t], cy[t], cz[t]));
      }
    }
  }
  int best = 0;
  u64 best_pot = 0;
#pragma unroll
  for (int t = 0; t < kMaxKmeansppTrials; ++t) {
    if (t < trials) {
      const u64 p = block_sum(sh, acc[t]);
      if (math::better_candidate(t, p, best_pot)) {
        best = t;
        best_pot = p;
      }
    }
  }
  int centre = 0, ax = 0, ay = 0, az = 0;
#pragma unroll
  for (int t = 0; t < kMaxKmeansppTrials; ++t) {
    if (t == best) {
      centre = cand[t];
      ax = cx[t];
      ay = cy[t];
      az = cz[t];
    }
  }
  if (tid == 0) sh.centre[c] = centre;
  for (std::uint32_t j = tid; j < m; j += kThreads) {
    const SeedPoint s = load_seed_point(sample + j);
    const std::uint32_t d = math::dist2_exact(s.x, s.y, s.z, ax, ay, az);
    if (d < s.closest) sample[j].closest = d;
  }
  return best_pot;
}

/// Greedy k-means++ seeding on exact integer distances (kmeanspp_seeds on the CPU), over the
/// evenly spread subsample of at most math::kSeedSample points: the chosen point indices into
/// sh.centre[0..k), visible to the block on return. The subsample is gathered first into
/// im.sample (entry j: point seed_sample_index(j, n)) so that the k rounds read it contiguously,
/// 16 bytes per point, instead of a 32-byte sector per coordinate.
__device__ inline void seed(Shared& sh, const Image& im, int k, std::uint64_t seed) {
  const int tid = static_cast<int>(threadIdx.x);
  const std::uint32_t n = im.n;
  const std::uint32_t m = n < math::kSeedSample ? n : math::kSeedSample;
  SeedPoint* sample = im.sample;
  u64 total = 0;
  for (std::uint32_t j = tid; j < m; j += kThreads) {
    const std::uint32_t i = math::seed_sample_index(j, n);
    const std::uint32_t w = im.w[i];
    store_seed_point(sample + j, im.x[i], im.y[i], im.z[i], w);
    total += w;
  }
  total = block_sum(sh, total);  // also makes the gathered sample visible to the block
  // The first centre: drawn by weight.
  if (tid == 0) sh.target[0] = math::kmeanspp_target(seed, 0, 0, total);
  __syncthreads();
  sample_points(sh, m, 1, [&](std::uint32_t j) { return static_cast<u64>(sample[j].w); });
  const int centre =
      static_cast<int>(math::seed_sample_index(static_cast<std::uint32_t>(sh.cand[0]), n));
  if (tid == 0) sh.centre[0] = centre;
  u64 pot = 0;
  const int ax = im.x[centre], ay = im.y[centre], az = im.z[centre];
  for (std::uint32_t j = tid; j < m; j += kThreads) {
    const SeedPoint s = load_seed_point(sample + j);
    const std::uint32_t d = math::dist2_exact(s.x, s.y, s.z, ax, ay, az);
    sample[j].closest = d;
    pot += static_cast<u64>(s.w) * d;
  }
  pot = block_sum(sh, pot);
  const int trials = math::kmeanspp_trials(k);
  for (int c = 1; c < k; ++c) pot = seed_round(sh, im, m, c, trials, seed, pot);
  __syncthreads();
}

/// What one scan of the image tells the Lloyd stage: the heaviest weight, and how often 32-bit
/// columns must be folded (columns::flush_tiles; 0: the columns cannot hold this image).
struct Summary {
  u64 heaviest;
  std::uint32_t flush_every;
};

__device__ inline Summary summarise(Shared& sh, const Image& im, bool columns) {
  u64 heaviest = 0, weight_sum = 0, max_abs = 0, zero = 0;
  for (std::uint32_t i = threadIdx.x; i < im.n; i += kThreads) {
    const std::uint32_t w = im.w[i];
    heaviest = w > heaviest ? w : heaviest;
    if (columns) {
      weight_sum += w;
      zero |= w == 0;
      for (const int v : {int{im.x[i]}, int{im.y[i]}, int{im.z[i]}}) {
        const u64 a = static_cast<u64>(v < 0 ? -v : v);
        max_abs = a > max_abs ? a : max_abs;
      }
    }
  }
  Summary s{block_max(sh, heaviest), 0};
  if (columns) {
    weight_sum = block_sum(sh, weight_sum);
    max_abs = block_max(sh, max_abs);
    zero = block_max(sh, zero);
    s.flush_every = columns::flush_tiles(s.heaviest, weight_sum,
                                         static_cast<std::uint32_t>(max_abs), zero != 0);
  }
  return s;
}

/// The Block interface (block.hpp) for a CUDA thread block.
struct DeviceBlock {
  Shared* sh;
  __device__ int tid() const { return static_cast<int>(threadIdx.x); }
  __device__ void sync() const { __syncthreads(); }
  __device__ u64 max(u64 v) const { return block_max(*sh, v); }
};

using ColumnsShared = columns::Shared<kThreads>;

/// Dynamic shared memory of the columns stage at k colours.
inline std::size_t columns_dynamic_bytes(int k) {
  return sizeof(ColumnsShared) + columns::column_bytes(k, kThreads);
}

/// Lloyd by columns (k <= KP <= columns::kMaxK, flush_every != 0) in dynamic shared memory:
/// ColumnsShared, then the columns. Writes im.out; returns the iterations.
template <int KP>
__device__ int lloyd_columns(Shared& sh, const Image& im, int k, int max_iter, float limit2,
                             std::uint32_t flush_every) {
  extern __shared__ __align__(16) unsigned char dynamic_shared[];
  auto& cs = *reinterpret_cast<ColumnsShared*>(dynamic_shared);
  auto* col = reinterpret_cast<std::int32_t*>(dynamic_shared + sizeof(ColumnsShared));
  const columns::ImageRef ref{im.x, im.y, im.z, im.w, im.n, im.offset % columns::kQuad};
  return columns::lloyd<kThreads, KP>(DeviceBlock{&sh}, cs, col, ref, sh.centre, k, max_iter,
                                      limit2, flush_every, im.out);
}

// Weights up to this keep a warp's sums of weight * coordinate (|coordinate| < 2^15) within
// 32 bits: 32 * 2047 * 32768 < 2^31.
inline constexpr std::uint32_t kNarrowWeight = 2047;

/// Adds each point's weight and weighted coordinates to its cluster. Lanes of a warp with the
/// same cluster first sum among themselves, so one lane per cluster touches shared memory. The
/// sums are exact: 32-bit when the image's weights are small (`narrow`), else each 64-bit value
/// split into two 32-bit sums.
__device__ inline void accumulate(Shared& sh, bool narrow, int label, std::uint32_t w, long long wx,
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

/// One assignment pass of the warp path: each point's nearest centroid into im.label, the
/// clusters' sums and member counts into sh.
__device__ inline void assign_warp(Shared& sh, const Image& im, int k, bool narrow) {
  const int tid = static_cast<int>(threadIdx.x);
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
  for (std::uint32_t base = 0; base < im.n; base += kThreads) {
    const std::uint32_t i = base + tid;
    int l = -1;
    std::uint32_t w = 0;
    long long wx = 0, wy = 0, wz = 0;
    if (i < im.n) {
      const float px = im.x[i], py = im.y[i], pz = im.z[i];
      float b = math::dist2(px, py, pz, sh.cx[0], sh.cy[0], sh.cz[0]);
      l = 0;
      for (int j = 1; j < k; ++j) {
        math::keep_nearer(math::dist2(px, py, pz, sh.cx[j], sh.cy[j], sh.cz[j]), j, b, l);
      }
      im.label[i] = static_cast<std::uint8_t>(l);
      w = im.w[i];
      wx = static_cast<long long>(w) * im.x[i];
      wy = static_cast<long long>(w) * im.y[i];
      wz = static_cast<long long>(w) * im.z[i];
    }
    accumulate(sh, narrow, l, w, wx, wy, wz);
  }
  __syncthreads();
}

/// The empty-cluster rule (kmeans_math.hpp) on the warp path's labels and sums.
__device__ inline void refill_warp(Shared& sh, const Image& im, int k) {
  const int tid = static_cast<int>(threadIdx.x);
  if (tid < k && sh.members[tid] == 0) sh.any_empty = 1;
  __syncthreads();
  if (!sh.any_empty) return;
  for (int e = 0; e < k; ++e) {
    if (sh.members[e] != 0) continue;  // uniform: shared memory, synchronised below
    u64 key = 0;
    for (std::uint32_t i = tid; i < im.n; i += kThreads) {
      const std::uint8_t l = im.label[i];
      if (!(l & kMoved) && sh.members[l] >= math::kMinMembersToGive) {
        const float d = math::dist2(im.x[i], im.y[i], im.z[i], sh.cx[l], sh.cy[l], sh.cz[l]);
        const u64 kk = math::refill_key(d, i);
        key = kk > key ? kk : key;
      }
    }
    key = block_max(sh, key);
    if (tid == 0 && key != 0) {
      const std::uint32_t far = math::argmax_index(key);
      const int from = im.label[far];
      const long long w = im.w[far];
      sh.sx[from] -= w * im.x[far];
      sh.sy[from] -= w * im.y[far];
      sh.sz[from] -= w * im.z[far];
      sh.sw[from] -= static_cast<u64>(w);
      --sh.members[from];
      sh.sx[e] = w * im.x[far];
      sh.sy[e] = w * im.y[far];
      sh.sz[e] = w * im.z[far];
      sh.sw[e] = static_cast<u64>(w);
      sh.members[e] = 1;
      im.label[far] = static_cast<std::uint8_t>(e) | kMoved;
    }
    __syncthreads();
  }
}

/// Lloyd by warp sums, from the centroids at sh.centre: writes im.out; returns the iterations.
__device__ inline int lloyd_warp(Shared& sh, const Image& im, int k, int max_iter, float limit2,
                                 u64 heaviest) {
  const int tid = static_cast<int>(threadIdx.x);
  const bool narrow = heaviest <= kNarrowWeight;
  int iterations = 0;
  for (int it = 1; it <= max_iter; ++it) {
    iterations = it;
    __syncthreads();
    assign_warp(sh, im, k, narrow);
    refill_warp(sh, im, k);
    if (tid < k) {
      const float d2 = math::update_centroid(sh.sx[tid], sh.sy[tid], sh.sz[tid], sh.sw[tid],
                                             sh.cx[tid], sh.cy[tid], sh.cz[tid]);
      atomicMax(&sh.shift_bits, math::float_bits(d2));  // d2 >= 0: bits order as values
    }
    __syncthreads();
    if (__uint_as_float(sh.shift_bits) <= limit2) break;
  }

  // The representative point of each cluster (math::mode_key).
  __syncthreads();
  if (tid < k) sh.mode[tid] = 0;
  __syncthreads();
  for (std::uint32_t i = tid; i < im.n; i += kThreads) {
    const int l = im.label[i] & ~kMoved;
    atomicMax(&sh.mode[l], static_cast<u64>(math::mode_key(im.w[i], i)));
  }
  __syncthreads();
  if (tid < k) {
    im.out[tid] = ClusterStats{
        {sh.sx[tid], sh.sy[tid], sh.sz[tid]}, sh.sw[tid], math::argmax_index(sh.mode[tid]), 0};
  }
  return iterations;
}

/// Image `img` of the batch by this block (every thread of it). KP = 0: Lloyd by warp sums
/// only. KP > 0: by columns for k <= KP (centroids padded to KP in registers), in dynamic shared
/// memory (columns_dynamic_bytes), falling back to warp sums for images whose weights do not
/// fit 32-bit columns.
template <int KP>
__device__ void kmeans_image(const DevicePoints& P, const DeviceScratch& S, int k,
                             std::uint64_t seed_value, int max_iter, float limit2,
                             const DeviceResults& R, std::uint32_t img) {
  __shared__ Shared sh;
  const Image im = image_of(P, S, R, k, img);
  const int tid = static_cast<int>(threadIdx.x);
  int iterations = 0;
  int count = k;
  if (im.n <= static_cast<std::uint32_t>(k)) {
    copy_colours(im);
    count = static_cast<int>(im.n);
  } else {
    seed(sh, im, k, seed_value);
    if (tid < k) {
      sh.cx[tid] = im.x[sh.centre[tid]];
      sh.cy[tid] = im.y[sh.centre[tid]];
      sh.cz[tid] = im.z[sh.centre[tid]];
    }
    const Summary s = summarise(sh, im, KP > 0);
    if constexpr (KP > 0) {
      if (s.flush_every != 0) {
        iterations = lloyd_columns<KP>(sh, im, k, max_iter, limit2, s.flush_every);
      } else {
        iterations = lloyd_warp(sh, im, k, max_iter, limit2, s.heaviest);
      }
    } else {
      iterations = lloyd_warp(sh, im, k, max_iter, limit2, s.heaviest);
    }
  }
  if (tid == 0) {
    R.count[img] = static_cast<std::uint16_t>(count);
    R.iterations[img] = static_cast<std::uint16_t>(iterations);
  }
}

}  // namespace palette::cuda::image
