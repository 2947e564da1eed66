#pragma once
// The nearest-centroid search of the columns Lloyd code: exact distances (math::dist2, 8
// rounded operations per centroid, as the CPU's assign()) and their argmin, the lowest index on
// ties.

#include <cstdint>

#include "block.hpp"
#include "columns_layout.hpp"
#include "palette/kmeans_math.hpp"

namespace palette::columns {

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

/// nearest() over the first k centroids of arrays in memory, for the rare steps (empty-cluster
/// refill) that also need the distance: the same argmin, with k known only at run time and the
/// loop kept rolled (nearest() must unroll, so that its arrays stay in registers).
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
    return columns::nearest<KP>(a, b, c, exact_float(px), exact_float(py), exact_float(pz), best);
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

}  // namespace palette::columns
