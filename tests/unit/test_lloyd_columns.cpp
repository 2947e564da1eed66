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

#include "lloyd_columns.hpp"
#include "palette/kmeans.hpp"
#include "support/gpu.hpp"

namespace palette {
namespace {

using test::add_pixels;
using test::distinct_image;
using test::from_pixels;
using test::random_image;

constexpr int kThreads = 256;  // as the kernel

// The Block interface (block.hpp) for T std::threads: a std::barrier, and max() through a
// shared array.
struct HostBlock {
  int t;
  std::barrier<>* bar;
  std::vector<unsigned long long>* red;  // one entry per thread
  int tid() const { return t; }
  void sync() const { bar->arrive_and_wait(); }
  unsigned long long max(unsigned long long v) const {
    (*red)[static_cast<std::size_t>(t)] = v;
    sync();
    const unsigned long long m = *std::max_element(red->begin(), red->end());
    sync();
    return m;
  }
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
struct PlacedImage {
  std::vector<std::int16_t> x, y, z;
  std::vector<std::uint32_t> w;
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
    ref = {x.data() + head,
           y.data() + head,
           z.data() + head,
           w.data() + head,
           static_cast<std::uint32_t>(n),
           head};
  }
};

// One block's Lloyd run on `p` (placed `head` points into its first group) from the centroids
// at points `seeds`. flush_every 0: what the kernel would choose for this image.
BlockRun run_block(const ImagePoints& p, const KMeansParams& params, ColorSpace space,
                   const std::vector<int>& seeds, std::uint32_t flush_every, std::uint32_t head) {
  const int k = params.k;
  const PlacedImage placed(p, head);
  const columns::ImageRef ref = placed.ref;
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
  std::vector<unsigned long long> red(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const HostBlock b{t, &bar, &red};
        const float limit2 = shift_limit2(params, space);
        iterations[static_cast<std::size_t>(t)] = columns::lloyd_any<kThreads>(
            b, *sh, col, ref, seeds.data(), k, params.max_iter, limit2, flush_every, r.out.data());
      });
    }
  }
  for (int v : iterations) EXPECT_EQ(v, iterations[0]) << "threads disagree on the iterations";
  r.iterations = iterations[0];
  r.refills = sh->refills;
  return r;
}

// The CPU backend's clusters and iterations against a block's.
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

// Runs the block and the CPU backend's Lloyd iterations on `p` from the same seeds (k-means++ as
// kmeans_image picks them, unless given) and compares everything; returns the refills. The image
// starts `head` points into its first group (default: its size mod kQuad).
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
  const BlockRun dev = run_block(p, params, space, seeds, flush_every, h);
  expect_equal(host, iterations, dev, what + ", head " + std::to_string(h));
  return dev.refills;
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

// Every (row, thread) its own entry of the area, fold_sum()'s item reading each thread of its
// segment once, and the 32 items of a warp reading 32 different banks in each step (rows 4k, as
// in the passes).
template <int T>
void expect_layout() {
  constexpr int segments = T / columns::kSegment;
  for (int k = 1; k <= columns::kMaxK; ++k) {
    const int rows = 4 * k, area = rows * T;
    std::vector<int> seen(static_cast<std::size_t>(area), 0);
    for (int r = 0; r < rows; ++r) {
      for (int t = 0; t < T; ++t) {
        const int e = columns::cell<T>(r, t);
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
        got.push_back(columns::fold_entry<T>(item, rows, c));
        want.push_back(columns::cell<T>(r, s * columns::kSegment + c));
      }
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, want) << "k=" << k << " item " << item;
    }
    for (int first = 0; first < rows * segments; first += 32) {
      for (int c = 0; c < columns::kSegment; ++c) {
        std::vector<int> banks;
        for (int item = first; item < std::min(rows * segments, first + 32); ++item) {
          banks.push_back(columns::fold_entry<T>(item, rows, c) % 32);
        }
        std::sort(banks.begin(), banks.end());
        EXPECT_EQ(std::unique(banks.begin(), banks.end()), banks.end())
            << "k=" << k << " items from " << first << " step " << c;
      }
    }
  }
}

TEST(ColumnsLayout, EntriesDistinctAndFoldReadsConflictFree) {
  expect_layout<256>();
  expect_layout<64>();
  // Cluster l's rows start l * 4 * T entries after cluster 0's (what add_quad() relies on).
  constexpr int T = 256;
  for (int l = 0; l < columns::kMaxK; ++l) {
    for (int t = 0; t < T; ++t) {
      EXPECT_EQ((columns::cell<T>(4 * l + 2, t)), (columns::cell<T>(0, t) + l * 4 * T + 2 * T));
    }
  }
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
// 32-bit columns).
TEST(ColumnsBlock, WeightsAbove16Bits) {
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

}  // namespace
}  // namespace palette
