#pragma once
// Lloyd iterations of one image by one thread block, "columns" variant: every thread adds its
// points into its own column of 32-bit sums in shared memory (one row per cluster and value:
// weight, weight*x, weight*y, weight*z), and the block folds the columns into exact 64-bit
// totals once per pass (or every few tiles when the image's weights could overflow 32 bits).
// Per point that is a fixed handful of conflict-free shared-memory operations, whatever k is;
// no warp vote, reduction or atomic. Points are not labelled in memory: the rare steps that
// need a point's cluster (empty-cluster refill, heaviest member) recompute it from the
// centroids of that pass, which gives the same answer bit for bit.
//
// The code is written against a two-function Block interface (tid(), sync()), so the same
// source runs on the device (one CUDA block, __syncthreads) and on the host in the unit tests
// (one std::thread per thread of the block, a std::barrier): machines without a GPU still check
// this exact code against the CPU backend. Everything that crosses threads goes through shared
// state between two sync() calls; there are no atomics and no warp-synchronous steps.
//
// Results are identical to kmeans_image (src/core/kmeans_cpu.cpp): the same float arithmetic
// (kmeans_math.hpp), integer sums, lowest-index tie breaks, the same empty-cluster rule.

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

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
#define PALETTE_NO_UNROLL _Pragma("unroll 1")
#else
#define PALETTE_UNROLL _Pragma("GCC unroll 16")
#define PALETTE_NO_UNROLL
#endif

namespace palette::columns {

/// Largest k this variant runs (larger k use the warp-sum path).
inline constexpr int kMaxK = 16;
/// Columns are folded in segments of this many threads (one bank each).
inline constexpr int kSegment = 32;
/// Points a thread takes at a time in Lloyd's passes: four consecutive points, read with one
/// 8-byte load per coordinate array and one 16-byte load of weights (a warp reads 256 and 512
/// contiguous bytes), so each thread has four points' loads in flight at once.
inline constexpr int kQuad = 4;

/// Centroids are kept in registers, padded to a compile-time count (unused ones at +inf, never
/// nearest): the smallest of these at least k.
PALETTE_HD int padded_k(int k) { return k <= 4 ? 4 : k <= 6 ? 6 : k <= 8 ? 8 : k <= 12 ? 12 : 16; }

/// f(std::integral_constant<int, padded_k(k)>{}): the one place where a run-time k picks the
/// instantiation of code templated on the padding (kernels, launches, Lloyd loops).
template <class F>
PALETTE_HD decltype(auto) with_padded_k(int k, F&& f) {
  switch (padded_k(k)) {
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 6:
      return f(std::integral_constant<int, 6>{});
    case 8:
      return f(std::integral_constant<int, 8>{});
    case 12:
      return f(std::integral_constant<int, 12>{});
    default:
      return f(std::integral_constant<int, 16>{});
  }
}

/// Shared-memory bytes of the columns of `threads` threads at k colours.
PALETTE_HD std::uint32_t column_bytes(int k, int threads) {
  return static_cast<std::uint32_t>(4 * k * threads) * sizeof(std::int32_t);
}

/// Where row r of thread t's column is in the column area (in 32-bit entries). The rows are
/// weight, x, y, z of cluster 0, then of cluster 1, ... Two layouts:
/// - rows of T entries (kCells false): r * T + t. Adding a point: 4 loads and 4 stores.
/// - cells (kCells true): the 4 rows of a cluster in one 16-byte cell per thread,
///   ((r / 4) * T + t) * 4 + r % 4. Adding a point: one 16-byte load and store (a warp's 32
///   cells are 512 contiguous bytes whatever the clusters: as many shared-memory wavefronts as 4
///   separate rows, 6 instructions fewer).
template <int T, bool kCells>
PALETTE_HD int cell(int r, int t) {
  return kCells ? ((r >> 2) * T + t) * 4 + (r & 3) : r * T + t;
}

/// The entry fold_sum()'s item `item` (row r = item % rows, segment s = item / rows) reads in its
/// step c < kSegment: thread s * kSegment + ((c + rotation) mod kSegment) of row r. The rotation
/// puts the 32 items of a warp in 32 different banks at every step (for rows in cells: when rows
/// is a multiple of 4, as in the passes; the refill's counts may conflict).
template <int T, bool kCells>
PALETTE_HD int fold_entry(int item, int rows, int c) {
  const int r = item % rows, s = item / rows;
  const int rotation = kCells ? item >> 2 : item;
  return cell<T, kCells>(r, s * kSegment + ((c + rotation) & (kSegment - 1)));
}

/// Tiles (of kQuad points per thread) a thread's 32-bit column sums may take before they must
/// be folded, for an image whose heaviest point weighs `max_weight`, whose weights sum to
/// `total_weight` and whose largest coordinate magnitude is `max_abs`: every column sum stays
/// within 2^31 - 1. 0xFFFFFFFF: fold once per pass. 0: the weights are too large (or zero) for
/// 32-bit columns; use the warp-sum path.
PALETTE_HD std::uint32_t flush_tiles(std::uint64_t max_weight, std::uint64_t total_weight,
                                     std::uint32_t max_abs, bool zero_weight) {
  if (zero_weight) return 0;  // an empty cluster is found by its zero weight
  // Weight that keeps sum(weight * |coordinate|) and sum(weight) within 2^31 - 1.
  const std::uint64_t budget = 0x7FFFFFFFull / (max_abs > 0 ? max_abs : 1);
  if (total_weight <= budget) return 0xFFFFFFFFu;
  if (max_weight > budget / kQuad) return 0;
  return static_cast<std::uint32_t>(budget / (max_weight * kQuad));
}

/// A point in 8 bytes: coordinates and weight, for images whose weights all fit in 16 bits
/// (at the default --size 256 every image with more than one colour). Lloyd's passes read a
/// group of kQuad of them with two 16-byte loads, 8 bytes per point instead of 10.
struct alignas(8) PackedPoint {
  std::int16_t x, y, z;
  std::uint16_t w;
};

/// One image's points: x[i], y[i], z[i], w[i] for i < n.
///
/// Lloyd's passes read them in aligned groups of kQuad: `head` is the number of points before
/// x[0] in its group. x - head, y - head and z - head must be 8-byte aligned, w - head and
/// packed - head 16-byte aligned, and all of them readable (any values) from there to the end
/// of the group that holds point n - 1. (In a batch: head = offset % kQuad, the arrays
/// allocated kQuad - 1 points longer.)
struct ImageRef {
  const std::int16_t* x;
  const std::int16_t* y;
  const std::int16_t* z;
  const std::uint32_t* w;
  std::uint32_t n;
  std::uint32_t head = 0;
  /// The same points packed (packed[i] for point i, grouped and readable as x), or null: then
  /// Lloyd's passes read x, y, z, w.
  const PackedPoint* packed = nullptr;
  /// At least the largest |coordinate| of the image's points (default: any int16). The
  /// nearest-centroid filter's margin grows with its square (see tie_margin()): a tighter bound
  /// only means fewer exact re-checks, never a different result.
  std::uint32_t max_abs = 32768;
};

/// flush_tiles() for an image, its weights and coordinates scanned by one thread (the kernel
/// does the same scan with the whole block; tests and tools use this).
PALETTE_HD std::uint32_t flush_tiles_of(const ImageRef& p) {
  std::uint64_t max_weight = 0, total = 0;
  std::uint32_t max_abs = 0;
  bool zero = false;
  for (std::uint32_t i = 0; i < p.n; ++i) {
    max_weight = p.w[i] > max_weight ? p.w[i] : max_weight;
    total += p.w[i];
    zero = zero || p.w[i] == 0;
    for (const int v : {p.x[i], p.y[i], p.z[i]}) {
      const auto a = static_cast<std::uint32_t>(v < 0 ? -v : v);
      max_abs = a > max_abs ? a : max_abs;
    }
  }
  return flush_tiles(max_weight, total, max_abs, zero);
}

/// The block's shared state besides the columns.
template <int T>
struct Shared {
  /// The fma filter's terms of each centroid (write_key(); padding past k), for
  /// Centroids<KP, true>::load_keys(): one 16-byte load per centroid and thread.
  alignas(16) float key[kMaxK][4];
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

/// The lesser of two floats that are not NaN (one FMNMX on the device).
PALETTE_HD float min_f(float a, float b) {
#if defined(__CUDA_ARCH__)
  return fminf(a, b);
#else
  return a < b ? a : b;
#endif
}

/// Index of the highest set bit of v (v != 0).
PALETTE_HD int highest_bit(unsigned v) {
#if defined(__CUDA_ARCH__)
  return 31 - __clz(static_cast<int>(v));
#else
  return std::bit_width(v) - 1;
#endif
}

/// (bits << 1) | the sign bit of f (one funnel shift on the device).
PALETTE_HD unsigned shift_in_sign(unsigned bits, float f) {
#if defined(__CUDA_ARCH__)
  return __funnelshift_l(__float_as_uint(f), bits, 1);
#else
  return (bits << 1) | (std::bit_cast<std::uint32_t>(f) >> 31);
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

/// Group q of an image's points: points kQuad*q - head .. kQuad*q - head + kQuad - 1, with
/// weight 0 at positions outside [0, n) (other images' points, or padding), which then add
/// nothing to any sum.
struct Quad {
  int x[kQuad], y[kQuad], z[kQuad];
  std::int32_t w[kQuad];
};

#if defined(__CUDA_ARCH__)
__device__ __forceinline__ void unpack4(uint2 v, int* out) {
  out[0] = static_cast<std::int16_t>(v.x & 0xFFFFu);
  out[1] = static_cast<int>(v.x) >> 16;
  out[2] = static_cast<std::int16_t>(v.y & 0xFFFFu);
  out[3] = static_cast<int>(v.y) >> 16;
}
#endif

/// The kQuad packed points a[0], a[1], b[0], b[1] (a and b 16-byte aligned), with their weights
/// as stored.
PALETTE_HD void load_packed_pairs(const PackedPoint* a, const PackedPoint* b, Quad& out) {
#if defined(__CUDA_ARCH__)
  const uint4 u = *reinterpret_cast<const uint4*>(a), v4 = *reinterpret_cast<const uint4*>(b);
  const unsigned v[8] = {u.x, u.y, u.z, u.w, v4.x, v4.y, v4.z, v4.w};
  PALETTE_UNROLL
  for (int e = 0; e < kQuad; ++e) {
    out.x[e] = static_cast<std::int16_t>(v[2 * e] & 0xFFFFu);
    out.y[e] = static_cast<int>(v[2 * e]) >> 16;
    out.z[e] = static_cast<std::int16_t>(v[2 * e + 1] & 0xFFFFu);
    out.w[e] = static_cast<std::int32_t>(v[2 * e + 1] >> 16);
  }
#else
  for (int e = 0; e < kQuad; ++e) {
    const PackedPoint& g = e < 2 ? a[e] : b[e - 2];
    out.x[e] = g.x;
    out.y[e] = g.y;
    out.z[e] = g.z;
    out.w[e] = g.w;
  }
#endif
}

/// The kQuad packed points from g (16-byte aligned).
PALETTE_HD void load_packed_quad(const PackedPoint* g, Quad& out) {
  load_packed_pairs(g, g + 2, out);
}

PALETTE_HD void load_quad(const ImageRef& p, std::uint32_t q, std::uint32_t quads, Quad& out) {
  const std::uint32_t first = q * kQuad;  // position of the group's first point from x - head
  if (p.packed != nullptr) {
    load_packed_quad(p.packed - p.head + first, out);
  } else {
#if defined(__CUDA_ARCH__)
    unpack4(*reinterpret_cast<const uint2*>(p.x - p.head + first), out.x);
    unpack4(*reinterpret_cast<const uint2*>(p.y - p.head + first), out.y);
    unpack4(*reinterpret_cast<const uint2*>(p.z - p.head + first), out.z);
    const uint4 w = *reinterpret_cast<const uint4*>(p.w - p.head + first);
    out.w[0] = static_cast<std::int32_t>(w.x);
    out.w[1] = static_cast<std::int32_t>(w.y);
    out.w[2] = static_cast<std::int32_t>(w.z);
    out.w[3] = static_cast<std::int32_t>(w.w);
#else
    for (int e = 0; e < kQuad; ++e) {
      out.x[e] = (p.x - p.head)[first + e];
      out.y[e] = (p.y - p.head)[first + e];
      out.z[e] = (p.z - p.head)[first + e];
      out.w[e] = static_cast<std::int32_t>((p.w - p.head)[first + e]);
    }
#endif
  }
  if (q == 0 || q + 1 == quads) {  // the groups that may hold other images' points
    for (int e = 0; e < kQuad; ++e) {
      const std::uint32_t at = first + static_cast<std::uint32_t>(e);
      if (at < p.head || at - p.head >= p.n) out.w[e] = 0;
    }
  }
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

/// nearest() over the first k centroids of arrays in memory: the fma filter's exact path. The
/// same argmin, but k is known only at run time and the loop is kept rolled (the path is rare;
/// nearest() must unroll, so that its arrays stay in registers).
PALETTE_HD int nearest_in(const float* cx, const float* cy, const float* cz, int k, float x,
                          float y, float z, float& best) {
  float b = math::dist2(x, y, z, cx[0], cy[0], cz[0]);
  int l = 0;
  PALETTE_NO_UNROLL
  for (int j = 1; j < k; ++j) {
    const float d = math::dist2(x, y, z, cx[j], cy[j], cz[j]);
    if (d < b) {
      b = d;
      l = j;
    }
  }
  best = b;
  return l;
}

PALETTE_HD float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

/// The margin of the nearest-centroid filter for an image whose coordinates (and so its
/// centroids', which are means of its points or points) are at most `max_abs` in magnitude:
/// 2^-16 * M^2, M the smallest power of two above max_abs (exact in float).
///
/// Why it keeps results exact. Write u = 2^-24, |p_i|, |c_i| <= M. The filter's key for
/// centroid c is fma(z, -2c_z, fma(y, -2c_y, fma(x, -2c_x, |c|^2))), |c|^2 rounded from three
/// products and two sums: the exact value is S = |c|^2 - 2 p.c = |p - c|^2 - |p|^2, and the
/// key is off by at most 9uM^2 (|c|^2 <= 3M^2, 3 roundings) + u(5 + 7 + 9)M^2 (the three fmas'
/// results are at most 5, 7, 9 M^2) = 30uM^2 (plus second-order terms). The exact distance
/// dist2() (3 differences, 3 squares, 2 sums, each rounded) is within 5u * 12M^2 = 60uM^2 of
/// |p - c|^2. If every other centroid's key exceeds the least key m by more than
/// e = 183uM^2 > 2 * 30uM^2 + 2 * 60uM^2, its exact distance is strictly larger than the
/// least key's centroid's, so the exact argmin (whatever the tie rule) is that centroid. The
/// test compares keys with fl(m + margin), which is at least m + margin - u(9M^2 + margin):
/// with margin = 256uM^2 that stays above m + 183uM^2.
PALETTE_HD float tie_margin(std::uint32_t max_abs) {
  int bits = 0;  // M = 2^bits > max_abs
  while (bits < 31 && (1u << bits) <= max_abs) ++bits;
  const float m = static_cast<float>(1u << bits);
  return m * m * (1.0f / 65536.0f);
}

/// Zeroes rows [0, rows) of thread t's column (in cells: whole cells, 16 bytes at a time, when
/// rows is a multiple of 4).
template <int T, bool kCells>
PALETTE_HD void zero_rows(std::int32_t* col, int rows, int t) {
#if defined(__CUDA_ARCH__)
  if (kCells && rows % 4 == 0) {
    for (int l = 0; l < rows / 4; ++l) {
      *reinterpret_cast<int4*>(col + cell<T, kCells>(4 * l, t)) = make_int4(0, 0, 0, 0);
    }
    return;
  }
#endif
  for (int r = 0; r < rows; ++r) col[cell<T, kCells>(r, t)] = 0;
}

/// Adds rows [0, rows) of the 32-bit columns (laid out as kCells says: cell()) into dst[row]
/// (64-bit) and zeroes the caller's own column entries. Starts with every thread past a sync();
/// kSyncAfter: ends with one too (else dst is only complete after the caller's next barrier; the
/// columns and sh.part may be used again at once: each thread adds only to its own column, and
/// the next fold_sum reads them and writes sh.part after its first sync()).
template <bool kSyncAfter = true, bool kCells = false, int T, class Block>
PALETTE_BLOCK_FN void fold_sum(const Block& b, Shared<T>& sh, std::int32_t* col, int rows,
                               long long* dst) {
  const int tid = b.tid();
  constexpr int segments = T / kSegment;
  b.sync();
  for (int item = tid; item < rows * segments; item += T) {
    long long sum = 0;
    for (int c = 0; c < kSegment; ++c) sum += col[fold_entry<T, kCells>(item, rows, c)];
    sh.part[item / rows][item % rows] = sum;
  }
  b.sync();
  if (tid < rows) {
    long long v = dst[tid];
    for (int s = 0; s < segments; ++s) v += sh.part[s][tid];
    dst[tid] = v;
  }
  zero_rows<T, kCells>(col, rows, tid);
  if constexpr (kSyncAfter) b.sync();
}

/// Maximum (kSum false) or sum (kSum true) of v over the block; every thread gets it.
template <bool kSum, int T, class Block>
PALETTE_BLOCK_FN unsigned long long block_reduce(const Block& b, Shared<T>& sh,
                                                 unsigned long long v) {
  const int tid = b.tid();
  sh.red[tid] = v;
  b.sync();
  for (int s = T / 2; s > 0; s /= 2) {
    if (tid < s) {
      const unsigned long long a = sh.red[tid], o = sh.red[tid + s];
      sh.red[tid] = kSum ? a + o : (o > a ? o : a);
    }
    b.sync();
  }
  const unsigned long long m = sh.red[0];
  b.sync();
  return m;
}

/// Maximum of v over the block; every thread gets it.
template <int T, class Block>
PALETTE_BLOCK_FN unsigned long long block_max(const Block& b, Shared<T>& sh, unsigned long long v) {
  return block_reduce<false>(b, sh, v);
}

/// The fma filter's terms of centroid (cx, cy, cz) into t: -2cx, -2cy, -2cz (exact) and |c|^2,
/// or for a padding entry (!real) 0, 0, 0, +inf (never nearest).
PALETTE_HD void write_key(float* t, bool real, float cx, float cy, float cz) {
  t[0] = -2.0f * cx;
  t[1] = -2.0f * cy;
  t[2] = -2.0f * cz;
  t[3] = real ? (cx * cx + cy * cy) + cz * cz : infinity_f();
}

/// The centroids of one pass as every thread holds them for the nearest-centroid search.
///
/// kFilter false: the centroids themselves in registers, padded to KP at +inf; nearest() takes
/// KP exact distances (8 rounded operations each, as the CPU) and their argmin.
/// kFilter true: -2c and |c|^2 in registers (padding: 0 and +inf), so that the key
/// |c|^2 - 2 p.c of a centroid costs 3 fused multiply-adds. The least key's centroid is the
/// exact nearest unless another key lies within tie_margin() of it (a point within about
/// M^2 2^-16 squared units of a bisector, M the image's coordinate bound: rare); then the exact
/// distances decide, from the centroids in shared memory. The same answers as kFilter false,
/// bit for bit, in fewer instructions.
template <int KP, bool kFilter>
struct Centroids {
  float a[KP], b[KP], c[KP], d[KP];  ///< kFilter: -2x, -2y, -2z, |c|^2; else x, y, z (d unused)
  const float* sx;                   ///< the centroids, readable by every thread
  const float* sy;
  const float* sz;
  int k;
  float margin;

  PALETTE_HD void load(const float* x, const float* y, const float* z, int k_, float margin_) {
    sx = x;
    sy = y;
    sz = z;
    k = k_;
    margin = margin_;
    PALETTE_UNROLL
    for (int j = 0; j < KP; ++j) {
      if constexpr (kFilter) {
        const bool real = j < k;
        float t[4];
        write_key(t, real, real ? x[j] : 0.0f, real ? y[j] : 0.0f, real ? z[j] : 0.0f);
        a[j] = t[0];
        b[j] = t[1];
        c[j] = t[2];
        d[j] = t[3];
      } else {
        a[j] = j < k ? x[j] : infinity_f();
        b[j] = j < k ? y[j] : infinity_f();
        c[j] = j < k ? z[j] : infinity_f();
      }
    }
  }

  /// kFilter: load() with the terms already in `key` (write_key() of centroids x, y, z, and the
  /// padding past k up to KP): one 16-byte load per centroid instead of computing them.
  PALETTE_HD void load_keys(const float (*key)[4], const float* x, const float* y, const float* z,
                            int k_, float margin_) {
    static_assert(kFilter, "the keys are the fma filter's");
    sx = x;
    sy = y;
    sz = z;
    k = k_;
    margin = margin_;
    PALETTE_UNROLL
    for (int j = 0; j < KP; ++j) {
#if defined(__CUDA_ARCH__)
      const float4 v = *reinterpret_cast<const float4*>(key[j]);
      a[j] = v.x;
      b[j] = v.y;
      c[j] = v.z;
      d[j] = v.w;
#else
      a[j] = key[j][0];
      b[j] = key[j][1];
      c[j] = key[j][2];
      d[j] = key[j][3];
#endif
    }
  }

  /// The nearest centroid to an image point (lowest index on ties).
  PALETTE_HD int nearest(int px, int py, int pz) const {
    const float x = exact_float(px), y = exact_float(py), z = exact_float(pz);
    if constexpr (!kFilter) {
      float best;
      return columns::nearest<KP>(a, b, c, x, y, z, best);
    } else {
      const int l = filtered(x, y, z);
      if (l >= 0) return l;
      float best;
      return nearest_in(sx, sy, sz, k, x, y, z, best);
    }
  }

  /// kFilter: the nearest centroid to (x, y, z) as the keys alone decide it, or -1 when another
  /// centroid's key lies within the margin of the least (then the exact distances must decide).
  PALETTE_HD int filtered(float x, float y, float z) const {
    float key[KP];
    PALETTE_UNROLL
    for (int j = 0; j < KP; ++j) key[j] = fma_rn(z, c[j], fma_rn(y, b[j], fma_rn(x, a[j], d[j])));
    float m = key[0];
    PALETTE_UNROLL
    for (int j = 1; j < KP; ++j) m = min_f(key[j], m);
    // Bit KP-1-j of `above`: key j > limit, the sign of limit - key[j] (rounding keeps the sign
    // of a difference, and a difference of two floats is never rounded to zero).
    const float limit = m + margin;
    unsigned above = 0;
    PALETTE_UNROLL
    for (int j = 0; j < KP; ++j) above = shift_in_sign(above, limit - key[j]);
    const unsigned close = ~above & ((1u << KP) - 1);  // bit KP-1-j: centroid j is a candidate
    return (close & (close - 1)) == 0 ? KP - 1 - highest_bit(close) : -1;
  }
  PALETTE_HD int nearest_of(const ImageRef& p, std::uint32_t i) const {
    return nearest(p.x[i], p.y[i], p.z[i]);
  }
  /// nearest_of() and the point's exact distance to that centroid.
  PALETTE_HD int nearest_exact(const ImageRef& p, std::uint32_t i, float& best) const {
    return nearest_in(sx, sy, sz, k, exact_float(p.x[i]), exact_float(p.y[i]), exact_float(p.z[i]),
                      best);
  }
};

/// Adds the kQuad points of `pts` to the columns of their nearest centroids; `col` points at
/// the calling thread's entry of row 0 (cell<T, kCells>(0, thread): cluster l's rows then start
/// l * 4 * T entries further in either layout).
template <int T, bool kCells = false, int KP, bool F>
PALETTE_BLOCK_FN void add_quad(const Centroids<KP, F>& c, std::int32_t* col, const Quad& pts) {
  PALETTE_UNROLL
  for (int e = 0; e < kQuad; ++e) {
    const int l = c.nearest(pts.x[e], pts.y[e], pts.z[e]);
    const std::int32_t w = pts.w[e];
    std::int32_t* s = col + l * 4 * T;
    if constexpr (kCells) {
#if defined(__CUDA_ARCH__)
      // s as a 16-byte cell: one load and one store. (Written from col, not s: nvcc then
      // computes the address with one multiply-add instead of two.)
      int4* cellp = reinterpret_cast<int4*>(col) + l * T;
      int4 v = *cellp;
      v.x += w;
      v.y += w * pts.x[e];
      v.z += w * pts.y[e];
      v.w += w * pts.z[e];
      *cellp = v;
#else
      s[0] += w;
      s[1] += w * pts.x[e];
      s[2] += w * pts.y[e];
      s[3] += w * pts.z[e];
#endif
    } else {
      s[0] += w;
      s[T] += w * pts.x[e];
      s[2 * T] += w * pts.y[e];
      s[3 * T] += w * pts.z[e];
    }
  }
}

/// The end of a pass, with sh.tot holding its totals (refills done) and every thread past a
/// sync(): the new centroids (the old ones kept in px, py, pz; kKeys: their filter terms in
/// sh.key too) and whether every centroid moved by at most limit2 (squared), the same answer in
/// every thread.
template <bool kKeys = false, int T, class Block>
PALETTE_BLOCK_FN bool converged(const Block& b, Shared<T>& sh, int k, float limit2) {
  const int tid = b.tid();
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
    if constexpr (kKeys) write_key(sh.key[tid], true, nx, ny, nz);
  }
  b.sync();
  float shift = 0.0f;
  for (int j = 0; j < k; ++j) shift = shift < sh.shift[j] ? sh.shift[j] : shift;
  return shift <= limit2;
}

/// The cluster point i was moved into this pass, or -1.
template <int T>
PALETTE_HD int moved_to(const Shared<T>& sh, std::uint32_t i) {
  for (int m = 0; m < sh.moved; ++m) {
    if (sh.moved_point[m] == i) return sh.moved_to[m];
  }
  return -1;
}

/// Moves the point that `key` names (its distance's bits, then 0xFFFFFFFF - its index: the
/// block's maximum over the candidates) from its cluster into empty cluster e: sh.tot, members
/// and the pass's moves. One thread.
template <int T, int KP, bool F>
PALETTE_HD void move_into_empty(Shared<T>& sh, const ImageRef& p, const Centroids<KP, F>& c, int e,
                                unsigned long long key) {
  const std::uint32_t far = 0xFFFFFFFFu - static_cast<std::uint32_t>(key);
  const int from = c.nearest_of(p, far);
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

/// Empty clusters take the point farthest from its centroid among clusters with at least two
/// members, lowest index on ties; a point moves at most once per pass (kmeans_image's rule).
/// Called with sh.tot holding this pass's totals, every thread past a sync().
template <int T, bool kCells, int KP, bool F, class Block>
PALETTE_BLOCK_FN void refill(const Block& b, Shared<T>& sh, std::int32_t* col, const ImageRef& p,
                             int k, const Centroids<KP, F>& c) {
  const int tid = b.tid();
  const std::uint32_t tiles = (p.n + T - 1) / T;
  if (tid < k) sh.members[tid] = 0;
  for (std::uint32_t t = 0; t < tiles; ++t) {
    const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
    if (i < p.n) col[cell<T, kCells>(c.nearest_of(p, i), tid)] += 1;
  }
  fold_sum<true, kCells>(b, sh, col, k, sh.members);
  for (int e = 0; e < k; ++e) {
    if (sh.members[e] != 0) continue;  // shared and synchronised: the same in every thread
    unsigned long long key = 0;
    for (std::uint32_t t = 0; t < tiles; ++t) {
      const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
      if (i < p.n && moved_to(sh, i) < 0) {
        float d;
        const int l = c.nearest_exact(p, i, d);
        if (sh.members[l] >= 2) {
          const unsigned long long kk =
              (static_cast<unsigned long long>(float_bits(d)) << 32) | (0xFFFFFFFFu - i);
          if (kk > key) key = kk;
        }
      }
    }
    key = block_max(b, sh, key);
    if (tid == 0 && key != 0) move_into_empty(sh, p, c, e, key);
    b.sync();
  }
}

/// The maximum of each of rows [0, k) of 64-bit columns (T threads wide), for thread tid < k:
/// row tid's (0 in the others). Starts with each thread's column entries written, ends past a
/// sync().
template <int T, class Block>
PALETTE_BLOCK_FN unsigned long long column_max(const Block& b, Shared<T>& sh,
                                               const unsigned long long* cols, int k) {
  const int tid = b.tid();
  constexpr int segments = T / kSegment;
  b.sync();
  for (int item = tid; item < k * segments; item += T) {
    const int l = item % k, s = item / k;
    unsigned long long m = 0;
    for (int q = 0; q < kSegment; ++q) {
      const unsigned long long v = cols[l * T + s * kSegment + ((q + item) & (kSegment - 1))];
      m = v > m ? v : m;
    }
    sh.part[s][l] = static_cast<long long>(m);
  }
  b.sync();
  unsigned long long m = 0;
  if (tid < k) {
    for (int s = 0; s < segments; ++s) {
      const auto v = static_cast<unsigned long long>(sh.part[s][tid]);
      m = v > m ? v : m;
    }
  }
  return m;
}

/// Before the first pass: centroids at the seeds' points (kKeys: their filter terms in sh.key
/// too, for Centroids::load_keys()), no refills yet, zero columns (rows [0, 4k) of the calling
/// thread's column, in the layout kCells says).
template <int T, bool kCells, bool kKeys = false, class Block>
PALETTE_BLOCK_FN void start_lloyd(const Block& b, Shared<T>& sh, std::int32_t* col,
                                  const ImageRef& p, const int* seeds, int k) {
  const int tid = b.tid();
  if (tid < k) {
    sh.cx[tid] = p.x[seeds[tid]];
    sh.cy[tid] = p.y[seeds[tid]];
    sh.cz[tid] = p.z[seeds[tid]];
  }
  if constexpr (kKeys) {
    if (tid < kMaxK) {  // the filter's terms, and the padding past k for good
      const bool real = tid < k;
      write_key(sh.key[tid], real, real ? sh.cx[tid] : 0.0f, real ? sh.cy[tid] : 0.0f,
                real ? sh.cz[tid] : 0.0f);
    }
  }
  if (tid == 0) sh.refills = 0;
  zero_rows<T, kCells>(col, 4 * k, tid);
}

/// Lloyd iterations for one image with n > k points, from the centroids at points
/// seeds[0..k) (in shared memory or otherwise visible to every thread). `col` is this block's
/// column area, column_bytes(k, T) bytes. Threads j < k write out[j]; returns the iterations
/// run (the same in every thread). kFilter picks the nearest-centroid search (Centroids) and the
/// columns in cells (cell()); the results are the same either way.
template <int T, int KP, bool kFilter, class Block>
PALETTE_BLOCK_FN int lloyd(const Block& b, Shared<T>& sh, std::int32_t* col, const ImageRef& p,
                           const int* seeds, int k, int max_iter, float limit2,
                           std::uint32_t flush_every, ClusterStats* out) {
  static_assert(T % kSegment == 0 && (T & (T - 1)) == 0, "T: a power of two, whole segments");
  const int tid = b.tid();
  const int rows = 4 * k;
  const float margin = tie_margin(p.max_abs);
  constexpr bool kCells = kFilter;
  start_lloyd<T, kCells>(b, sh, col, p, seeds, k);
  const std::uint32_t tiles = (p.n + T - 1) / T;  // of one point per thread
  const std::uint32_t quads = (p.head + p.n + kQuad - 1) / kQuad;
  const std::uint32_t quad_tiles = (quads + T - 1) / T;  // of kQuad points per thread
  int iterations = 0;
  for (int it = 1; it <= max_iter; ++it) {
    iterations = it;
    b.sync();  // centroids of the previous pass written, its totals read
    Centroids<KP, kFilter> c;
    c.load(sh.cx, sh.cy, sh.cz, k, margin);
    if (tid < rows) sh.tot[tid] = 0;
    if (tid == 0) sh.moved = 0;
    std::uint32_t since = 0;
    for (std::uint32_t t = 0; t < quad_tiles; ++t) {
      const std::uint32_t q = t * T + static_cast<std::uint32_t>(tid);
      if (q < quads) {
        Quad pts;
        load_quad(p, q, quads, pts);
        add_quad<T, kCells>(c, col + cell<T, kCells>(0, tid), pts);
      }
      if (++since == flush_every || t + 1 == quad_tiles) {  // the same in every thread
        fold_sum<true, kCells>(b, sh, col, rows, sh.tot);
        since = 0;
      }
    }
    bool empty = false;
    for (int j = 0; j < k; ++j) empty = empty || sh.tot[j * 4] == 0;  // weights are >= 1
    if (empty) refill<T, kCells>(b, sh, col, p, k, c);
    if (converged(b, sh, k, limit2)) break;
  }

  // Heaviest member of each final cluster (lowest index on ties): labels of the last pass,
  // recomputed from its centroids, with its moves. Keys go in 64-bit columns.
  Centroids<KP, kFilter> c;
  c.load(sh.px, sh.py, sh.pz, k, margin);
  auto* heavy = reinterpret_cast<unsigned long long*>(col);
  for (int l = 0; l < k; ++l) heavy[l * T + tid] = 0;
  for (std::uint32_t t = 0; t < tiles; ++t) {
    const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
    if (i < p.n) {
      const int m = moved_to(sh, i);
      const int l = m >= 0 ? m : c.nearest_of(p, i);
      const unsigned long long key =
          (static_cast<unsigned long long>(p.w[i]) << 32) | (0xFFFFFFFFu - i);
      unsigned long long& h = heavy[l * T + tid];
      if (key > h) h = key;
    }
  }
  const unsigned long long m = column_max(b, sh, heavy, k);
  if (tid < k) {
    const long long* t = sh.tot + tid * 4;
    out[tid] = ClusterStats{{t[1], t[2], t[3]},
                            static_cast<std::uint64_t>(t[0]),
                            0xFFFFFFFFu - static_cast<std::uint32_t>(m),
                            0};
  }
  b.sync();
  return iterations;
}

/// lloyd() with the register padding for k (k <= kMaxK).
template <int T, bool kFilter, class Block>
PALETTE_BLOCK_FN int lloyd_any(const Block& b, Shared<T>& sh, std::int32_t* col, const ImageRef& p,
                               const int* seeds, int k, int max_iter, float limit2,
                               std::uint32_t flush_every, ClusterStats* out) {
  return with_padded_k(k, [&](auto kp) {
    return lloyd<T, decltype(kp)::value, kFilter>(b, sh, col, p, seeds, k, max_iter, limit2,
                                                  flush_every, out);
  });
}

}  // namespace palette::columns
