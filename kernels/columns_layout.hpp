#pragma once
// Memory layout of the "columns" Lloyd code (lloyd_columns.hpp): how one image's points are read
// in groups of four, and where each thread's 32-bit column sums live in shared memory.

#include <cstdint>
#include <type_traits>

#include "block.hpp"

namespace palette::columns {

/// Largest k the columns code runs (larger k use the kernel's warp-sum path).
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

/// Where row r of thread t's column is in the column area (in 32-bit entries): rows of T
/// entries, weight, x, y, z of cluster 0, then of cluster 1, ... Adding a point: 4 loads and 4
/// stores, each warp's in 32 different banks.
template <int T>
PALETTE_HD int cell(int r, int t) {
  return r * T + t;
}

/// The entry fold_sum()'s item `item` (row r = item % rows, segment s = item / rows) reads in its
/// step c < kSegment: thread s * kSegment + ((c + item) mod kSegment) of row r. The rotation puts
/// the 32 items of a warp in 32 different banks at every step.
template <int T>
PALETTE_HD int fold_entry(int item, int rows, int c) {
  const int r = item % rows, s = item / rows;
  return cell<T>(r, s * kSegment + ((c + item) & (kSegment - 1)));
}

/// Zeroes rows [0, rows) of thread t's column.
template <int T>
PALETTE_HD void zero_rows(std::int32_t* col, int rows, int t) {
  for (int r = 0; r < rows; ++r) col[cell<T>(r, t)] = 0;
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

/// One image's points: x[i], y[i], z[i], w[i] for i < n.
///
/// Lloyd's passes read them in aligned groups of kQuad: `head` is the number of points before
/// x[0] in its group. x - head, y - head and z - head must be 8-byte aligned, w - head 16-byte
/// aligned, and all of them readable (any values) from there to the end of the group that holds
/// point n - 1. (In a batch: head = offset % kQuad, the arrays allocated kQuad - 1 points
/// longer.)
struct ImageRef {
  const std::int16_t* x;
  const std::int16_t* y;
  const std::int16_t* z;
  const std::uint32_t* w;
  std::uint32_t n;
  std::uint32_t head = 0;
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

/// Group q of `quads` groups of the image.
PALETTE_HD void load_quad(const ImageRef& p, std::uint32_t q, std::uint32_t quads, Quad& out) {
  const std::uint32_t first = q * kQuad;  // position of the group's first point from x - head
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
  if (q == 0 || q + 1 == quads) {  // the groups that may hold other images' points
    for (int e = 0; e < kQuad; ++e) {
      const std::uint32_t at = first + static_cast<std::uint32_t>(e);
      if (at < p.head || at - p.head >= p.n) out.w[e] = 0;
    }
  }
}

}  // namespace palette::columns
