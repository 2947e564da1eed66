#pragma once
// Greedy k-means++ seeding of one image by one thread block, with few barriers: the same
// choices as kmeanspp_seeds (src/core/kmeans_cpu.cpp) and the kernel's tile-by-tile seeding,
// in 5 barriers per centre instead of about 80.
//
// Thread t owns a contiguous run of the image's subsample (entries t*c .. t*c + c - 1 of the
// m <= math::kSeedSample points, c = ceil(m / T)), stored transposed (entry t*c + q at q*T + t)
// so that a warp's loads are contiguous. A draw then needs one block-wide exclusive scan of the
// threads' totals instead of one per tile of T points: the thread whose range holds the target
// walks its own run. The candidates' potentials are reduced together, not one after another.
//
// Written against the Block interface of lloyd_columns.hpp (tid(), sync()), so the unit tests
// run this exact code on the host. Everything that crosses threads goes through SeedShared
// between two sync() calls.

#include <cstdint>

#include "lloyd_columns.hpp"
#include "palette/kmeans_math.hpp"

namespace palette::columns {

/// Most k-means++ candidates per centre (math::kmeanspp_trials(kMaxColors)).
inline constexpr int kMaxSeedTrials = 6;

/// One subsample point: coordinates, weight, squared distance to the nearest chosen centre.
struct alignas(16) SeedEntry {
  std::int16_t x, y, z, pad;
  std::uint32_t w;
  std::uint32_t closest;
};

/// Entries an image's subsample area needs for n points with T threads (the transposed runs
/// may leave up to T - 1 holes).
PALETTE_HD std::uint32_t seed_area(std::uint32_t n, int T) {
  const std::uint32_t m = n < math::kSeedSample ? n : math::kSeedSample;
  const std::uint32_t c = (m + static_cast<std::uint32_t>(T) - 1) / static_cast<std::uint32_t>(T);
  return c * static_cast<std::uint32_t>(T);
}

/// The block's shared state while seeding.
template <int T>
struct SeedShared {
  static constexpr int kGroups = 16;  // the scan's first level: T / kGroups values per group
  unsigned long long scan[T];
  unsigned long long group[kGroups];
  unsigned long long red[kMaxSeedTrials][T];
  unsigned long long red_part[kMaxSeedTrials][kGroups];
  int cand[kMaxSeedTrials];
};

/// Exclusive prefix sum of v over the threads (in thread order) and the total; every thread
/// gets its own prefix and the total. Starts past a sync(); sh.scan and sh.group are free again
/// after the caller's next sync().
template <int T, class Block>
PALETTE_BLOCK_FN unsigned long long seed_scan(const Block& b, SeedShared<T>& sh,
                                              unsigned long long v, unsigned long long& total) {
  constexpr int G = SeedShared<T>::kGroups, per = T / G;
  const int tid = b.tid();
  sh.scan[tid] = v;
  b.sync();
  if (tid < G) {
    unsigned long long s = 0;
    for (int i = tid * per; i < tid * per + per; ++i) {
      const unsigned long long x = sh.scan[i];
      sh.scan[i] = s;
      s += x;
    }
    sh.group[tid] = s;
  }
  b.sync();
  unsigned long long before = 0, all = 0;
  for (int g = 0; g < G; ++g) {
    const unsigned long long s = sh.group[g];
    before += g < tid / per ? s : 0;
    all += s;
  }
  total = all;
  return sh.scan[tid] + before;
}

/// Sums of v[0..count) over the threads, into sums (every thread). Starts past a sync();
/// sh.red and sh.red_part are free again after the caller's next sync(). (Unrolled over
/// kMaxSeedTrials with guards, so that v and sums stay in registers.)
template <int T, class Block>
PALETTE_BLOCK_FN void seed_sums(const Block& b, SeedShared<T>& sh,
                                const unsigned long long (&v)[kMaxSeedTrials], int count,
                                unsigned long long (&sums)[kMaxSeedTrials]) {
  constexpr int G = SeedShared<T>::kGroups, per = T / G;
  const int tid = b.tid();
  PALETTE_UNROLL
  for (int t = 0; t < kMaxSeedTrials; ++t) {
    if (t < count) sh.red[t][tid] = v[t];
  }
  b.sync();
  if (tid < count * G) {
    const int t = tid / G, g = tid % G;
    unsigned long long s = 0;
    for (int i = g * per; i < g * per + per; ++i) s += sh.red[t][i];
    sh.red_part[t][g] = s;
  }
  b.sync();
  PALETTE_UNROLL
  for (int t = 0; t < kMaxSeedTrials; ++t) {
    unsigned long long s = 0;
    if (t < count) {
      for (int g = 0; g < G; ++g) s += sh.red_part[t][g];
    }
    sums[t] = s;
  }
}

/// Greedy k-means++ seeds of the image p (n > k points, k <= kMaxColors) into centres[0..k)
/// (point indices; shared, or otherwise written by thread 0 and read by all after the return).
/// `area` holds seed_area(p.n, T) entries of working memory for this image. Returns past a
/// sync().
template <int T, class Block>
PALETTE_BLOCK_FN void seed_image(const Block& b, SeedShared<T>& sh, const ImageRef& p, int k,
                                 std::uint64_t seed, SeedEntry* area, int* centres) {
  const int tid = b.tid();
  const std::uint32_t n = p.n;
  const std::uint32_t m = n < math::kSeedSample ? n : math::kSeedSample;
  const std::uint32_t c = (m + T - 1) / T;
  const std::uint32_t first = static_cast<std::uint32_t>(tid) * c;
  const std::uint32_t last = first + c < m ? first + c : (first < m ? m : first);  // [first, last)
  auto at = [&](std::uint32_t q) -> SeedEntry& {
    return area[q * T + static_cast<std::uint32_t>(tid)];
  };
  auto entry = [&](std::uint32_t j) -> const SeedEntry& {  // any thread's entry j
    return area[(j % c) * T + j / c];
  };

  // Gather the run, with the weights as the first draw's values.
  unsigned long long own = 0;
  for (std::uint32_t j = first; j < last; ++j) {
    const std::uint32_t i = math::seed_sample_index(j, n);
    at(j - first) = SeedEntry{p.x[i], p.y[i], p.z[i], 0, p.w[i], 0xFFFFFFFFu};
    own += p.w[i];
  }
  // Draws `count` targets over the runs' values (weight, or weight * closest) and writes the
  // chosen subsample entries to sh.cand: the first entry whose inclusive prefix exceeds the
  // target (std::upper_bound over the prefix sums, as on the CPU).
  auto draw = [&](std::uint64_t counter0, int count, bool by_weight) {
    unsigned long long total;
    const unsigned long long before = seed_scan(b, sh, own, total);
    for (int t = 0; t < count; ++t) {
      const unsigned long long r = math::uniform_below(
          math::random_u64(seed, counter0 + static_cast<std::uint64_t>(t)), total);
      if (r < before || r - before >= own) continue;
      unsigned long long acc = before;
      for (std::uint32_t j = first; j < last; ++j) {
        const SeedEntry& e = at(j - first);
        acc += by_weight ? e.w : static_cast<unsigned long long>(e.w) * e.closest;
        if (acc > r) {
          sh.cand[t] = static_cast<int>(j);
          break;
        }
      }
    }
    b.sync();
  };

  draw(0, 1, true);
  int chosen = static_cast<int>(sh.cand[0]);
  if (tid == 0) centres[0] = static_cast<int>(math::seed_sample_index(chosen, n));
  {
    const SeedEntry& s = entry(static_cast<std::uint32_t>(chosen));
    const int ax = s.x, ay = s.y, az = s.z;
    own = 0;
    for (std::uint32_t j = first; j < last; ++j) {
      SeedEntry& e = at(j - first);
      e.closest = math::dist2_exact(e.x, e.y, e.z, ax, ay, az);
      own += static_cast<unsigned long long>(e.w) * e.closest;
    }
  }
  const int trials = math::kmeanspp_trials(k);
  for (int centre = 1; centre < k; ++centre) {
    draw(static_cast<std::uint64_t>(centre) * 8, trials, false);
    // Unrolled over kMaxSeedTrials with a guard, so that the arrays stay in registers.
    int cx[kMaxSeedTrials], cy[kMaxSeedTrials], cz[kMaxSeedTrials];
    unsigned long long pot[kMaxSeedTrials];
    PALETTE_UNROLL
    for (int t = 0; t < kMaxSeedTrials; ++t) {
      const SeedEntry& s = entry(static_cast<std::uint32_t>(sh.cand[t < trials ? t : 0]));
      cx[t] = s.x;
      cy[t] = s.y;
      cz[t] = s.z;
      pot[t] = 0;
    }
    for (std::uint32_t j = first; j < last; ++j) {
      const SeedEntry& e = at(j - first);
      const unsigned long long w = e.w;
      PALETTE_UNROLL
      for (int t = 0; t < kMaxSeedTrials; ++t) {
        if (t < trials) {
          const std::uint32_t d = math::dist2_exact(e.x, e.y, e.z, cx[t], cy[t], cz[t]);
          pot[t] += w * (d < e.closest ? d : e.closest);
        }
      }
    }
    unsigned long long sums[kMaxSeedTrials];
    seed_sums(b, sh, pot, trials, sums);
    int best = 0;
    unsigned long long best_sum = sums[0];
    PALETTE_UNROLL
    for (int t = 1; t < kMaxSeedTrials; ++t) {
      if (t < trials && sums[t] < best_sum) {  // the first candidate on ties
        best = t;
        best_sum = sums[t];
      }
    }
    chosen = sh.cand[best];
    if (tid == 0) centres[centre] = static_cast<int>(math::seed_sample_index(chosen, n));
    const SeedEntry& s = entry(static_cast<std::uint32_t>(chosen));
    const int ax = s.x, ay = s.y, az = s.z;
    own = 0;
    for (std::uint32_t j = first; j < last; ++j) {
      SeedEntry& e = at(j - first);
      const std::uint32_t d = math::dist2_exact(e.x, e.y, e.z, ax, ay, az);
      if (d < e.closest) e.closest = d;
      own += static_cast<unsigned long long>(e.w) * e.closest;
    }
  }
  b.sync();  // centres written
}

}  // namespace palette::columns
