// The CUDA kernel's "columns" Lloyd code (kernels/lloyd_columns.hpp) run on the host: one
// std::thread per thread of a 256-thread block, std::barrier for __syncthreads. The same source
// the device compiles, checked against the CPU backend on every machine, GPU or not. (What this
// cannot check is device-specific: code generation, the launch, memory placement. The GPU and
// parity suites do that where a device is present.)

#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <type_traits>

#include "lloyd_cluster.hpp"
#include "lloyd_columns.hpp"
#include "palette/kmeans.hpp"
#include "seed_block.hpp"
#include "support/gpu.hpp"

namespace palette {
namespace {

using test::add_pixels;
using test::distinct_image;
using test::from_pixels;
using test::random_image;

constexpr int kThreads = 256;  // as the kernel

struct HostBlock {
  int t;
  std::barrier<>* bar;
  int tid() const { return t; }
  void sync() const { bar->arrive_and_wait(); }
};

PointsView view_of(const ImagePoints& p) {
  return {p.x.data(), p.y.data(), p.z.data(), p.weight.data(), p.size()};
}

struct BlockRun {
  std::vector<ClusterStats> out;
  int iterations = 0;
  int refills = 0;
};

// An image's points as the kernel finds them in a batch: `head` points of another image before
// them in their first group of columns::kQuad, and more after them to the end of the last
// group (random coordinates, heavy weights: they must not count).
// ref.packed is null; packed_ref() has the same points packed (the fma variant's reads).
struct PlacedImage {
  std::vector<std::int16_t> x, y, z;
  std::vector<std::uint32_t> w;
  std::vector<columns::PackedPoint> packed;
  columns::ImageRef ref;

  PlacedImage(const ImagePoints& p, std::uint32_t head) {
    const std::size_t n = p.size(), size = head + n + columns::kQuad;
    std::mt19937 rng(static_cast<unsigned>(n * 7 + head));
    auto junk = [&](auto& v, auto value) {
      v.resize(size);
      for (auto& e : v) e = static_cast<std::remove_reference_t<decltype(e)>>(value());
    };
    junk(x, [&] { return static_cast<int>(rng() % 32768) - 16384; });
    junk(y, [&] { return static_cast<int>(rng() % 32768) - 16384; });
    junk(z, [&] { return static_cast<int>(rng() % 32768) - 16384; });
    junk(w, [&] { return 100000 + rng() % 1000; });
    std::copy(p.x.begin(), p.x.end(), x.begin() + head);
    std::copy(p.y.begin(), p.y.end(), y.begin() + head);
    std::copy(p.z.begin(), p.z.end(), z.begin() + head);
    std::copy(p.weight.begin(), p.weight.end(), w.begin() + head);
    for (std::size_t i = 0; i < size; ++i) {
      packed.push_back({x[i], y[i], z[i], static_cast<std::uint16_t>(w[i])});
    }
    ref = {x.data() + head,
           y.data() + head,
           z.data() + head,
           w.data() + head,
           static_cast<std::uint32_t>(n),
           head,
           nullptr,
           max_abs_of(p)};
  }

  // ref with the packed points, as the kernel passes it when every weight fits in 16 bits.
  columns::ImageRef packed_ref() const {
    columns::ImageRef r = ref;
    r.packed = packed.data() + (ref.x - x.data());
    return r;
  }

  // The largest |coordinate| of the image's own points, as the kernel computes it: the
  // tightest bound the fma filter may be given.
  static std::uint32_t max_abs_of(const ImagePoints& p) {
    std::uint32_t m = 0;
    for (const auto* v : {&p.x, &p.y, &p.z}) {
      for (const int c : *v) m = std::max(m, static_cast<std::uint32_t>(c < 0 ? -c : c));
    }
    return m;
  }
};

// One block's Lloyd run on `p` (placed `head` points into its first group) from the centroids
// at points `seeds`. flush_every 0: what the kernel would choose for this image. fma: the
// nearest-centroid search of CudaLloyd::kColumnsFma, else exact distances (kColumns).
BlockRun run_block(const ImagePoints& p, const KMeansParams& params, ColorSpace space,
                   const std::vector<int>& seeds, std::uint32_t flush_every, std::uint32_t head,
                   bool fma) {
  const int k = params.k;
  const PlacedImage placed(p, head);
  const bool packable =
      std::all_of(p.weight.begin(), p.weight.end(), [](std::uint32_t w) { return w <= 0xFFFF; });
  const columns::ImageRef ref = fma && packable ? placed.packed_ref() : placed.ref;
  if (flush_every == 0) flush_every = columns::flush_tiles_of(ref);
  auto sh = std::make_unique<columns::Shared<kThreads>>();
  // Garbage where the kernel would find garbage: shared memory is not initialised.
  std::memset(static_cast<void*>(sh.get()), 0xA5, sizeof *sh);
  std::vector<std::uint64_t> area(columns::column_bytes(k, kThreads) / 8, 0xA5A5A5A5A5A5A5A5ull);
  auto* col = reinterpret_cast<std::int32_t*>(area.data());
  BlockRun r;
  r.out.assign(static_cast<std::size_t>(k), ClusterStats{});
  std::vector<int> iterations(kThreads, -1);
  std::barrier<> bar(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const HostBlock b{t, &bar};
        const float limit2 = shift_limit2(params, space);
        iterations[static_cast<std::size_t>(t)] =
            fma ? columns::lloyd_any<kThreads, true>(b, *sh, col, ref, seeds.data(), k,
                                                     params.max_iter, limit2, flush_every,
                                                     r.out.data())
                : columns::lloyd_any<kThreads, false>(b, *sh, col, ref, seeds.data(), k,
                                                      params.max_iter, limit2, flush_every,
                                                      r.out.data());
      });
    }
  }
  for (int v : iterations) EXPECT_EQ(v, iterations[0]) << "threads disagree on the iterations";
  r.iterations = iterations[0];
  r.refills = sh->refills;
  return r;
}

// The CPU backend's clusters and iterations against a block's (or a cluster's).
void expect_equal(const std::vector<ClusterStats>& host, int iterations, const BlockRun& dev,
                  const std::string& where) {
  EXPECT_EQ(dev.iterations, iterations) << where;
  ASSERT_EQ(dev.out.size(), host.size()) << where;
  for (std::size_t j = 0; j < host.size(); ++j) {
    const ClusterStats& a = host[j];
    const ClusterStats& b = dev.out[j];
    EXPECT_TRUE(a.sum[0] == b.sum[0] && a.sum[1] == b.sum[1] && a.sum[2] == b.sum[2] &&
                a.weight == b.weight && a.mode == b.mode && b.reserved == 0)
        << where << ", cluster " << j << ": weight " << a.weight << " vs " << b.weight << ", mode "
        << a.mode << " vs " << b.mode << ", x " << a.sum[0] << " vs " << b.sum[0];
  }
}

// Runs the block, with each nearest-centroid search, and the CPU backend's Lloyd iterations on
// `p` from the same seeds (k-means++ as kmeans_image picks them, unless given) and compares
// everything; returns the refills. The image starts `head` points into its first group
// (default: its size mod kQuad).
int expect_same(const ImagePoints& p, const KMeansParams& params, ColorSpace space,
                const std::string& what, std::uint32_t flush_every = 0, std::vector<int> seeds = {},
                int head = -1) {
  EXPECT_GT(p.size(), static_cast<std::size_t>(params.k)) << what;
  KMeansScratch scratch;
  if (seeds.empty()) {
    seeds.resize(static_cast<std::size_t>(params.k));
    kmeanspp_seeds(view_of(p), params.k, params.seed, scratch, seeds.data());
  }
  const auto h = static_cast<std::uint32_t>(head >= 0 ? head : p.size() % columns::kQuad);
  std::vector<ClusterStats> host(static_cast<std::size_t>(params.k));
  int iterations = 0;
  lloyd_image(view_of(p), params, shift_limit2(params, space), seeds.data(), host.data(),
              iterations, scratch);
  int refills = 0;
  for (const bool fma : {false, true}) {
    const BlockRun dev = run_block(p, params, space, seeds, flush_every, h, fma);
    expect_equal(host, iterations, dev,
                 what + ", head " + std::to_string(h) + (fma ? ", fma" : ", exact"));
    refills = dev.refills;
  }
  return refills;
}

// The block's k-means++ seeds for `p` (placed `head` points into its first group), run on the
// host with one thread per block thread.
std::vector<int> seed_block(const ImagePoints& p, int k, std::uint64_t seed, std::uint32_t head) {
  const PlacedImage placed(p, head);
  auto sh = std::make_unique<columns::SeedShared<kThreads>>();
  std::memset(static_cast<void*>(sh.get()), 0xA5, sizeof *sh);
  const std::uint32_t area_size =
      columns::seed_area(static_cast<std::uint32_t>(p.size()), kThreads);
  // Sentinels after the area: the seeding must not write past it.
  std::vector<columns::SeedEntry> area(area_size + 8,
                                       columns::SeedEntry{1, 2, 3, 4, 0xA5A5A5A5u, 0xA5A5A5A5u});
  std::vector<int> centres(static_cast<std::size_t>(k), -1);
  std::barrier<> bar(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        columns::seed_image<kThreads>(HostBlock{t, &bar}, *sh, placed.ref, k, seed, area.data(),
                                      centres.data());
      });
    }
  }
  for (std::size_t i = area_size; i < area.size(); ++i) {
    EXPECT_EQ(area[i].w, 0xA5A5A5A5u) << "wrote past the seeding area at " << i;
  }
  return centres;
}

void expect_same_seeds(const ImagePoints& p, int k, std::uint64_t seed, const std::string& what) {
  ASSERT_GT(p.size(), static_cast<std::size_t>(k)) << what;
  KMeansScratch scratch;
  std::vector<int> want(static_cast<std::size_t>(k));
  kmeanspp_seeds(view_of(p), k, seed, scratch, want.data());
  const std::vector<int> got = seed_block(p, k, seed, static_cast<std::uint32_t>(p.size() % 4));
  EXPECT_EQ(got, want) << what << ", n=" << p.size();
}

TEST(SeedBlock, SameSeedsAsTheCpu) {
  std::mt19937 rng(49);
  for (auto space : {ColorSpace::kLab, ColorSpace::kOklab, ColorSpace::kRgb}) {
    for (int k : {2, 3, 5, 8, 16, 20, 64}) {
      const ImagePoints p = random_image(rng, 200 + static_cast<int>(rng() % 6000),
                                         1 + static_cast<int>(rng() % 10), 20, space);
      if (p.size() <= static_cast<std::size_t>(k)) continue;
      expect_same_seeds(p, k, rng(), std::string(to_string(space)) + " k=" + std::to_string(k));
    }
  }
}

// Subsample sizes around the block's runs: fewer points than threads, one more, runs of
// uneven length, exactly kSeedSample, and larger images seeded on the spread subsample.
TEST(SeedBlock, EverySubsampleSize) {
  std::mt19937 rng(50);
  for (int n : {9, 17, 255, 256, 257, 300, 513, 769, 1000, 4095, 4096, 4097, 5000, 65536}) {
    const ImagePoints p = distinct_image(rng, n, 1 + n % 9, ColorSpace::kLab);
    for (int k : {1, 2, 8, 16}) {
      if (n <= k) continue;
      expect_same_seeds(p, k, static_cast<std::uint64_t>(n * 31 + k), "n " + std::to_string(n));
    }
  }
}

// Heavy weights (potentials far beyond 32 bits) and many equal candidates' potentials.
TEST(SeedBlock, HeavyWeightsAndFewColours) {
  std::mt19937 rng(51);
  std::vector<std::uint8_t> px;
  for (int c = 0; c < 40; ++c)
    add_pixels(px, rng() & 0xFFFFFF, 20000 + static_cast<int>(rng() % 40000));
  const ImagePoints heavy = from_pixels(px, ColorSpace::kLab);
  for (std::uint64_t seed = 0; seed < 6; ++seed) expect_same_seeds(heavy, 16, seed, "heavy");
  px.clear();
  for (int c = 0; c < 9; ++c) add_pixels(px, 0x102030u * static_cast<std::uint32_t>(c), 7);
  const ImagePoints few = from_pixels(px, ColorSpace::kRgb);
  for (std::uint64_t seed = 0; seed < 6; ++seed) expect_same_seeds(few, 8, seed, "few");
}

TEST(ColumnsFlush, BudgetFromWeightsAndCoordinates) {
  // 2^31 - 1 over the largest coordinate: the weight one column may hold.
  const std::uint64_t budget = 0x7FFFFFFFull / 16320;                    // RGB's largest coordinate
  EXPECT_EQ(columns::flush_tiles(1, 65536, 16320, false), 0xFFFFFFFFu);  // 256 x 256 default
  EXPECT_EQ(columns::flush_tiles(1, 65536, 32640, false), 0xFFFFFFFFu);  // Oklab's largest
  EXPECT_EQ(columns::flush_tiles(4000, budget, 16320, false), 0xFFFFFFFFu);
  // Otherwise a tile of kQuad points per thread must fit: as many tiles as the heaviest allows.
  EXPECT_EQ(columns::flush_tiles(4000, budget + 1, 16320, false), budget / (4000 * 4));
  EXPECT_EQ(columns::flush_tiles(budget / 4, 1u << 30, 16320, false), 1u);
  EXPECT_EQ(columns::flush_tiles(budget / 4 + 1, 1u << 30, 16320, false), 0u);
  EXPECT_EQ(columns::flush_tiles(1, 100, 16320, true), 0u);  // zero weights: warp path
  EXPECT_EQ(columns::flush_tiles(1, 100, 0, false), 0xFFFFFFFFu);
}

// Both column layouts: every (row, thread) its own entry of the area, fold_sum()'s item reading
// each thread of its segment once, and the 32 items of a warp reading 32 different banks in each
// step (rows 4k, as in the passes).
template <int T, bool kCells>
void expect_layout() {
  constexpr int segments = T / columns::kSegment;
  for (int k = 1; k <= columns::kMaxK; ++k) {
    const int rows = 4 * k, area = rows * T;
    std::vector<int> seen(static_cast<std::size_t>(area), 0);
    for (int r = 0; r < rows; ++r) {
      for (int t = 0; t < T; ++t) {
        const int e = columns::cell<T, kCells>(r, t);
        ASSERT_GE(e, 0);
        ASSERT_LT(e, area);
        ++seen[static_cast<std::size_t>(e)];
      }
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), area) << "k=" << k;
    for (int item = 0; item < rows * segments; ++item) {
      std::vector<int> got, want;
      const int r = item % rows, s = item / rows;
      for (int c = 0; c < columns::kSegment; ++c) {
        got.push_back(columns::fold_entry<T, kCells>(item, rows, c));
        want.push_back(columns::cell<T, kCells>(r, s * columns::kSegment + c));
      }
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, want) << "k=" << k << " item " << item;
    }
    for (int first = 0; first < rows * segments; first += 32) {
      for (int c = 0; c < columns::kSegment; ++c) {
        std::vector<int> banks;
        for (int item = first; item < std::min(rows * segments, first + 32); ++item) {
          banks.push_back(columns::fold_entry<T, kCells>(item, rows, c) % 32);
        }
        std::sort(banks.begin(), banks.end());
        EXPECT_EQ(std::unique(banks.begin(), banks.end()), banks.end())
            << "k=" << k << " items from " << first << " step " << c
            << (kCells ? " (cells)" : " (rows)");
      }
    }
  }
}

TEST(ColumnsLayout, EntriesDistinctAndFoldReadsConflictFree) {
  expect_layout<256, false>();
  expect_layout<256, true>();
  expect_layout<64, false>();
  expect_layout<64, true>();
  // A thread's cell of cluster l: its 4 rows in 16 contiguous, 16-byte aligned bytes, l * 4 * T
  // entries after cluster 0's (what add_quad() relies on, in either layout).
  constexpr int T = 256;
  for (int l = 0; l < columns::kMaxK; ++l) {
    for (int t = 0; t < T; ++t) {
      const int e = columns::cell<T, true>(4 * l, t);
      EXPECT_EQ(e % 4, 0);
      EXPECT_EQ(e, (columns::cell<T, true>(0, t) + l * 4 * T));
      for (int q = 1; q < 4; ++q) EXPECT_EQ((columns::cell<T, true>(4 * l + q, t)), e + q);
      EXPECT_EQ((columns::cell<T, false>(4 * l + 2, t)),
                (columns::cell<T, false>(0, t) + l * 4 * T + 2 * T));
    }
  }
}

TEST(ColumnsFilter, MarginIsAPowerOfTwoAboveTheBound) {
  EXPECT_EQ(columns::tie_margin(0), 1.0f / 65536);
  EXPECT_EQ(columns::tie_margin(1), 4.0f / 65536);  // M = 2
  EXPECT_EQ(columns::tie_margin(16320), 4096.0f);   // RGB: M = 2^14
  EXPECT_EQ(columns::tie_margin(16384), 16384.0f);  // M = 2^15
  EXPECT_EQ(columns::tie_margin(32768), 65536.0f);  // any int16: M = 2^16
  EXPECT_EQ(columns::ImageRef{}.max_abs, 32768u);   // unknown: the widest
}

// The fma filter's nearest centroid against exact distances, point by point, for k centroids
// padded to KP: random centroids (means of points, or points) within +-max_abs, points anywhere
// in range, and points on or next to the bisector of two centroids, including exact ties
// (c = p + v and p - v), where the filter must defer to exact distances and the lowest index
// wins. Returns how many points were ties or near-ties.
template <int KP>
int expect_filter_exact(std::mt19937& rng, int k, int max_abs, int points) {
  auto coord = [&](int m) { return static_cast<int>(rng() % (2 * m + 1)) - m; };
  float cx[KP], cy[KP], cz[KP];
  for (int j = 0; j < k; ++j) {
    const int w = 1 + static_cast<int>(rng() % 5000);  // a mean of w points, or a point
    for (float* c : {cx, cy, cz}) {
      const double v =
          rng() % 4 == 0 ? coord(max_abs)
                         : static_cast<double>(coord(max_abs)) + static_cast<double>(rng() % w) / w;
      c[j] = static_cast<float>(
          std::clamp(v, -static_cast<double>(max_abs), static_cast<double>(max_abs)));
    }
  }
  const float margin = columns::tie_margin(static_cast<std::uint32_t>(max_abs));
  columns::Centroids<KP, true> fma;
  columns::Centroids<KP, false> exact;
  fma.load(cx, cy, cz, k, margin);
  exact.load(cx, cy, cz, k, margin);
  int close = 0;
  for (int i = 0; i < points; ++i) {
    int p[3];
    const int kind = static_cast<int>(rng() % 3);
    const int a = static_cast<int>(rng() % static_cast<unsigned>(k));
    const int b = static_cast<int>(rng() % static_cast<unsigned>(k));
    if (kind == 0 || k < 2 || a == b) {
      for (int& v : p) v = coord(max_abs);
    } else if (kind == 1) {  // the midpoint of centroids a and b, rounded, give or take 1
      const float* c[3] = {cx, cy, cz};
      for (int d = 0; d < 3; ++d) {
        const int v = static_cast<int>(std::lround((c[d][a] + c[d][b]) / 2)) + coord(1);
        p[d] = std::clamp(v, -max_abs, max_abs);
      }
    } else {  // centroids a and b at p + v and p - v: the same distance from p
      float* c[3] = {cx, cy, cz};
      for (int d = 0; d < 3; ++d) {
        p[d] = coord(max_abs / 2);
        const float v = static_cast<float>(coord(std::max(1, max_abs / 4))) +
                        static_cast<float>(rng() % 64) / 64.0f;
        c[d][a] = static_cast<float>(p[d]) + v;
        c[d][b] = static_cast<float>(p[d]) - v;
      }
      fma.load(cx, cy, cz, k, margin);
      exact.load(cx, cy, cz, k, margin);
    }
    const int want = exact.nearest(p[0], p[1], p[2]);
    const int got = fma.nearest(p[0], p[1], p[2]);
    if (k >= 2 && a != b) {  // a close call: a and b nearest, within the margin of each other
      float nearest_d;
      columns::nearest_in(cx, cy, cz, k, p[0], p[1], p[2], nearest_d);
      const float ea = math::dist2(p[0], p[1], p[2], cx[a], cy[a], cz[a]);
      const float eb = math::dist2(p[0], p[1], p[2], cx[b], cy[b], cz[b]);
      if (std::abs(ea - eb) <= margin && std::min(ea, eb) == nearest_d) ++close;
    }
    EXPECT_EQ(got, want) << "k=" << k << " max_abs=" << max_abs << " point " << p[0] << "," << p[1]
                         << "," << p[2];
    if (got != want) break;
  }
  return close;
}

TEST(ColumnsFilter, SameNearestCentroidAsExactDistances) {
  std::mt19937 rng(47);
  int close = 0;
  for (int max_abs : {1, 3, 100, 12800, 16320, 16383, 16384, 32640, 32767}) {
    for (int round = 0; round < 20; ++round) {
      close += expect_filter_exact<4>(rng, 1 + round % 4, max_abs, 500);
      close += expect_filter_exact<6>(rng, 5 + round % 2, max_abs, 500);
      close += expect_filter_exact<8>(rng, 7 + round % 2, max_abs, 500);
      close += expect_filter_exact<12>(rng, 9 + round % 4, max_abs, 500);
      close += expect_filter_exact<16>(rng, 13 + round % 4, max_abs, 500);
    }
  }
  // Ties and near-ties made up a good share: the exact path was taken many times.
  EXPECT_GT(close, 10000);
}

TEST(ColumnsBlock, RandomImagesEverySpaceAndK) {
  std::mt19937 rng(41);
  int images = 0;
  for (auto space : {ColorSpace::kLab, ColorSpace::kOklab, ColorSpace::kRgb}) {
    for (int k : {1, 2, 3, 5, 6, 7, 8, 11, 12, 16}) {
      const ImagePoints p = random_image(rng, 300 + static_cast<int>(rng() % 4000),
                                         1 + static_cast<int>(rng() % 10), 20, space);
      if (p.size() <= static_cast<std::size_t>(k)) continue;
      const double tol = k % 2 ? 0.0 : 0.5;
      expect_same(p, KMeansParams{k, rng(), 100, tol}, space,
                  std::string(to_string(space)) + " k=" + std::to_string(k));
      ++images;
    }
  }
  EXPECT_GE(images, 25);
}

// Point counts around the group (4), segment (32) and block (256 points, 1024 in groups)
// sizes, at every position of the image's first point in its group.
TEST(ColumnsBlock, Tails) {
  std::mt19937 rng(42);
  for (int n : {6, 9, 17, 31, 32, 33, 255, 256, 257, 1023, 1024, 1025, 1029}) {
    const ImagePoints p = distinct_image(rng, n, 1 + n % 7, ColorSpace::kLab);
    for (int k : {1, 5, 8, 16}) {
      if (n <= k) continue;
      for (int head = 0; head < columns::kQuad; ++head) {
        expect_same(p, KMeansParams{k, 3, 100, 0.5}, ColorSpace::kLab,
                    "n=" + std::to_string(n) + " k=" + std::to_string(k), 0, {}, head);
      }
    }
  }
}

TEST(ColumnsBlock, FirstIterationOnly) {
  std::mt19937 rng(43);
  const ImagePoints p = random_image(rng, 3000, 6, 40, ColorSpace::kLab);
  expect_same(p, KMeansParams{6, 4, 1, 0.5}, ColorSpace::kLab, "max_iter 1");
}

// Clusters that go empty: every seed on one point (k - 1 empty clusters in the first pass,
// refilled one after another, a point moving at most once), seeds in pairs, and heavy colours
// with near-duplicates from k-means++ seeds. The refill must match the CPU's and must happen.
TEST(ColumnsBlock, EmptyClustersAreRefilledAsOnTheCpu) {
  std::mt19937 rng(46);
  int refills = 0, duplicates = 0;
  for (int k : {2, 5, 8, 13, 16}) {
    duplicates += (k - 1) + k / 2;  // seeds that share a point with an earlier seed
    const ImagePoints p = random_image(rng, 2000, 5, 30, ColorSpace::kLab);
    const int n = static_cast<int>(p.size());
    refills += expect_same(p, KMeansParams{k, 1, 100, 0.5}, ColorSpace::kLab,
                           "one seed k=" + std::to_string(k), 0,
                           std::vector<int>(static_cast<std::size_t>(k), n / 3));
    std::vector<int> pairs;
    for (int j = 0; j < k; ++j) pairs.push_back((j / 2) * (n / k));
    refills += expect_same(p, KMeansParams{k, 1, 100, 0.0}, ColorSpace::kLab,
                           "paired seeds k=" + std::to_string(k), 0, pairs);
  }
  // At least every duplicate seed's cluster was empty after the first pass.
  EXPECT_GE(refills, duplicates) << "the refill path was not exercised enough";
  for (int extra = 1; extra <= 6; ++extra) {
    std::vector<std::uint8_t> px;
    for (int i = 0; i < 10 + extra; ++i) {
      const int reps = i < 3 ? 1000 : 1 + i % 2;
      const auto red = static_cast<std::uint32_t>(i < 3 ? 250 - i : 10 + i);
      add_pixels(px, (red << 16) | (40u << 8) | 40u, reps);
    }
    const ImagePoints p = from_pixels(px, ColorSpace::kRgb);
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
      expect_same(p, KMeansParams{10, seed, 100, 0.0}, ColorSpace::kRgb,
                  "extra " + std::to_string(extra) + " seed " + std::to_string(seed));
    }
  }
}

// Reds mirrored around 128 (RGB): with seeds spread evenly over them (ties_seeds), points lie
// halfway between two centroids, near or exact dist2 ties, where the lowest index must win.
ImagePoints ties_image(int half) {
  std::vector<std::uint8_t> px;
  for (int r = 128 - half; r <= 128 + half; ++r) {
    add_pixels(px, (static_cast<std::uint32_t>(r) << 16) | 0x2828u, 1 + (r - 128 + half) % 3);
    add_pixels(px, (static_cast<std::uint32_t>(256 - r) << 16) | 0x2828u, 1 + (r - 128 + half) % 3);
  }
  return from_pixels(px, ColorSpace::kRgb);
}

std::vector<int> ties_seeds(const ImagePoints& p, int k) {
  const int n = static_cast<int>(p.size());
  std::vector<int> seeds;
  for (int j = 0; j < k; ++j) seeds.push_back(j * (n - 1) / (k - 1));
  return seeds;
}

TEST(ColumnsBlock, TiesBetweenCentroids) {
  for (int half : {3, 10, 40}) {
    const ImagePoints p = ties_image(half);
    for (int k : {2, 3, 4}) {
      expect_same(p, KMeansParams{k, 0, 100, 0.0}, ColorSpace::kRgb,
                  "ties half=" + std::to_string(half) + " k=" + std::to_string(k), 0,
                  ties_seeds(p, k));
    }
  }
}

// Weights summing past what one 32-bit column may hold: the columns are folded every few tiles.
TEST(ColumnsBlock, HeavyImagesFoldEveryFewTiles) {
  std::mt19937 rng(44);
  for (int i = 0; i < 4; ++i) {
    std::vector<std::uint8_t> px;
    for (int c = 0; c < 60; ++c) {
      add_pixels(px, rng() & 0xFFFFFF, 2000 + static_cast<int>(rng() % 3000));
    }
    const ImagePoints noise = random_image(rng, 4000, 4, 30, ColorSpace::kLab);
    for (std::size_t j = 0; j < noise.size(); ++j) {
      add_pixels(px, noise.rgb[j], static_cast<int>(noise.weight[j]));
    }
    const ImagePoints p = from_pixels(px, ColorSpace::kLab);
    const std::uint32_t f =
        columns::flush_tiles_of({p.x.data(), p.y.data(), p.z.data(), p.weight.data(),
                                 static_cast<std::uint32_t>(p.size())});
    ASSERT_GT(f, 0u);
    ASSERT_LT(f, 0xFFFFFFFFu) << "total weight " << p.total_weight << " should need folds";
    for (int k : {3, 8, 16}) {
      expect_same(p, KMeansParams{k, 6, 100, 0.5}, ColorSpace::kLab,
                  "heavy " + std::to_string(i) + " k=" + std::to_string(k));
    }
  }
}

// Weights above 16 bits on the columns path (dark colours: small coordinates leave room in
// 32-bit columns): the fma variant reads the unpacked arrays then.
TEST(ColumnsBlock, WeightsAbove16BitsAreReadUnpacked) {
  for (const ColorSpace space : {ColorSpace::kRgb, ColorSpace::kLab}) {
    std::mt19937 rng(48);
    std::vector<std::uint8_t> px;
    for (int c = 0; c < 4; ++c) {
      add_pixels(px, rng() & 0x0F0F0F, 70000 + static_cast<int>(rng() % 50000));
    }
    for (int c = 0; c < 3000; ++c)
      add_pixels(px, rng() & 0x0F0F0F, 1 + static_cast<int>(rng() % 20));
    const ImagePoints p = from_pixels(px, space);
    const std::uint32_t f =
        columns::flush_tiles_of({p.x.data(), p.y.data(), p.z.data(), p.weight.data(),
                                 static_cast<std::uint32_t>(p.size())});
    ASSERT_GT(f, 0u) << "should run on the columns path";
    ASSERT_GT(*std::max_element(p.weight.begin(), p.weight.end()), 0xFFFFu);
    for (int k : {3, 8, 16}) {
      expect_same(p, KMeansParams{k, 2, 100, 0.0}, space,
                  std::string(to_string(space)) + " k=" + std::to_string(k));
    }
  }
}

// Folding after every tile (or every third) gives the same sums as folding once per pass.
TEST(ColumnsBlock, FoldCadenceDoesNotChangeResults) {
  std::mt19937 rng(45);
  const ImagePoints p = random_image(rng, 6000, 7, 25, ColorSpace::kOklab);
  for (std::uint32_t f : {1u, 3u, 0xFFFFFFFFu}) {
    expect_same(p, KMeansParams{7, 9, 100, 0.5}, ColorSpace::kOklab,
                "fold every " + std::to_string(f), f);
  }
}

// ---- lloyd_cluster.hpp: an image's points split over a cluster of C blocks, each holding its
// share in its own "shared memory"; on the host one std::thread per thread of every block, a
// std::barrier per block and one for the whole cluster, and map() turning an address in one
// block's ClusterShared into the same member of another's.

template <int T>
struct HostCluster {
  int r, c;
  std::barrier<>* bar;
  columns::ClusterShared<T>* const* all;
  int rank() const { return r; }
  int size() const { return c; }
  void sync() const { bar->arrive_and_wait(); }
  template <class U>
  U* map(U* p, int q) const {
    const auto* base = reinterpret_cast<const unsigned char*>(all[r]);
    const std::ptrdiff_t at = reinterpret_cast<const unsigned char*>(p) - base;
    EXPECT_TRUE(at >= 0 && at < static_cast<std::ptrdiff_t>(sizeof(columns::ClusterShared<T>)))
        << "map() of an address outside ClusterShared";
    return reinterpret_cast<U*>(reinterpret_cast<unsigned char*>(all[q]) + at);
  }
};

struct ClusterRun : BlockRun {
  columns::ImageSummary summary{};
  bool summaries_agree = true;
};

// Image p's Lloyd run by a cluster of C blocks of T threads from the centroids at `seeds`, as
// the kernel does it: load_share(), then lloyd_cluster() with the summary's fold cadence (or
// flush_every when not 0). Runs Lloyd only when the summary allows (16-bit weights, columns).
template <int T>
ClusterRun run_cluster(const ImagePoints& p, const KMeansParams& params, ColorSpace space,
                       const std::vector<int>& seeds, int C, std::uint32_t flush_every = 0) {
  const int k = params.k;
  const auto n = static_cast<std::uint32_t>(p.size());
  const PlacedImage placed(p, n % columns::kQuad);
  const std::uint32_t capacity = columns::share_capacity(n, C);
  std::vector<std::unique_ptr<columns::ClusterShared<T>>> shared;
  std::vector<columns::ClusterShared<T>*> all;
  std::vector<std::vector<std::uint64_t>> cols;
  std::vector<std::vector<columns::PackedPoint>> pts;
  std::vector<std::unique_ptr<std::barrier<>>> block_bars;
  for (int r = 0; r < C; ++r) {
    shared.push_back(std::make_unique<columns::ClusterShared<T>>());
    std::memset(static_cast<void*>(shared.back().get()), 0xA5, sizeof(columns::ClusterShared<T>));
    all.push_back(shared.back().get());
    cols.emplace_back(columns::column_bytes(k, T) / 8, 0xA5A5A5A5A5A5A5A5ull);
    // Sentinels after the capacity: the block must not write past its share's slots.
    pts.emplace_back(capacity + 8, columns::PackedPoint{-1, -1, -1, 0xA5A5});
    block_bars.push_back(std::make_unique<std::barrier<>>(T));
  }
  std::barrier<> cluster_bar(C * T);
  ClusterRun run;
  run.out.assign(static_cast<std::size_t>(k), ClusterStats{});
  std::vector<columns::ImageSummary> summaries(static_cast<std::size_t>(C * T));
  std::vector<int> iterations(static_cast<std::size_t>(C * T), -1);
  {
    std::vector<std::jthread> threads;
    for (int r = 0; r < C; ++r) {
      for (int t = 0; t < T; ++t) {
        threads.emplace_back([&, r, t] {
          const HostBlock b{t, block_bars[static_cast<std::size_t>(r)].get()};
          const HostCluster<T> cl{r, C, &cluster_bar, all.data()};
          auto& cs = *all[static_cast<std::size_t>(r)];
          auto* col = reinterpret_cast<std::int32_t*>(cols[static_cast<std::size_t>(r)].data());
          auto* mine = pts[static_cast<std::size_t>(r)].data();
          const columns::Share share = columns::share_of(n, r, C);
          const columns::ImageSummary s = columns::load_share(b, cl, cs, placed.ref, share, mine);
          summaries[static_cast<std::size_t>(r * T + t)] = s;
          const std::uint32_t every =
              flush_every ? flush_every
                          : columns::flush_tiles(s.heaviest, s.total, s.max_abs, s.zero);
          if (s.heaviest > 0xFFFF || every == 0)
            return;  // the kernel hands such images to one block
          columns::ImageRef ref = placed.ref;
          ref.max_abs = s.max_abs;
          iterations[static_cast<std::size_t>(r * T + t)] = columns::lloyd_cluster_any<T>(
              b, cl, cs, col, mine, share, ref, seeds.data(), k, params.max_iter,
              shift_limit2(params, space), every, run.out.data());
        });
      }
    }
  }
  for (const auto& v : pts) {
    for (std::size_t i = capacity; i < v.size(); ++i) {
      EXPECT_EQ(v[i].w, 0xA5A5) << "wrote past the share's capacity at " << i;
    }
  }
  run.summary = summaries[0];
  for (const auto& s : summaries) {
    run.summaries_agree = run.summaries_agree && s.heaviest == run.summary.heaviest &&
                          s.total == run.summary.total && s.max_abs == run.summary.max_abs &&
                          s.zero == run.summary.zero;
  }
  for (int v : iterations) EXPECT_EQ(v, iterations[0]) << "threads disagree on the iterations";
  run.iterations = iterations[0];
  run.refills = shared[0]->s.refills;
  for (const auto& cs : shared) EXPECT_EQ(cs->s.refills, run.refills) << "blocks disagree";
  return run;
}

// run_cluster() against the CPU backend's Lloyd iterations from the same seeds (k-means++
// seeds unless given); returns the refills.
template <int T = 64>
int expect_same_cluster(const ImagePoints& p, const KMeansParams& params, ColorSpace space,
                        const std::string& what, int C, std::vector<int> seeds = {},
                        std::uint32_t flush_every = 0) {
  KMeansScratch scratch;
  if (seeds.empty()) {
    seeds.resize(static_cast<std::size_t>(params.k));
    kmeanspp_seeds(view_of(p), params.k, params.seed, scratch, seeds.data());
  }
  std::vector<ClusterStats> host(static_cast<std::size_t>(params.k));
  int iterations = 0;
  lloyd_image(view_of(p), params, shift_limit2(params, space), seeds.data(), host.data(),
              iterations, scratch);
  const ClusterRun dev = run_cluster<T>(p, params, space, seeds, C, flush_every);
  EXPECT_TRUE(dev.summaries_agree) << what;
  EXPECT_LE(dev.summary.heaviest, 0xFFFFu) << what << ": not a cluster image";
  expect_equal(host, iterations, dev, what + ", cluster of " + std::to_string(C));
  return dev.refills;
}

// slot() puts a share's points in two halves: every point of the share has its own slot below
// the share's capacity, and each group's two pairs are 16-byte aligned.
TEST(ClusterShare, SlotsAreDistinctAndPairsAligned) {
  for (std::uint32_t n : {5u, 64u, 1029u, 65536u}) {
    for (int C : {1, 3, 8}) {
      const std::uint32_t cap = columns::share_capacity(n, C);
      const columns::Share s = columns::share_of(n, 0, C);
      const std::uint32_t slots = (s.m + columns::kQuad - 1) / columns::kQuad * columns::kQuad;
      std::vector<bool> used(cap, false);
      for (std::uint32_t j = 0; j < slots; ++j) {
        const std::uint32_t at = columns::slot(s, j);
        ASSERT_LT(at, cap) << n << " " << C << " " << j;
        EXPECT_FALSE(used[at]) << "slot " << at << " twice";
        used[at] = true;
        if (j % 2 == 0) {
          EXPECT_EQ(at * sizeof(columns::PackedPoint) % 16, 0u);
        } else {
          EXPECT_EQ(at, columns::slot(s, j - 1) + 1);
        }
      }
    }
  }
}

TEST(ClusterShare, SharesCoverTheImageInWholeGroups) {
  for (std::uint32_t n : {1u, 5u, 9u, 31u, 1000u, 1029u, 65536u, 65537u}) {
    for (int C = 1; C <= columns::kMaxCluster; ++C) {
      const std::uint32_t cap = columns::share_capacity(n, C);
      EXPECT_EQ(cap % columns::kQuad, 0u);
      std::uint32_t next = 0;
      for (int r = 0; r < C; ++r) {
        const columns::Share s = columns::share_of(n, r, C);
        if (s.m > 0) {
          EXPECT_EQ(s.lo, next) << n << " " << C << " " << r;
        }
        EXPECT_LE(s.m, cap);
        next = s.lo + s.m;
      }
      EXPECT_EQ(next, n) << "n " << n << ", cluster of " << C;
    }
  }
}

// The summary every block derives: the image's heaviest and total weight, largest |coordinate|
// and zero weights, whatever the split; weights above 16 bits show in `heaviest`.
TEST(ClusterShare, EveryBlockLearnsTheImagesSummary) {
  std::mt19937 rng(60);
  std::vector<std::uint8_t> px;
  for (int c = 0; c < 3; ++c) add_pixels(px, rng() & 0xFFFFFF, 70000 + c);
  for (int c = 0; c < 500; ++c) add_pixels(px, rng() & 0xFFFFFF, 1 + c % 5);
  for (const ImagePoints& p :
       {random_image(rng, 3000, 5, 30, ColorSpace::kLab), from_pixels(px, ColorSpace::kOklab)}) {
    unsigned long long heaviest = 0, total = 0;
    std::uint32_t max_abs = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      heaviest = std::max<unsigned long long>(heaviest, p.weight[i]);
      total += p.weight[i];
      for (const int v : {p.x[i], p.y[i], p.z[i]})
        max_abs = std::max(max_abs, static_cast<std::uint32_t>(v < 0 ? -v : v));
    }
    for (int C : {1, 3, 8}) {
      const ClusterRun r =
          run_cluster<64>(p, KMeansParams{5, 1, 100, 0.5}, ColorSpace::kLab, {0, 1, 2, 3, 4}, C);
      EXPECT_TRUE(r.summaries_agree);
      EXPECT_EQ(r.summary.heaviest, heaviest);
      EXPECT_EQ(r.summary.total, total);
      EXPECT_EQ(r.summary.max_abs, max_abs);
      EXPECT_FALSE(r.summary.zero);
    }
  }
}

TEST(ClusterLloyd, RandomImagesEverySpaceAndK) {
  std::mt19937 rng(61);
  int images = 0;
  for (auto space : {ColorSpace::kLab, ColorSpace::kOklab, ColorSpace::kRgb}) {
    for (int k : {1, 2, 3, 5, 6, 8, 11, 12, 16}) {
      const ImagePoints p = random_image(rng, 300 + static_cast<int>(rng() % 4000),
                                         1 + static_cast<int>(rng() % 10), 20, space);
      if (p.size() <= static_cast<std::size_t>(k)) continue;
      const double tol = k % 2 ? 0.0 : 0.5;
      const int C = 2 + images % 7;
      expect_same_cluster(p, KMeansParams{k, rng(), 100, tol}, space,
                          std::string(to_string(space)) + " k=" + std::to_string(k), C);
      ++images;
    }
  }
  EXPECT_GE(images, 22);
}

// Images so small that some blocks hold no point, and shares ending inside a group.
TEST(ClusterLloyd, SmallImagesAndEveryClusterSize) {
  std::mt19937 rng(62);
  for (int n : {6, 9, 17, 33, 65, 257, 1029}) {
    const ImagePoints p = distinct_image(rng, n, 1 + n % 7, ColorSpace::kLab);
    for (int k : {1, 5, 8}) {
      if (n <= k) continue;
      for (int C = 1; C <= columns::kMaxCluster; ++C) {
        expect_same_cluster(p, KMeansParams{k, 3, 100, 0.5}, ColorSpace::kLab,
                            "n=" + std::to_string(n) + " k=" + std::to_string(k), C);
      }
    }
  }
}

// Empty clusters refilled from the farthest point of the whole image, whichever block holds it.
TEST(ClusterLloyd, EmptyClustersAreRefilledAsOnTheCpu) {
  std::mt19937 rng(63);
  int refills = 0, duplicates = 0;
  for (int k : {2, 5, 8, 13, 16}) {
    duplicates += (k - 1) + k / 2;
    const ImagePoints p = random_image(rng, 2000, 5, 30, ColorSpace::kLab);
    const int n = static_cast<int>(p.size());
    refills += expect_same_cluster(p, KMeansParams{k, 1, 100, 0.5}, ColorSpace::kLab,
                                   "one seed k=" + std::to_string(k), 2 + k % 7,
                                   std::vector<int>(static_cast<std::size_t>(k), n / 3));
    std::vector<int> pairs;
    for (int j = 0; j < k; ++j) pairs.push_back((j / 2) * (n / k));
    refills += expect_same_cluster(p, KMeansParams{k, 1, 100, 0.0}, ColorSpace::kLab,
                                   "paired seeds k=" + std::to_string(k), 8, pairs);
  }
  EXPECT_GE(refills, duplicates) << "the refill path was not exercised enough";
  // Refills in the last pass: the moved points' clusters must hold in the heaviest-member scan.
  const ImagePoints p = random_image(rng, 3000, 6, 40, ColorSpace::kLab);
  const int n = static_cast<int>(p.size());
  for (int C : {2, 5, 8}) {
    EXPECT_GT(expect_same_cluster(p, KMeansParams{6, 4, 1, 0.5}, ColorSpace::kLab, "max_iter 1", C,
                                  std::vector<int>(6, n / 2)),
              0);
  }
}

TEST(ClusterLloyd, TiesBetweenCentroids) {
  for (int half : {3, 10, 40}) {
    const ImagePoints p = ties_image(half);
    for (int k : {2, 3, 4}) {
      expect_same_cluster(p, KMeansParams{k, 0, 100, 0.0}, ColorSpace::kRgb,
                          "ties half=" + std::to_string(half) + " k=" + std::to_string(k), 3,
                          ties_seeds(p, k));
    }
  }
}

// Heavy colours (folds every few tiles) and forced fold cadences.
TEST(ClusterLloyd, FoldsEveryFewTiles) {
  std::mt19937 rng(64);
  std::vector<std::uint8_t> px;
  for (int c = 0; c < 60; ++c)
    add_pixels(px, rng() & 0xFFFFFF, 2000 + static_cast<int>(rng() % 3000));
  const ImagePoints noise = random_image(rng, 4000, 4, 30, ColorSpace::kLab);
  for (std::size_t j = 0; j < noise.size(); ++j)
    add_pixels(px, noise.rgb[j], static_cast<int>(noise.weight[j]));
  const ImagePoints p = from_pixels(px, ColorSpace::kLab);
  for (int k : {3, 8, 16}) {
    expect_same_cluster(p, KMeansParams{k, 6, 100, 0.5}, ColorSpace::kLab,
                        "heavy k=" + std::to_string(k), 4);
  }
  for (std::uint32_t f : {1u, 2u}) {
    expect_same_cluster(p, KMeansParams{7, 9, 100, 0.5}, ColorSpace::kLab,
                        "fold every " + std::to_string(f), 3, {}, f);
  }
}

// The kernel's shape: 256 threads, 8 blocks, a 65,536-point image of random pixels (the
// benchmark's), k = 8.
TEST(ClusterLloyd, KernelShapeOnABenchmarkImage) {
  std::mt19937 rng(65);
  const ImagePoints p = random_image(rng, 65536, 1, 255, ColorSpace::kLab);
  expect_same_cluster<256>(p, KMeansParams{8, 7, 20, 0.0}, ColorSpace::kLab, "benchmark image", 8);
}

}  // namespace
}  // namespace palette
