#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "palette/backend.hpp"
#include "palette/error.hpp"
#include "palette/kmeans.hpp"
#include "palette/kmeans_math.hpp"
#include "palette/palette.hpp"
#include "palette/points.hpp"

namespace palette {
namespace {

// Pixels (RGB) with counts, collected the way the pipeline does it.
ImagePoints points_of(const std::vector<std::pair<std::uint32_t, int>>& colors, ColorSpace space) {
  std::vector<std::uint8_t> px;
  for (const auto& [rgb, count] : colors) {
    for (int i = 0; i < count; ++i) {
      px.push_back(static_cast<std::uint8_t>(rgb >> 16));
      px.push_back(static_cast<std::uint8_t>(rgb >> 8));
      px.push_back(static_cast<std::uint8_t>(rgb));
    }
  }
  const int n = static_cast<int>(px.size() / 3);
  ImagePoints out;
  CollectScratch scratch;
  collect_points(PixelView{px.data(), n, 1, 3, px.size()}, 128, space, out, scratch);
  return out;
}

ImagePoints random_points(std::mt19937& rng, int pixels, int palette_size, ColorSpace space) {
  std::uniform_int_distribution<std::uint32_t> color(0, 0xFFFFFF);
  std::vector<std::uint32_t> base(palette_size);
  for (auto& c : base) c = color(rng);
  std::uniform_int_distribution<int> pick(0, palette_size - 1), jitter(-12, 12);
  std::vector<std::pair<std::uint32_t, int>> px;
  for (int i = 0; i < pixels; ++i) {
    const std::uint32_t c = base[pick(rng)];
    auto ch = [&](int shift) {
      return static_cast<std::uint32_t>(std::clamp(int((c >> shift) & 0xFF) + jitter(rng), 0, 255));
    };
    px.push_back({pack_rgb(ch(16), ch(8), ch(0)), 1});
  }
  return points_of(px, space);
}

Palette fit_one(const ImagePoints& p, ColorSpace space, const KMeansParams& params,
                int threads = 1) {
  Batch batch;
  batch.space = space;
  batch.add(p);
  BatchResult result;
  make_cpu_backend(threads)->fit(batch, params, result);
  return make_palette(batch, 0, result);
}

TEST(Points, CollectMergesIdenticalColoursAndSortsThem) {
  const auto p = points_of({{0x00ff00, 3}, {0xff0000, 2}, {0x00ff00, 4}}, ColorSpace::kRgb);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.rgb[0], 0x00ff00u);
  EXPECT_EQ(p.weight[0], 7u);
  EXPECT_EQ(p.rgb[1], 0xff0000u);
  EXPECT_EQ(p.weight[1], 2u);
  EXPECT_EQ(p.total_weight, 9u);
}

TEST(Points, CollectSkipsPixelsUnderTheAlphaThreshold) {
  const std::uint8_t px[] = {255, 0, 0, 255, 0, 255, 0, 127, 0, 0, 255, 128, 9, 9, 9, 0};
  ImagePoints out;
  CollectScratch scratch;
  collect_points(PixelView{px, 4, 1, 4, sizeof px}, 128, ColorSpace::kRgb, out, scratch);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out.rgb[0], 0x0000ffu);
  EXPECT_EQ(out.rgb[1], 0xff0000u);
  collect_points(PixelView{px, 4, 1, 4, sizeof px}, 0, ColorSpace::kRgb, out, scratch);
  EXPECT_EQ(out.size(), 4u);  // threshold 0 counts every pixel
}

TEST(Points, LargeImagesSortLikeSmallOnes) {
  // Above the radix-sort cut-off: same result as sorting directly.
  std::mt19937 rng(7);
  std::vector<std::uint8_t> px(3 * 5000);
  for (auto& v : px) v = static_cast<std::uint8_t>(rng() % 6 * 50);
  ImagePoints out;
  CollectScratch scratch;
  collect_points(PixelView{px.data(), 5000, 1, 3, px.size()}, 0, ColorSpace::kRgb, out, scratch);
  std::vector<std::uint32_t> keys;
  for (std::size_t i = 0; i < px.size(); i += 3)
    keys.push_back(pack_rgb(px[i], px[i + 1], px[i + 2]));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  EXPECT_EQ(out.rgb, keys);
  EXPECT_EQ(std::accumulate(out.weight.begin(), out.weight.end(), 0u), 5000u);
}

TEST(KMeans, RecoversKnownBlocksExactly) {
  for (auto space : {ColorSpace::kLab, ColorSpace::kOklab, ColorSpace::kRgb}) {
    const auto p = points_of({{0xd62728, 500}, {0x1f77b4, 300}, {0x2ca02c, 200}}, space);
    const Palette pal = fit_one(p, space, KMeansParams{3, 0, 100, 0.5});
    ASSERT_EQ(pal.colors.size(), 3u);
    EXPECT_EQ(pal.colors, (std::vector<std::uint32_t>{0xd62728, 0x1f77b4, 0x2ca02c}));
    EXPECT_EQ(pal.shares_e4, (std::vector<std::uint32_t>{5000, 3000, 2000}));
  }
}

TEST(KMeans, SeparatesBlurredClustersIntoTheirBlocks) {
  // Two tight groups of shades: k=2 must give one colour per group, with exact weights.
  std::vector<std::pair<std::uint32_t, int>> px;
  for (int d = 0; d < 5; ++d) px.push_back({pack_rgb(200 + d, 20, 20), 10});
  for (int d = 0; d < 5; ++d) px.push_back({pack_rgb(20, 20, 200 + d), 30});
  const auto p = points_of(px, ColorSpace::kLab);
  const Palette pal = fit_one(p, ColorSpace::kLab, KMeansParams{2, 3, 100, 0.0});
  ASSERT_EQ(pal.colors.size(), 2u);
  EXPECT_EQ(pal.weights, (std::vector<std::uint64_t>{150, 50}));
  EXPECT_EQ(pal.colors[0], pack_rgb(20, 20, 202));
  EXPECT_EQ(pal.colors[1], pack_rgb(202, 20, 20));
}

TEST(KMeans, FewerDistinctColoursThanKGivesEachOnce) {
  const auto p = points_of({{0x112233, 7}, {0xabcdef, 3}}, ColorSpace::kLab);
  const Palette pal = fit_one(p, ColorSpace::kLab, KMeansParams{8, 0, 100, 0.5});
  EXPECT_EQ(pal.colors, (std::vector<std::uint32_t>{0x112233, 0xabcdef}));
  EXPECT_EQ(pal.shares_e4, (std::vector<std::uint32_t>{7000, 3000}));
}

TEST(KMeans, SinglePixel) {
  const auto p = points_of({{0x808080, 1}}, ColorSpace::kLab);
  const Palette pal = fit_one(p, ColorSpace::kLab, KMeansParams{5, 0, 100, 0.5});
  EXPECT_EQ(pal.colors, (std::vector<std::uint32_t>{0x808080}));
  EXPECT_EQ(pal.shares_e4, (std::vector<std::uint32_t>{10000}));
}

// The contract on random data, every k, every space: exactly min(k, distinct) colours, all
// distinct, all clusters non-empty, weights summing to the pixel count, no NaN anywhere.
TEST(KMeans, ContractHoldsOnRandomImages) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 60; ++trial) {
    const auto space = static_cast<ColorSpace>(trial % 3);
    const int k = 1 + static_cast<int>(rng() % kMaxColors);
    const int pixels = 1 + static_cast<int>(rng() % 3000);
    const auto p = random_points(rng, pixels, 1 + static_cast<int>(rng() % 12), space);
    const Palette pal = fit_one(p, space, KMeansParams{k, rng(), 50, 0.5});
    const std::size_t expect = std::min<std::size_t>(k, p.size());
    ASSERT_EQ(pal.colors.size(), expect) << trial;
    EXPECT_EQ(std::set<std::uint32_t>(pal.colors.begin(), pal.colors.end()).size(), expect);
    EXPECT_EQ(std::accumulate(pal.weights.begin(), pal.weights.end(), std::uint64_t{0}),
              p.total_weight);
    for (auto w : pal.weights) EXPECT_GT(w, 0u);
    EXPECT_EQ(std::accumulate(pal.shares_e4.begin(), pal.shares_e4.end(), 0u), 10000u);
    EXPECT_TRUE(std::is_sorted(pal.weights.rbegin(), pal.weights.rend()));
  }
}

// Just more distinct colours than clusters, in tight groups: Lloyd empties clusters, which
// must be refilled (never left empty, never duplicated).
TEST(KMeans, EmptyClustersAreRefilled) {
  for (int extra = 1; extra <= 4; ++extra) {
    std::vector<std::pair<std::uint32_t, int>> px;
    const int k = 10;
    for (int i = 0; i < k + extra; ++i) {
      px.push_back({pack_rgb(i < 3 ? 250 - i : 10 + i, 40, 40), i < 3 ? 1000 : 1});
    }
    const auto p = points_of(px, ColorSpace::kRgb);
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
      const Palette pal = fit_one(p, ColorSpace::kRgb, KMeansParams{k, seed, 100, 0.0});
      ASSERT_EQ(pal.colors.size(), static_cast<std::size_t>(k));
      EXPECT_EQ(std::set<std::uint32_t>(pal.colors.begin(), pal.colors.end()).size(),
                static_cast<std::size_t>(k));
      for (auto w : pal.weights) EXPECT_GT(w, 0u);
    }
  }
}

TEST(KMeans, SameSeedSameResultWhateverTheThreadsAndBatch) {
  std::mt19937 rng(5);
  Batch batch;
  batch.space = ColorSpace::kLab;
  std::vector<ImagePoints> images;
  for (int i = 0; i < 23; ++i) {
    images.push_back(random_points(rng, 2000, 6, ColorSpace::kLab));
    batch.add(images.back());
    if (i % 7 == 3) batch.add_empty();
  }
  const KMeansParams params{6, 99, 100, 0.5};
  BatchResult one, four;
  make_cpu_backend(1)->fit(batch, params, one);
  make_cpu_backend(4)->fit(batch, params, four);
  ASSERT_EQ(one.images(), batch.images());
  for (std::size_t i = 0; i < batch.images(); ++i) {
    const Palette a = make_palette(batch, i, one), b = make_palette(batch, i, four);
    EXPECT_EQ(a.colors, b.colors);
    EXPECT_EQ(a.weights, b.weights);
  }
  // Each image alone in its own batch gives the same palette as inside the big batch.
  std::size_t img = 0;
  for (std::size_t i = 0; i < batch.images(); ++i) {
    if (batch.points_of(i) == 0) continue;
    const Palette alone = fit_one(images[img++], ColorSpace::kLab, params);
    EXPECT_EQ(alone.colors, make_palette(batch, i, one).colors);
  }
}

// The CPU backend gives its scratch back (a server between requests) and clusters as before.
TEST(KMeans, ReleasingScratchChangesNoResult) {
  std::mt19937 rng(9);
  Batch batch;
  batch.space = ColorSpace::kLab;
  for (int i = 0; i < 5; ++i) batch.add(random_points(rng, 30000, 5, ColorSpace::kLab));
  const KMeansParams params{5, 3, 100, 0.5};
  const auto cpu = make_cpu_backend(2);
  BatchResult before, after;
  cpu->fit(batch, params, before);
  cpu->release_memory();
  cpu->fit(batch, params, after);
  for (std::size_t i = 0; i < batch.images(); ++i) {
    EXPECT_EQ(make_palette(batch, i, before).colors, make_palette(batch, i, after).colors);
    EXPECT_EQ(make_palette(batch, i, before).weights, make_palette(batch, i, after).weights);
  }
}

TEST(KMeans, EmptyImageHasNoClusters) {
  Batch batch;
  batch.add_empty();
  BatchResult r;
  make_cpu_backend(2)->fit(batch, KMeansParams{}, r);
  EXPECT_EQ(r.count[0], 0);
}

TEST(KMeans, ValidatesParameters) {
  EXPECT_THROW(validate(KMeansParams{0, 0, 10, 0.5}), Error);
  EXPECT_THROW(validate(KMeansParams{65, 0, 10, 0.5}), Error);
  EXPECT_THROW(validate(KMeansParams{5, 0, 0, 0.5}), Error);
  EXPECT_THROW(validate(KMeansParams{5, 0, 10, -1}), Error);
  EXPECT_NO_THROW(validate(KMeansParams{64, 0, 1, 0}));
}

TEST(KMeansMath, RandomIsCounterBasedAndUniformBelowStaysInRange) {
  EXPECT_EQ(math::random_u64(1, 2), math::random_u64(1, 2));
  EXPECT_NE(math::random_u64(1, 2), math::random_u64(1, 3));
  EXPECT_NE(math::random_u64(1, 2), math::random_u64(2, 2));
  for (std::uint64_t n : {1ull, 2ull, 3ull, 1000ull, (1ull << 63) + 5}) {
    for (std::uint64_t c = 0; c < 1000; ++c) {
      EXPECT_LT(math::uniform_below(math::random_u64(7, c), n), n);
    }
  }
  EXPECT_EQ(math::kmeanspp_trials(1), 2);
  EXPECT_EQ(math::kmeanspp_trials(5), 3);   // 2 + floor(ln 5)
  EXPECT_EQ(math::kmeanspp_trials(64), 6);  // 2 + floor(ln 64)
}

// The rules both backends share (kmeans_math.hpp), in their serial form (the CPU backend's
// loops) and their parallel form (what a thread block does: tiles, scans, maxima in any
// order), on the same data: the same answers.

// The k-means++ draw: std::upper_bound over the prefix sums (the CPU) against a block of 256
// threads scanning tile by tile, each thread testing draw_hits() on its own point (the kernel).
TEST(SharedRules, DrawSerialAndTiledScanPickTheSamePoint) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 200; ++round) {
    const std::size_t n = 1 + rng() % 3000;
    std::vector<std::uint64_t> value(n), cum(n);
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      // Zeros (points at a centre) and huge values (heavy, far points) among ordinary ones.
      const auto kind = rng() % 8;
      value[i] = kind == 0 ? 0 : kind == 1 ? (rng() >> 24) : 1 + rng() % 1000;
      cum[i] = total += value[i];
    }
    if (total == 0) continue;
    for (int trial = 0; trial < math::kDrawsPerCentre; ++trial) {
      const int centre = static_cast<int>(rng() % kMaxColors);
      const std::uint64_t r = math::kmeanspp_target(rng(), centre, trial, total);
      ASSERT_LT(r, total);
      const auto serial =
          static_cast<std::size_t>(std::upper_bound(cum.begin(), cum.end(), r) - cum.begin());
      constexpr std::size_t kBlock = 256;
      std::size_t tiled = n, hits = 0;
      std::uint64_t carry = 0;
      for (std::size_t base = 0; base < n; base += kBlock) {
        std::uint64_t excl = carry;  // the block's exclusive scan, thread by thread
        for (std::size_t t = 0; t < kBlock && base + t < n; ++t) {
          const std::uint64_t v = value[base + t];
          if (v > 0 && math::draw_hits(excl, v, r)) {
            tiled = base + t;
            ++hits;
          }
          excl += v;
        }
        carry = excl;
      }
      EXPECT_EQ(hits, 1u) << "exactly one point holds the target";
      EXPECT_EQ(tiled, serial) << "n " << n << " r " << r;
    }
  }
}

// Every candidate of every centre has its own random draw.
TEST(SharedRules, DrawCountersAreDistinct) {
  std::set<std::uint64_t> targets;
  for (int c = 0; c < kMaxColors; ++c) {
    for (int t = 0; t < (c == 0 ? 1 : math::kmeanspp_trials(kMaxColors)); ++t) {
      targets.insert(math::kmeanspp_target(99, c, t, ~std::uint64_t{0}));
    }
  }
  EXPECT_EQ(targets.size(), 1u + (kMaxColors - 1) * static_cast<std::size_t>(kMaxKmeansppTrials));
  EXPECT_EQ(kMaxKmeansppTrials, math::kmeanspp_trials(kMaxColors));
}

// "The largest value, the lowest index on ties": a first-to-last loop with `>` (the CPU) against
// the maximum of argmax keys taken in any order (atomicMax, tree reductions, per-thread columns).
TEST(SharedRules, ArgmaxKeysAgreeWithTheSerialLoopInAnyOrder) {
  std::mt19937 rng(6);
  for (int round = 0; round < 300; ++round) {
    const std::size_t n = 1 + rng() % 500;
    std::vector<std::uint32_t> weight(n);
    std::vector<float> distance(n);
    for (std::size_t i = 0; i < n; ++i) {
      weight[i] = 1 + rng() % (round % 3 == 0 ? 3 : 100000);  // many ties, or few
      distance[i] = static_cast<float>(rng() % (round % 2 ? 4 : 1000000)) / 7.0f;
    }
    std::size_t heaviest = 0, farthest = 0;  // serial
    for (std::size_t i = 1; i < n; ++i) {
      if (weight[i] > weight[heaviest]) heaviest = i;
      if (distance[i] > distance[farthest]) farthest = i;
    }
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::uint64_t mode = 0, refill = 0;  // parallel: any order
    for (const std::size_t i : order) {
      mode = std::max(mode, math::mode_key(weight[i], static_cast<std::uint32_t>(i)));
      refill = std::max(refill, math::refill_key(distance[i], static_cast<std::uint32_t>(i)));
    }
    EXPECT_EQ(math::argmax_index(mode), heaviest);
    EXPECT_EQ(math::argmax_index(refill), farthest);
  }
}

// The end of a pass: the CPU's loop and a block (one thread per cluster, maximum of the shifts'
// bits, as the kernel's atomicMax) give the same centroids and the same convergence decision.
TEST(SharedRules, CentroidUpdateAndShiftAgree) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 100; ++round) {
    const int k = 1 + static_cast<int>(rng() % kMaxColors);
    std::vector<std::int64_t> sx(k), sy(k), sz(k);
    std::vector<std::uint64_t> w(k);
    std::vector<float> cx(k), cy(k), cz(k);
    for (int j = 0; j < k; ++j) {
      w[j] = 1 + rng() % 100000;
      sx[j] = static_cast<std::int64_t>(w[j]) * (static_cast<int>(rng() % 32768) - 16384);
      sy[j] = static_cast<std::int64_t>(w[j]) * (static_cast<int>(rng() % 32768) - 16384);
      sz[j] = static_cast<std::int64_t>(w[j]) * (static_cast<int>(rng() % 32768) - 16384);
      cx[j] = static_cast<float>(rng() % 30000) - 15000.0f;
      cy[j] = static_cast<float>(rng() % 30000) - 15000.0f;
      cz[j] = static_cast<float>(rng() % 30000) - 15000.0f;
    }
    auto ax = cx, ay = cy, az = cz, bx = cx, by = cy, bz = cz;
    float serial = 0.0f;
    for (int j = 0; j < k; ++j) {
      serial =
          std::max(serial, math::update_centroid(sx[j], sy[j], sz[j], w[j], ax[j], ay[j], az[j]));
    }
    std::uint32_t bits = 0;
    for (int j = k - 1; j >= 0; --j) {  // the threads in any order
      bits = std::max(bits, math::float_bits(math::update_centroid(sx[j], sy[j], sz[j], w[j], bx[j],
                                                                   by[j], bz[j])));
    }
    EXPECT_EQ(math::float_bits(serial), bits);
    EXPECT_EQ(ax, bx);
    EXPECT_EQ(ay, by);
    EXPECT_EQ(az, bz);
    for (int j = 0; j < k; ++j) EXPECT_EQ(ax[j], math::centroid_coord(sx[j], w[j]));
  }
}

TEST(Palette, SharesRoundToExactly10000AndKeepTheirOrder) {
  EXPECT_EQ(round_shares({1, 1, 1}), (std::vector<std::uint32_t>{3334, 3333, 3333}));
  EXPECT_EQ(round_shares({2, 1}), (std::vector<std::uint32_t>{6667, 3333}));
  EXPECT_EQ(round_shares({}), (std::vector<std::uint32_t>{}));
  std::mt19937 rng(3);
  for (int t = 0; t < 200; ++t) {
    std::vector<std::uint64_t> w(1 + rng() % 64);
    for (auto& v : w) v = 1 + rng() % 100000;
    std::sort(w.rbegin(), w.rend());
    const auto s = round_shares(w);
    EXPECT_EQ(std::accumulate(s.begin(), s.end(), 0u), 10000u);
    EXPECT_TRUE(std::is_sorted(s.rbegin(), s.rend()));
  }
}

TEST(Palette, CentroidsRoundingToOneColourFallBackToMemberColours) {
  // Two clusters whose means both round to #808080: the palette must not repeat a colour.
  Batch batch;
  batch.space = ColorSpace::kRgb;
  ImagePoints p;
  for (std::uint32_t rgb : {0x7f7f7fu, 0x808080u, 0x818181u, 0x7f8080u}) {
    const auto c = to_space(rgb, ColorSpace::kRgb);
    p.x.push_back(c[0]);
    p.y.push_back(c[1]);
    p.z.push_back(c[2]);
    p.weight.push_back(1);
    p.rgb.push_back(rgb);
  }
  batch.add(p);
  BatchResult r;
  r.reset(1, 2);
  r.count[0] = 2;
  // Cluster 0 = {7f7f7f, 818181} (mean 808080), cluster 1 = {808080, 7f8080} (mean ~8080..).
  r.clusters[0] =
      ClusterStats{{(0x7f + 0x81) * 64, (0x7f + 0x81) * 64, (0x7f + 0x81) * 64}, 2, 0, 0};
  r.clusters[1] =
      ClusterStats{{(0x80 + 0x7f) * 64, (0x80 + 0x80) * 64, (0x80 + 0x80) * 64}, 2, 1, 0};
  const Palette pal = make_palette(batch, 0, r);
  ASSERT_EQ(pal.colors.size(), 2u);
  EXPECT_NE(pal.colors[0], pal.colors[1]);
  EXPECT_EQ(std::set<std::uint32_t>(pal.colors.begin(), pal.colors.end()),
            (std::set<std::uint32_t>{0x7f7f7f, 0x808080}));
}

}  // namespace
}  // namespace palette
