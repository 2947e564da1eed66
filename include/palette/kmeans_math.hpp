#pragma once
// Per-element k-means maths shared by the CPU backend and the CUDA kernels. Everything here is
// integer arithmetic or a fixed sequence of correctly rounded float/double operations, so host
// and device produce the same bits: the CPU backend is the oracle for the CUDA one.

#include <cstdint>
#include <cstring>

#include "palette/hd.hpp"

namespace palette::math {

/// SplitMix64 finaliser: a bijective 64-bit mix.
PALETTE_HD std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Counter-based random number: the `counter`-th draw of stream `seed`. Independent of thread,
/// batch and image position, so results never depend on scheduling.
PALETTE_HD std::uint64_t random_u64(std::uint64_t seed, std::uint64_t counter) {
  return mix64(mix64(seed ^ 0x9e3779b97f4a7c15ULL) + mix64(counter + 0x632be59bd9b4e019ULL));
}

/// High 64 bits of a 64x64-bit product.
PALETTE_HD std::uint64_t mul_hi(std::uint64_t a, std::uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  __extension__ typedef unsigned __int128 u128;
  return static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64);
#endif
}

/// Maps a uniform 64-bit random number to [0, n) (n > 0) without division.
PALETTE_HD std::uint64_t uniform_below(std::uint64_t r, std::uint64_t n) { return mul_hi(r, n); }

/// Exact squared distance between two fixed-point points. Colour coordinates differ by less
/// than 2^15 per axis in every space (see ColorSpace scales), so the sum stays below 2^31.
PALETTE_HD std::uint32_t dist2_exact(int ax, int ay, int az, int bx, int by, int bz) {
  const auto dx = static_cast<std::uint32_t>(ax > bx ? ax - bx : bx - ax);
  const auto dy = static_cast<std::uint32_t>(ay > by ? ay - by : by - ay);
  const auto dz = static_cast<std::uint32_t>(az > bz ? az - bz : bz - az);
  return dx * dx + dy * dy + dz * dz;
}

/// Squared distance from an integer point to a float centroid, evaluated as
/// ((dx*dx + dy*dy) + dz*dz) with every operation rounded separately (no FMA contraction).
PALETTE_HD float dist2(float px, float py, float pz, float cx, float cy, float cz) {
#if defined(__CUDA_ARCH__)
  const float dx = __fsub_rn(px, cx), dy = __fsub_rn(py, cy), dz = __fsub_rn(pz, cz);
  return __fadd_rn(__fadd_rn(__fmul_rn(dx, dx), __fmul_rn(dy, dy)), __fmul_rn(dz, dz));
#else
  const float dx = px - cx, dy = py - cy, dz = pz - cz;
  return (dx * dx + dy * dy) + dz * dz;
#endif
}

/// One step of the nearest-centroid search: centroid j at squared distance d replaces the
/// nearest so far (distance best, index label) only when strictly nearer, so that the lowest
/// index wins ties when centroids are tried in index order.
PALETTE_HD void keep_nearer(float d, int j, float& best, int& label) {
  if (d < best) {
    best = d;
    label = j;
  }
}

/// Centroid coordinate from an exact integer sum and weight: one correctly rounded double
/// division, then rounding to float.
PALETTE_HD float centroid_coord(std::int64_t sum, std::uint64_t weight) {
  return static_cast<float>(static_cast<double>(sum) / static_cast<double>(weight));
}

/// k-means++ seeding looks at no more than this many points: images with more distinct colours
/// seed on an evenly spread subsample (points are sorted by colour, so a stride covers the
/// whole gamut of the image) and Lloyd's iterations then use every point. It bounds the cost of
/// seeding, which would otherwise grow with k times the point count.
inline constexpr std::uint32_t kSeedSample = 4096;

/// Index (within the image) of subsample point j when seeding an image of n points
/// (j < min(n, kSeedSample)): spread evenly, j itself when n <= kSeedSample.
PALETTE_HD std::uint32_t seed_sample_index(std::uint32_t j, std::uint32_t n) {
  const std::uint32_t s = n < kSeedSample ? n : kSeedSample;
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(j) * n / s);
}

/// Number of candidates greedy k-means++ tries per centre (as scikit-learn: 2 + floor(ln k)).
PALETTE_HD constexpr int kmeanspp_trials(int k) {
  int t = 2;
  // floor(ln k) without libm: ln k >= m  <=>  k >= e^m.
  constexpr double e[] = {2.718281828459045, 7.38905609893065, 20.085536923187668,
                          54.598150033144236};
  for (double v : e) {
    if (k >= v) ++t;
  }
  return t;
}

/// Random counters reserved per centre: candidate t of centre c is draw c * kDrawsPerCentre + t
/// of the stream (the first centre: draw 0).
inline constexpr int kDrawsPerCentre = 8;

/// The target of k-means++ draw `trial` for centre `centre`: a uniform number below `total`,
/// the sum of the values (weight, or weight * distance) the draw is proportional to.
PALETTE_HD std::uint64_t kmeanspp_target(std::uint64_t seed, int centre, int trial,
                                         std::uint64_t total) {
  const auto counter =
      static_cast<std::uint64_t>(centre) * kDrawsPerCentre + static_cast<std::uint64_t>(trial);
  return uniform_below(random_u64(seed, counter), total);
}

/// Whether the point whose value interval starts at `before` (the sum of the values of the
/// points before it) and holds `value` is the one target `r` draws: the first point whose
/// inclusive prefix sum exceeds r (std::upper_bound over the prefix sums).
PALETTE_HD bool draw_hits(std::uint64_t before, std::uint64_t value, std::uint64_t r) {
  return before <= r && r - before < value;
}

/// A point's term of the k-means++ potential: its weight times its squared distance to the
/// nearest centre, `closest`, or to a candidate at distance d if that is nearer.
PALETTE_HD std::uint64_t potential_term(std::uint32_t weight, std::uint32_t closest,
                                        std::uint32_t d) {
  return static_cast<std::uint64_t>(weight) * (d < closest ? d : closest);
}

/// Whether candidate `trial` with potential `pot` replaces the best so far (`best_pot`): the
/// lowest potential wins, the earlier candidate on ties.
PALETTE_HD bool better_candidate(int trial, std::uint64_t pot, std::uint64_t best_pot) {
  return trial == 0 || pot < best_pot;
}

/// "The largest value wins, the lowest index on ties" as one 64-bit key, so that a maximum over
/// keys, in any order, gives the same point as a first-to-last loop with `>`.
PALETTE_HD std::uint64_t argmax_key(std::uint32_t value, std::uint32_t index) {
  return (static_cast<std::uint64_t>(value) << 32) | (0xFFFFFFFFu - index);
}

/// The index an argmax_key() holds.
PALETTE_HD std::uint32_t argmax_index(std::uint64_t key) {
  return 0xFFFFFFFFu - static_cast<std::uint32_t>(key);
}

/// The bits of a float: for floats >= 0 they order as the values.
PALETTE_HD std::uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

/// The empty-cluster rule. After each assignment, every empty cluster (in index order) takes the
/// point farthest from its own centroid, among the points of clusters that can spare one and
/// that have not moved into an empty cluster in this pass; the lowest index on ties. A point can
/// be taken when its cluster has at least this many members.
inline constexpr std::uint64_t kMinMembersToGive = 2;

/// Key of a point that may refill an empty cluster (its squared distance d >= 0 to its
/// centroid, its index): the largest key is taken.
PALETTE_HD std::uint64_t refill_key(float d, std::uint32_t index) {
  return argmax_key(float_bits(d), index);
}

/// Key of a point for its cluster's representative colour (ClusterStats::mode): the heaviest
/// point, the lowest index on ties.
PALETTE_HD std::uint64_t mode_key(std::uint32_t weight, std::uint32_t index) {
  return argmax_key(weight, index);
}

/// The end of a Lloyd pass for one cluster: its new centroid from its exact sums and weight
/// (centroid_coord), written over the old one in cx, cy, cz; returns how far it moved (squared).
/// The pass has converged when no centroid moved more than the shift limit.
PALETTE_HD float update_centroid(std::int64_t sx, std::int64_t sy, std::int64_t sz,
                                 std::uint64_t weight, float& cx, float& cy, float& cz) {
  const float nx = centroid_coord(sx, weight);
  const float ny = centroid_coord(sy, weight);
  const float nz = centroid_coord(sz, weight);
  const float shift = dist2(nx, ny, nz, cx, cy, cz);
  cx = nx;
  cy = ny;
  cz = nz;
  return shift;
}

}  // namespace palette::math
