#pragma once
// Lloyd iterations of one image by one thread block, two variants of the CUDA kernel (see
// CudaLloyd and docs/gpu-notes.md):
//
// - lloyd(), "columns": every thread adds its points into its own column of 32-bit sums in
//   shared memory (one row per cluster and value: weight, weight*x, weight*y, weight*z), and the
//   block folds the columns into exact 64-bit totals once per pass (or every few tiles when the
//   image's weights could overflow 32 bits). Per point that is a fixed handful of conflict-free
//   shared-memory operations, whatever k is; no warp vote, reduction or atomic. Points are not
//   labelled in memory: the rare steps that need a point's cluster (empty-cluster refill,
//   heaviest member) recompute it from the centroids of that pass, bit for bit the same answer.
// - lloyd_bounds(), "bounds": the same sums, kept across passes and updated only by points that
//   change cluster, and Hamerly's bounds, so that a point that cannot change cluster is skipped
//   without reading its coordinates.
//
// The code is written against a two-function Block interface (tid(), sync()), so the same
// source runs on the device (one CUDA block, __syncthreads) and on the host in the unit tests
// (one std::thread per thread of the block, a std::barrier): machines without a GPU still check
// this exact code against the CPU backend. Everything that crosses threads goes through shared
// or global state between two sync() calls; there are no atomics and no warp-synchronous steps.
//
// Results are identical to lloyd_image (src/core/kmeans_cpu.cpp): the same float arithmetic
// (kmeans_math.hpp), integer sums, lowest-index tie breaks, the same empty-cluster rule.

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "palette/hd.hpp"
#include "palette/kmeans.hpp"
#include "palette/kmeans_math.hpp"

#if defined(__CUDACC__)
#define PALETTE_BLOCK_FN __device__ __forceinline__
#else
#define PALETTE_BLOCK_FN inline
#endif
#if defined(__CUDACC__)
#define PALETTE_UNROLL _Pragma("unroll")
#else
#define PALETTE_UNROLL _Pragma("GCC unroll 16")
#endif

namespace palette::columns {

/// Largest k these variants run (larger k use the warp-sum path).
inline constexpr int kMaxK = 16;
/// Columns are folded in segments of this many threads (one bank each).
inline constexpr int kSegment = 32;

/// Centroids are kept in registers, padded to a compile-time count (unused ones at +inf, never
/// nearest): the smallest of these at least k.
PALETTE_HD int padded_k(int k) { return k <= 4 ? 4 : k <= 6 ? 6 : k <= 8 ? 8 : k <= 12 ? 12 : 16; }

/// Shared-memory bytes of the columns of `threads` threads at k colours.
PALETTE_HD std::uint32_t column_bytes(int k, int threads) {
  return static_cast<std::uint32_t>(4 * k * threads) * sizeof(std::int32_t);
}

/// Tiles (of one point per thread) a thread's 32-bit column sums may take before they must be
/// folded, for an image whose heaviest point weighs `max_weight`, whose weights sum to
/// `total_weight` and whose largest coordinate magnitude is `max_abs`: every column sum stays
/// within 2^31 - 1. 0xFFFFFFFF: fold once per pass. 0: the weights are too large (or zero) for
/// 32-bit columns; use the warp-sum path.
PALETTE_HD std::uint32_t flush_tiles(std::uint64_t max_weight, std::uint64_t total_weight,
                                     std::uint32_t max_abs, bool zero_weight) {
  if (zero_weight) return 0;  // an empty cluster is found by its zero weight
  // Weight that keeps sum(weight * |coordinate|) and sum(weight) within 2^31 - 1.
  const std::uint64_t budget = 0x7FFFFFFFull / (max_abs > 0 ? max_abs : 1);
  if (total_weight <= budget) return 0xFFFFFFFFu;
  if (max_weight > budget) return 0;
  return static_cast<std::uint32_t>(budget / max_weight);
}

/// One image's points.
struct ImageRef {
  const std::int16_t* x;
  const std::int16_t* y;
  const std::int16_t* z;
  const std::uint32_t* w;
  std::uint32_t n;
};

/// The block's shared state besides the columns.
template <int T>
struct Shared {
  long long tot[4 * kMaxK];  ///< row l*4 + c: weight (c = 0), weighted x, y, z sums
  long long part[T / kSegment][4 * kMaxK];
  unsigned long long red[T];
  long long members[kMaxK];
  float cx[kMaxK], cy[kMaxK], cz[kMaxK];
  float px[kMaxK], py[kMaxK], pz[kMaxK];  ///< centroids of the latest assignment
  float shift[kMaxK];
  std::uint32_t moved_point[kMaxK];  ///< points moved into empty clusters this pass
  int moved_to[kMaxK];
  int moved;
  int refills;  ///< empty clusters refilled, over the whole run (tests look at it)
  // Bounds variant: how far each centroid, and the farthest-moving one, have moved in all.
  double drift_sum[kMaxK];
  double max_drift_sum;
  float drift_sum_f[kMaxK];
  float max_drift_sum_f;
  float drift[kMaxK];
};

PALETTE_HD float infinity_f() {
#if defined(__CUDA_ARCH__)
  return __int_as_float(0x7f800000);
#else
  return std::numeric_limits<float>::infinity();
#endif
}

PALETTE_HD std::uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  return std::bit_cast<std::uint32_t>(f);
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

/// Nearest of the KP padded centroids (lowest index on ties), as the CPU's assign().
template <int KP>
PALETTE_HD int nearest(const float* cx, const float* cy, const float* cz, float x, float y, float z,
                       float& best) {
  float b = math::dist2(x, y, z, cx[0], cy[0], cz[0]);
  int l = 0;
  PALETTE_UNROLL
  for (int j = 1; j < KP; ++j) {
    const float d = math::dist2(x, y, z, cx[j], cy[j], cz[j]);
    if (d < b) {
      b = d;
      l = j;
    }
  }
  best = b;
  return l;
}

/// nearest(), also giving the smallest distance to any other centroid (+inf when KP == 1).
template <int KP>
PALETTE_HD int nearest2(const float* cx, const float* cy, const float* cz, float x, float y,
                        float z, float& best, float& second) {
  float b = math::dist2(x, y, z, cx[0], cy[0], cz[0]);
  float b2 = infinity_f();
  int l = 0;
  PALETTE_UNROLL
  for (int j = 1; j < KP; ++j) {
    const float d = math::dist2(x, y, z, cx[j], cy[j], cz[j]);
    if (d < b) {
      b2 = b;
      b = d;
      l = j;
    } else if (d < b2) {
      b2 = d;
    }
  }
  best = b;
  second = b2;
  return l;
}

/// Adds rows [0, rows) of the 32-bit columns into dst[row] (64-bit) and zeroes the caller's own
/// column entries. Starts and ends with every thread past a sync().
template <int T, class Block>
PALETTE_BLOCK_FN void fold_sum(const Block& b, Shared<T>& sh, std::int32_t* col, int rows,
                               long long* dst) {
  const int tid = b.tid();
  constexpr int segments = T / kSegment;
  b.sync();
  for (int item = tid; item < rows * segments; item += T) {
    const int r = item % rows, s = item / rows;
    const std::int32_t* seg = col + r * T + s * kSegment;
    long long sum = 0;
    // Rotated by the item, so the threads of a warp read different banks.
    for (int c = 0; c < kSegment; ++c) sum += seg[(c + item) & (kSegment - 1)];
    sh.part[s][r] = sum;
  }
  b.sync();
  if (tid < rows) {
    long long v = dst[tid];
    for (int s = 0; s < segments; ++s) v += sh.part[s][tid];
    dst[tid] = v;
  }
  for (int r = 0; r < rows; ++r) col[r * T + tid] = 0;
  b.sync();
}

/// Maximum of v over the block; every thread gets it.
template <int T, class Block>
PALETTE_BLOCK_FN unsigned long long block_max(const Block& b, Shared<T>& sh, unsigned long long v) {
  const int tid = b.tid();
  sh.red[tid] = v;
  b.sync();
  for (int s = T / 2; s > 0; s /= 2) {
    if (tid < s && sh.red[tid + s] > sh.red[tid]) sh.red[tid] = sh.red[tid + s];
    b.sync();
  }
  const unsigned long long m = sh.red[0];
  b.sync();
  return m;
}

template <int KP>
struct Centroids {
  float x[KP], y[KP], z[KP];

  PALETTE_HD void load(const float* sx, const float* sy, const float* sz, int k) {
    PALETTE_UNROLL
    for (int j = 0; j < KP; ++j) {
      x[j] = j < k ? sx[j] : infinity_f();
      y[j] = j < k ? sy[j] : infinity_f();
      z[j] = j < k ? sz[j] : infinity_f();
    }
  }
  PALETTE_HD int nearest_of(const ImageRef& p, std::uint32_t i, float& best) const {
    return columns::nearest<KP>(x, y, z, exact_float(p.x[i]), exact_float(p.y[i]),
                                exact_float(p.z[i]), best);
  }
  PALETTE_HD int nearest2_of(const ImageRef& p, std::uint32_t i, float& best, float& second) const {
    return columns::nearest2<KP>(x, y, z, exact_float(p.x[i]), exact_float(p.y[i]),
                                 exact_float(p.z[i]), best, second);
  }
};

/// The cluster point i was moved into this pass, or -1.
template <int T>
PALETTE_HD int moved_to(const Shared<T>& sh, std::uint32_t i) {
  for (int m = 0; m < sh.moved; ++m) {
    if (sh.moved_point[m] == i) return sh.moved_to[m];
  }
  return -1;
}

/// Empty clusters take the point farthest from its centroid among clusters with at least two
/// members, lowest index on ties; a point moves at most once per pass (kmeans_image's rule).
/// Called with sh.tot holding this pass's totals, every thread past a sync().
template <int T, int KP, class Block>
PALETTE_BLOCK_FN void refill(const Block& b, Shared<T>& sh, std::int32_t* col, const ImageRef& p,
                             int k, const Centroids<KP>& c) {
  const int tid = b.tid();
  const std::uint32_t tiles = (p.n + T - 1) / T;
  if (tid < k) sh.members[tid] = 0;
  for (std::uint32_t t = 0; t < tiles; ++t) {
    const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
    if (i < p.n) {
      float d;
      col[c.nearest_of(p, i, d) * T + tid] += 1;
    }
  }
  fold_sum(b, sh, col, k, sh.members);
  for (int e = 0; e < k; ++e) {
    if (sh.members[e] != 0) continue;  // shared and synchronised: the same in every thread
    unsigned long long key = 0;
    for (std::uint32_t t = 0; t < tiles; ++t) {
      const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
      if (i < p.n && moved_to(sh, i) < 0) {
        float d;
        const int l = c.nearest_of(p, i, d);
        if (sh.members[l] >= 2) {
          const unsigned long long kk =
              (static_cast<unsigned long long>(float_bits(d)) << 32) | (0xFFFFFFFFu - i);
          if (kk > key) key = kk;
        }
      }
    }
    key = block_max(b, sh, key);
    if (tid == 0 && key != 0) {
      const std::uint32_t far = 0xFFFFFFFFu - static_cast<std::uint32_t>(key);
      float d;
      const int from = c.nearest_of(p, far, d);
      const long long w = p.w[far];
      const long long v[4] = {w, w * p.x[far], w * p.y[far], w * p.z[far]};
      for (int q = 0; q < 4; ++q) {
        sh.tot[from * 4 + q] -= v[q];
        sh.tot[e * 4 + q] = v[q];
      }
      --sh.members[from];
      sh.members[e] = 1;
      sh.moved_point[sh.moved] = far;
      sh.moved_to[sh.moved] = e;
      ++sh.moved;
      ++sh.refills;
    }
    b.sync();
  }
}

/// Writes out[0..k): the totals, and each cluster's heaviest member (lowest index on ties)
/// given every point's final cluster label_of(i). Keys go in 64-bit columns. Called with every
/// thread past a sync() and the columns free; ends with a sync().
template <int T, class Block, class LabelOf>
PALETTE_BLOCK_FN void finish(const Block& b, Shared<T>& sh, std::int32_t* col, const ImageRef& p,
                             int k, ClusterStats* out, LabelOf label_of) {
  const int tid = b.tid();
  const std::uint32_t tiles = (p.n + T - 1) / T;
  auto* heavy = reinterpret_cast<unsigned long long*>(col);
  for (int l = 0; l < k; ++l) heavy[l * T + tid] = 0;
  for (std::uint32_t t = 0; t < tiles; ++t) {
    const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
    if (i < p.n) {
      const int l = label_of(i);
      const unsigned long long key =
          (static_cast<unsigned long long>(p.w[i]) << 32) | (0xFFFFFFFFu - i);
      unsigned long long& h = heavy[l * T + tid];
      if (key > h) h = key;
    }
  }
  b.sync();
  constexpr int segments = T / kSegment;
  for (int item = tid; item < k * segments; item += T) {
    const int l = item % k, s = item / k;
    unsigned long long m = 0;
    for (int q = 0; q < kSegment; ++q) {
      const unsigned long long v = heavy[l * T + s * kSegment + ((q + item) & (kSegment - 1))];
      m = v > m ? v : m;
    }
    sh.part[s][l] = static_cast<long long>(m);
  }
  b.sync();
  if (tid < k) {
    unsigned long long m = 0;
    for (int s = 0; s < segments; ++s) {
      const auto v = static_cast<unsigned long long>(sh.part[s][tid]);
      m = v > m ? v : m;
    }
    const long long* t = sh.tot + tid * 4;
    out[tid] = ClusterStats{{t[1], t[2], t[3]},
                            static_cast<std::uint64_t>(t[0]),
                            0xFFFFFFFFu - static_cast<std::uint32_t>(m),
                            0};
  }
  b.sync();
}

/// Lloyd iterations for one image with n > k points, from the centroids at points
/// seeds[0..k) (in shared memory or otherwise visible to every thread). `col` is this block's
/// column area, column_bytes(k, T) bytes. Threads j < k write out[j]; returns the iterations
/// run (the same in every thread).
template <int T, int KP, class Block>
PALETTE_BLOCK_FN int lloyd(const Block& b, Shared<T>& sh, std::int32_t* col, const ImageRef& p,
                           const int* seeds, int k, int max_iter, float limit2,
                           std::uint32_t flush_every, ClusterStats* out) {
  static_assert(T % kSegment == 0 && (T & (T - 1)) == 0, "T: a power of two, whole segments");
  const int tid = b.tid();
  const int rows = 4 * k;
  if (tid < k) {
    sh.cx[tid] = p.x[seeds[tid]];
    sh.cy[tid] = p.y[seeds[tid]];
    sh.cz[tid] = p.z[seeds[tid]];
  }
  if (tid == 0) sh.refills = 0;
  for (int r = 0; r < rows; ++r) col[r * T + tid] = 0;
  const std::uint32_t tiles = (p.n + T - 1) / T;
  int iterations = 0;
  for (int it = 1; it <= max_iter; ++it) {
    iterations = it;
    b.sync();  // centroids of the previous pass written, its totals read
    Centroids<KP> c;
    c.load(sh.cx, sh.cy, sh.cz, k);
    if (tid < rows) sh.tot[tid] = 0;
    if (tid == 0) sh.moved = 0;
    std::uint32_t since = 0;
    for (std::uint32_t t = 0; t < tiles; ++t) {
      const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
      if (i < p.n) {
        float d;
        const int l = c.nearest_of(p, i, d);
        const auto w = static_cast<std::int32_t>(p.w[i]);
        std::int32_t* s = col + l * 4 * T + tid;
        s[0] += w;
        s[T] += w * p.x[i];
        s[2 * T] += w * p.y[i];
        s[3 * T] += w * p.z[i];
      }
      if (++since == flush_every || t + 1 == tiles) {  // the same in every thread
        fold_sum(b, sh, col, rows, sh.tot);
        since = 0;
      }
    }
    bool empty = false;
    for (int j = 0; j < k; ++j) empty = empty || sh.tot[j * 4] == 0;  // weights are >= 1
    if (empty) refill(b, sh, col, p, k, c);
    if (tid < k) {
      const long long* t = sh.tot + tid * 4;
      const auto w = static_cast<std::uint64_t>(t[0]);
      const float nx = math::centroid_coord(t[1], w);
      const float ny = math::centroid_coord(t[2], w);
      const float nz = math::centroid_coord(t[3], w);
      sh.shift[tid] = math::dist2(nx, ny, nz, sh.cx[tid], sh.cy[tid], sh.cz[tid]);
      sh.px[tid] = sh.cx[tid];
      sh.py[tid] = sh.cy[tid];
      sh.pz[tid] = sh.cz[tid];
      sh.cx[tid] = nx;
      sh.cy[tid] = ny;
      sh.cz[tid] = nz;
    }
    b.sync();
    float shift = 0.0f;
    for (int j = 0; j < k; ++j) shift = shift < sh.shift[j] ? sh.shift[j] : shift;
    if (shift <= limit2) break;
  }

  // Heaviest member of each final cluster: labels of the last pass, recomputed from its
  // centroids, with its moves.
  Centroids<KP> c;
  c.load(sh.px, sh.py, sh.pz, k);
  finish(b, sh, col, p, k, out, [&](std::uint32_t i) {
    float d;
    const int m = moved_to(sh, i);
    return m >= 0 ? m : c.nearest_of(p, i, d);
  });
  return iterations;
}

/// Per-point state of the bounds variant, one 32-bit word per point in global memory: the
/// point's Hamerly gap (stored relative to the drift sums, see lloyd_bounds) as a float whose
/// low 4 mantissa bits are replaced by the point's cluster. Clearing those bits rounds a
/// non-negative gap down (by at most 16 ulps), which keeps it a valid lower bound; gaps below
/// zero are stored as zero (such points are measured again anyway).
struct PointState {
  std::uint32_t* word;
};

PALETTE_HD float bits_float(std::uint32_t v) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(v);
#else
  return std::bit_cast<float>(v);
#endif
}

PALETTE_HD std::uint32_t pack_state(float gap, int cluster) {
  const float g = gap > 0.0f ? gap : 0.0f;  // also NaN and -inf: measure again
  return (float_bits(g) & ~0xFu) | static_cast<std::uint32_t>(cluster);
}
PALETTE_HD int state_cluster(std::uint32_t v) { return static_cast<int>(v & 0xFu); }
PALETTE_HD float state_gap(std::uint32_t v) { return bits_float(v & ~0xFu); }

/// Upper and lower bounds of an exact distance from a rounded squared one: dist2's result is
/// within 5 * 2^-24 of the exact square (every term is non-negative) and sqrtf is correctly
/// rounded, so sqrt(d) is within 4 * 2^-24 of the exact distance; these factors are 16 ulps.
inline constexpr float kUp = 1.000002f;
inline constexpr float kDown = 0.999998f;

/// The gap a point must keep to skip its distances, in coordinate units. Distances are below
/// 2^17 (coordinates are below 2^15 in magnitude). Two parts: (1) float rounding of the stored
/// gap and of its drift adjustment, about six half-ulps of values below 2^17 + the drift sums,
/// so under 0.05 + 4e-7 x the drift sums; (2) strictness: exact distances with
/// d_j - d_a > 5 * 2^-24 * d_a (under 0.04) keep dist2(a) < dist2(j) after dist2's rounding
/// (relative error at most 5 * 2^-24, every term being non-negative). 0.25 and 1e-5 leave a
/// wide margin over both.
PALETTE_HD float skip_slack(float drift_a, float max_drift) {
  return 0.25f + 1e-5f * (drift_a + max_drift);
}

/// Lloyd iterations as lloyd(), with Hamerly's bounds (Hamerly 2010) so that most points skip
/// their distance computations once clusters settle: a point whose distance to its own centroid
/// (upper bound) is below its distance to every other centroid (lower bound) keeps its cluster,
/// and its data is not even read. The sums are kept as totals across passes and only points
/// that change cluster move weight between them (as the CPU does), so a skipped point costs
/// one 4-byte read per pass (its PointState word).
///
/// The bounds are conservative for exact distances (kUp/kDown, drifts rounded up) and the skip
/// needs a margin (skip_slack) that also keeps the rounded comparison strict: a skipped point is
/// exactly the point dist2 would have assigned to the same cluster, so results are those of
/// lloyd() and of the CPU, bit for bit. One float per point holds both bounds: at the pass s a
/// point was last measured, gap = (l_s - u_s) + D_a(s) + M(s), where D_j is the sum of centroid
/// j's drifts and M the sum of each pass's largest drift; at pass t its current gap is
/// gap - D_a(t) - M(t) = (l_s - (M(t) - M(s))) - (u_s + D_a(t) - D_a(s)), Hamerly's l - u.
/// `recomputed` (tests; may be null) receives each thread's count of distance computations;
/// `trace` (benchmarks; may be null, n entries) gets bit it - 1 of point i set when pass it
/// (<= 32) computed its distances.
template <int T, int KP, class Block>
PALETTE_BLOCK_FN int lloyd_bounds(const Block& b, Shared<T>& sh, std::int32_t* col,
                                  const ImageRef& p, PointState st, const int* seeds, int k,
                                  int max_iter, float limit2, std::uint32_t flush_every,
                                  ClusterStats* out, std::uint32_t* recomputed = nullptr,
                                  std::uint32_t* trace = nullptr) {
  static_assert(T % kSegment == 0 && (T & (T - 1)) == 0, "T: a power of two, whole segments");
  static_assert(kMaxK <= 16, "clusters are stored in 4 bits");
  const int tid = b.tid();
  const int rows = 4 * k;
  if (tid < k) {
    sh.cx[tid] = p.x[seeds[tid]];
    sh.cy[tid] = p.y[seeds[tid]];
    sh.cz[tid] = p.z[seeds[tid]];
    sh.drift_sum[tid] = 0;
    sh.drift_sum_f[tid] = 0;
  }
  if (tid < rows) sh.tot[tid] = 0;
  if (tid == 0) {
    sh.refills = 0;
    sh.max_drift_sum = 0;
    sh.max_drift_sum_f = 0;
  }
  for (int r = 0; r < rows; ++r) col[r * T + tid] = 0;
  const std::uint32_t tiles = (p.n + T - 1) / T;
  std::uint32_t computed = 0;
  int iterations = 0;
  for (int it = 1; it <= max_iter; ++it) {
    iterations = it;
    b.sync();  // centroids and drift sums of the previous pass written
    Centroids<KP> c;
    c.load(sh.cx, sh.cy, sh.cz, k);
    const float max_drift = sh.max_drift_sum_f;
    if (tid == 0) sh.moved = 0;
    std::uint32_t since = 0;
    for (std::uint32_t t = 0; t < tiles; ++t) {
      const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
      if (i < p.n) {
        int a = -1;  // no cluster before the first pass
        bool skip = false;
        if (it > 1) {
          const std::uint32_t word = st.word[i];
          a = state_cluster(word);
          const float da = sh.drift_sum_f[a];
          skip = k == 1 || (state_gap(word) - da) - max_drift > skip_slack(da, max_drift);
        }
        if (!skip) {
          ++computed;
          if (trace != nullptr && it <= 32) trace[i] |= 1u << (it - 1);
          float best, second;
          const int l = c.nearest2_of(p, i, best, second);
          if (l != a) {
            const auto w = static_cast<std::int32_t>(p.w[i]);
            const std::int32_t v[4] = {w, w * p.x[i], w * p.y[i], w * p.z[i]};
            std::int32_t* to = col + l * 4 * T + tid;
            for (int q = 0; q < 4; ++q) to[q * T] += v[q];
            if (a >= 0) {
              std::int32_t* from = col + a * 4 * T + tid;
              for (int q = 0; q < 4; ++q) from[q * T] -= v[q];
            }
          }
          const float u = std::sqrt(best) * kUp, lower = std::sqrt(second) * kDown;
          st.word[i] = pack_state((lower - u) + (sh.drift_sum_f[l] + max_drift), l);
        }
      }
      if (++since == flush_every || t + 1 == tiles) {  // the same in every thread
        fold_sum(b, sh, col, rows, sh.tot);
        since = 0;
      }
    }
    bool empty = false;
    for (int j = 0; j < k; ++j) empty = empty || sh.tot[j * 4] == 0;  // weights are >= 1
    if (empty) {
      refill(b, sh, col, p, k, c);
      if (tid == 0) {
        for (int m = 0; m < sh.moved; ++m) {
          // Gap 0: measured again next pass.
          st.word[sh.moved_point[m]] = pack_state(0.0f, sh.moved_to[m]);
        }
      }
    }
    if (tid < k) {
      const long long* t = sh.tot + tid * 4;
      const auto w = static_cast<std::uint64_t>(t[0]);
      const float nx = math::centroid_coord(t[1], w);
      const float ny = math::centroid_coord(t[2], w);
      const float nz = math::centroid_coord(t[3], w);
      const float shift = math::dist2(nx, ny, nz, sh.cx[tid], sh.cy[tid], sh.cz[tid]);
      sh.shift[tid] = shift;
      sh.drift[tid] = std::sqrt(shift) * kUp;
      sh.drift_sum[tid] += static_cast<double>(sh.drift[tid]);
      sh.drift_sum_f[tid] = static_cast<float>(sh.drift_sum[tid]);
      sh.px[tid] = sh.cx[tid];
      sh.py[tid] = sh.cy[tid];
      sh.pz[tid] = sh.cz[tid];
      sh.cx[tid] = nx;
      sh.cy[tid] = ny;
      sh.cz[tid] = nz;
    }
    b.sync();
    float shift = 0.0f;
    for (int j = 0; j < k; ++j) shift = shift < sh.shift[j] ? sh.shift[j] : shift;
    if (shift <= limit2) break;
    if (tid == 0) {
      float m = 0.0f;
      for (int j = 0; j < k; ++j) m = m < sh.drift[j] ? sh.drift[j] : m;
      sh.max_drift_sum += static_cast<double>(m);
      sh.max_drift_sum_f = static_cast<float>(sh.max_drift_sum);
    }
  }
  if (recomputed != nullptr) recomputed[tid] = computed;
  // The stored labels are the last pass's, its moves included.
  b.sync();
  finish(b, sh, col, p, k, out, [&](std::uint32_t i) { return state_cluster(st.word[i]); });
  return iterations;
}

/// lloyd() with the register padding for k (k <= kMaxK).
template <int T, class Block>
PALETTE_BLOCK_FN int lloyd_any(const Block& b, Shared<T>& sh, std::int32_t* col, const ImageRef& p,
                               const int* seeds, int k, int max_iter, float limit2,
                               std::uint32_t flush_every, ClusterStats* out) {
  switch (padded_k(k)) {
    case 4:
      return lloyd<T, 4>(b, sh, col, p, seeds, k, max_iter, limit2, flush_every, out);
    case 6:
      return lloyd<T, 6>(b, sh, col, p, seeds, k, max_iter, limit2, flush_every, out);
    case 8:
      return lloyd<T, 8>(b, sh, col, p, seeds, k, max_iter, limit2, flush_every, out);
    case 12:
      return lloyd<T, 12>(b, sh, col, p, seeds, k, max_iter, limit2, flush_every, out);
    default:
      return lloyd<T, 16>(b, sh, col, p, seeds, k, max_iter, limit2, flush_every, out);
  }
}

/// lloyd_bounds() with the register padding for k (k <= kMaxK).
template <int T, class Block>
PALETTE_BLOCK_FN int lloyd_bounds_any(const Block& b, Shared<T>& sh, std::int32_t* col,
                                      const ImageRef& p, PointState st, const int* seeds, int k,
                                      int max_iter, float limit2, std::uint32_t flush_every,
                                      ClusterStats* out, std::uint32_t* recomputed = nullptr,
                                      std::uint32_t* trace = nullptr) {
  switch (padded_k(k)) {
    case 4:
      return lloyd_bounds<T, 4>(b, sh, col, p, st, seeds, k, max_iter, limit2, flush_every, out,
                                recomputed, trace);
    case 6:
      return lloyd_bounds<T, 6>(b, sh, col, p, st, seeds, k, max_iter, limit2, flush_every, out,
                                recomputed, trace);
    case 8:
      return lloyd_bounds<T, 8>(b, sh, col, p, st, seeds, k, max_iter, limit2, flush_every, out,
                                recomputed, trace);
    case 12:
      return lloyd_bounds<T, 12>(b, sh, col, p, st, seeds, k, max_iter, limit2, flush_every, out,
                                 recomputed, trace);
    default:
      return lloyd_bounds<T, 16>(b, sh, col, p, st, seeds, k, max_iter, limit2, flush_every, out,
                                 recomputed, trace);
  }
}

}  // namespace palette::columns
