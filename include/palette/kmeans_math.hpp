#pragma once
// Per-element k-means maths shared by the CPU backend and the CUDA kernels. Everything here is
// integer arithmetic or a fixed sequence of correctly rounded float/double operations, so host
// and device produce the same bits: the CPU backend is the oracle for the CUDA one.

#include <cstdint>

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
PALETTE_HD int kmeanspp_trials(int k) {
  int t = 2;
  // floor(ln k) without libm: ln k >= m  <=>  k >= e^m.
  const double e[] = {2.718281828459045, 7.38905609893065, 20.085536923187668, 54.598150033144236};
  for (double v : e) {
    if (k >= v) ++t;
  }
  return t;
}

}  // namespace palette::math
