#pragma once
// The nearest-centroid search of the columns Lloyd code: exact distances (math::dist2, 8
// rounded operations per centroid, as the CPU's assign()) and their argmin, the lowest index on
// ties.

#include <cstdint>

#include "block.hpp"
#include "columns_layout.hpp"
#include "palette/kmeans_math.hpp"

namespace palette::columns {

/// The nearest of the centroids (lowest index on ties), as the CPU's assign(), and its squared
/// distance in `best`. KP > 0: the KP padded centroids, the loop unrolled so that arrays in
/// registers stay there. KP = 0: the first `count` centroids of arrays in memory, the loop kept
/// rolled (for the rare steps, such as the empty-cluster refill, that also need the distance).
template <int KP>
PALETTE_HD int nearest(const float* cx, const float* cy, const float* cz, int count, float x,
                       float y, float z, float& best) {
  best = math::dist2(x, y, z, cx[0], cy[0], cz[0]);
  int l = 0;
  if constexpr (KP > 0) {
    PALETTE_UNROLL
    for (int j = 1; j < KP; ++j)
      math::keep_nearer(math::dist2(x, y, z, cx[j], cy[j], cz[j]), j, best, l);
  } else {
    PALETTE_NO_UNROLL
    for (int j = 1; j < count; ++j) {
      math::keep_nearer(math::dist2(x, y, z, cx[j], cy[j], cz[j]), j, best, l);
    }
  }
  return l;
}

/// The centroids of one pass as every thread holds them: in registers, padded to KP at +inf
/// (never nearest), and where every thread can read them (shared memory) for nearest_exact().
template <int KP>
struct Centroids {
  float a[KP], b[KP], c[KP];  ///< x, y, z
  const float* sx;            ///< the centroids, readable by every thread
  const float* sy;
  const float* sz;
  int k;

  PALETTE_HD void load(const float* x, const float* y, const float* z, int k_) {
    sx = x;
    sy = y;
    sz = z;
    k = k_;
    PALETTE_UNROLL
    for (int j = 0; j < KP; ++j) {
      a[j] = j < k ? x[j] : infinity_f();
      b[j] = j < k ? y[j] : infinity_f();
      c[j] = j < k ? z[j] : infinity_f();
    }
  }

  /// The nearest centroid to an image point (lowest index on ties).
  PALETTE_HD int nearest(int px, int py, int pz) const {
    float best;
    return columns::nearest<KP>(a, b, c, KP, exact_float(px), exact_float(py), exact_float(pz),
                                best);
  }
  PALETTE_HD int nearest_of(const ImageRef& p, std::uint32_t i) const {
    return nearest(p.x[i], p.y[i], p.z[i]);
  }
  /// nearest_of() and the point's exact distance to that centroid.
  PALETTE_HD int nearest_exact(const ImageRef& p, std::uint32_t i, float& best) const {
    return columns::nearest<0>(sx, sy, sz, k, exact_float(p.x[i]), exact_float(p.y[i]),
                               exact_float(p.z[i]), best);
  }
};

}  // namespace palette::columns
