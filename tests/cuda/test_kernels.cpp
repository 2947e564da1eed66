// GPU unit tests: the kernel's stages against the host reference, on the device alone (no
// backend, no streams). Skipped (never passed) without a CUDA device.

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <utility>

#include "palette/backend.hpp"
#include "palette/error.hpp"
#include "palette/kmeans.hpp"
#include "support/gpu.hpp"

#ifdef PALETTE_WITH_CUDA
#include "columns_layout.hpp"
#include "cuda_testing.hpp"
#endif

namespace palette {
namespace {

#ifdef PALETTE_WITH_CUDA
constexpr cuda::LloydVariant kVariants[] = {cuda::LloydVariant::kColumns,
                                            cuda::LloydVariant::kWarp};
#endif

using test::batch_of;
using test::distinct_image;
using test::noise_image;
using test::random_image;

[[maybe_unused]] PointsView view(const Batch& b, std::size_t i) {
  const std::size_t o = b.offsets[i];
  return {b.x.data() + o, b.y.data() + o, b.z.data() + o, b.weight.data() + o, b.points_of(i)};
}

TEST(GpuKernel, SeedsMatchTheHost) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  std::mt19937 rng(21);
  std::vector<ImagePoints> images;
  for (int i = 0; i < 30; ++i) {
    images.push_back(random_image(rng, 200 + static_cast<int>(rng() % 5000),
                                  1 + static_cast<int>(rng() % 9), 30, ColorSpace::kLab));
  }
  const Batch batch = batch_of(images, ColorSpace::kLab);
  for (int k : {2, 3, 5, 8, 16, 21, 64}) {
    const KMeansParams params{k, 1234 + static_cast<std::uint64_t>(k), 100, 0.5};
    const auto device = cuda_testing::seeds(batch, params, 0);
    KMeansScratch scratch;
    for (std::size_t i = 0; i < batch.images(); ++i) {
      if (batch.points_of(i) <= static_cast<std::size_t>(k)) continue;
      std::vector<int> host(k);
      kmeanspp_seeds(view(batch, i), k, params.seed, scratch, host.data());
      EXPECT_EQ(device[i], host) << " k=" << k << " image " << i;
    }
  }
#endif
}

#ifdef PALETTE_WITH_CUDA
// Whether clusters dev[0..count) equal host[0..count); a failure for the first that differs.
bool same_clusters(const ClusterStats* dev, const ClusterStats* host, int count,
                   const std::string& what) {
  for (int j = 0; j < count; ++j) {
    const ClusterStats &d = dev[j], &h = host[j];
    const bool same = d.sum[0] == h.sum[0] && d.sum[1] == h.sum[1] && d.sum[2] == h.sum[2] &&
                      d.weight == h.weight && d.mode == h.mode;
    EXPECT_TRUE(same) << what << " cluster " << j << ": weight " << d.weight << " vs " << h.weight
                      << ", mode " << d.mode << " vs " << h.mode;
    if (!same) return false;
  }
  return true;
}

// Every image of `dev` (the kernel's results on `batch`) against kmeans_image on the host.
void expect_matches_host(const Batch& batch, const KMeansParams& params, const BatchResult& dev,
                         const std::string& what) {
  KMeansScratch scratch;
  int mismatches = 0;
  for (std::size_t i = 0; i < batch.images() && mismatches < 5; ++i) {
    std::vector<ClusterStats> host(params.k);
    int iterations = 0;
    const int count = kmeans_image(view(batch, i), params, shift_limit2(params, batch.space),
                                   host.data(), iterations, scratch);
    ASSERT_EQ(dev.count[i], count) << what << ", image " << i;
    EXPECT_EQ(dev.iterations[i], iterations) << what << ", image " << i;
    if (!same_clusters(dev.clusters.data() + i * params.k, host.data(), count,
                       what + ", image " + std::to_string(i))) {
      ++mismatches;
    }
  }
}
#endif

// Both Lloyd variants.
TEST(GpuKernel, FullRunMatchesTheHostPerImage) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  std::mt19937 rng(22);
  std::vector<ImagePoints> images;
  for (int i = 0; i < 25; ++i) {
    images.push_back(random_image(rng, 500 + static_cast<int>(rng() % 20000), 7, 25,
                                  static_cast<ColorSpace>(i % 3)));
  }
  for (int space = 0; space < 3; ++space) {
    std::vector<ImagePoints> same;
    for (std::size_t i = space; i < images.size(); i += 3) same.push_back(images[i]);
    const Batch batch = batch_of(same, static_cast<ColorSpace>(space));
    const KMeansParams params{7, 5, 100, 0.0};
    for (const cuda::LloydVariant lloyd : kVariants) {
      expect_matches_host(batch, params, cuda_testing::run(batch, params, 0, lloyd),
                          std::string(to_string(lloyd)) + ", space " + std::to_string(space));
    }
  }
#endif
}

// Both Lloyd variants on one batch that has every kind of image: light and heavy weights
// (columns folded once per pass, every few tiles, or not usable: warp sums; weights above 16
// bits on the columns path), tails, fewer colours than k, empty images; k on both sides of
// every register padding and above 16.
TEST(GpuKernel, EveryLloydVariantMatchesTheHost) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  std::mt19937 rng(24);
  Batch batch;
  batch.space = ColorSpace::kLab;
  // Adds an image of `colors` flat colours (min_reps + up to spread pixels each) over noise;
  // checks that the columns variant treats it as `expect` says (lloyd_columns.hpp).
  enum Fold { kOncePerPass, kEveryFewTiles, kWarpSums };
  auto heavy = [&](int colors, int min_reps, int spread, Fold expect) {
    std::vector<std::uint8_t> px;
    for (int c = 0; c < colors; ++c) {
      test::add_pixels(px, rng() & 0xFFFFFF, min_reps + static_cast<int>(rng() % spread));
    }
    const ImagePoints noise = random_image(rng, 3000, 5, 30, ColorSpace::kLab);
    for (std::size_t j = 0; j < noise.size(); ++j) {
      test::add_pixels(px, noise.rgb[j], static_cast<int>(noise.weight[j]));
    }
    const ImagePoints p = test::from_pixels(px, ColorSpace::kLab);
    const std::uint32_t every =
        columns::flush_tiles_of({p.x.data(), p.y.data(), p.z.data(), p.weight.data(),
                                 static_cast<std::uint32_t>(p.size())});
    EXPECT_GT(*std::max_element(p.weight.begin(), p.weight.end()), 2047u);
    EXPECT_EQ(expect, every == 0xFFFFFFFFu ? kOncePerPass
                      : every == 0         ? kWarpSums
                                           : kEveryFewTiles);
    batch.add(p);
  };
  for (int i = 0; i < 6; ++i) {
    batch.add(random_image(rng, 200 + static_cast<int>(rng() % 30000),
                           1 + static_cast<int>(rng() % 9), 25, ColorSpace::kLab));
  }
  for (int n : {1, 7, 17, 31, 33, 255, 257, 1025}) {
    batch.add(distinct_image(rng, n, 1 + n % 5, ColorSpace::kLab));
  }
  batch.add_empty();
  // Dark colours with weights above 16 bits: small coordinates leave room in 32-bit columns,
  // so the columns path.
  {
    std::vector<std::uint8_t> px;
    for (int c = 0; c < 4; ++c) {
      test::add_pixels(px, rng() & 0x0F0F0F, 70000 + static_cast<int>(rng() % 50000));
    }
    for (int c = 0; c < 3000; ++c) {
      test::add_pixels(px, rng() & 0x0F0F0F, 1 + static_cast<int>(rng() % 20));
    }
    const ImagePoints p = test::from_pixels(px, ColorSpace::kLab);
    EXPECT_GT(*std::max_element(p.weight.begin(), p.weight.end()), 0xFFFFu);
    EXPECT_GT(columns::flush_tiles_of({p.x.data(), p.y.data(), p.z.data(), p.weight.data(),
                                       static_cast<std::uint32_t>(p.size())}),
              0u);
    batch.add(p);
  }
  heavy(3, 2100, 8000, kOncePerPass);
  heavy(60, 2000, 3000, kEveryFewTiles);
  heavy(2, 400000, 1000, kWarpSums);
  for (int k : {1, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16, 20}) {
    const KMeansParams params{k, 100 + static_cast<std::uint64_t>(k), 100, k % 2 ? 0.0 : 0.5};
    for (const cuda::LloydVariant lloyd : kVariants) {
      expect_matches_host(batch, params, cuda_testing::run(batch, params, 0, lloyd),
                          std::string(to_string(lloyd)) + " k=" + std::to_string(k));
    }
  }
#endif
}

TEST(GpuKernel, FewPointsAndEmptyImages) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  std::mt19937 rng(23);
  Batch batch;
  batch.space = ColorSpace::kLab;
  batch.add_empty();
  batch.add(distinct_image(rng, 1, 3, ColorSpace::kLab));
  batch.add(distinct_image(rng, 4, 3, ColorSpace::kLab));
  batch.add_empty();
  batch.add(distinct_image(rng, 5, 3, ColorSpace::kLab));
  for (const cuda::LloydVariant lloyd : kVariants) {
    const BatchResult dev = cuda_testing::run(batch, KMeansParams{5, 0, 100, 0.5}, 0, lloyd);
    EXPECT_EQ(dev.count[0], 0);
    EXPECT_EQ(dev.count[1], 1);
    EXPECT_EQ(dev.count[2], 4);
    EXPECT_EQ(dev.count[3], 0);
    EXPECT_EQ(dev.count[4], 5);
    for (int j = 0; j < 4; ++j) {
      const std::size_t o = batch.offsets[2];
      EXPECT_EQ(dev.clusters[2 * 5 + j].weight, batch.weight[o + j]);
      EXPECT_EQ(dev.clusters[2 * 5 + j].mode, static_cast<std::uint32_t>(j));
    }
  }
#endif
}

TEST(GpuKernel, HeaviestMemberBreaksTiesTowardsTheLowestIndex) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  // Two well separated groups; in each, several colours share the largest weight.
  ImagePoints p;
  auto add = [&](std::uint32_t rgb, std::uint32_t w) {
    const auto c = to_space(rgb, ColorSpace::kRgb);
    p.x.push_back(c[0]);
    p.y.push_back(c[1]);
    p.z.push_back(c[2]);
    p.weight.push_back(w);
    p.rgb.push_back(rgb);
    p.total_weight += w;
  };
  for (std::uint32_t i = 0; i < 40; ++i) add(pack_rgb(10 + i, 10, 10), i % 5 == 2 ? 9 : 1);
  for (std::uint32_t i = 0; i < 40; ++i)
    add(pack_rgb(200 + i / 2, 240, 10 + i), i % 7 == 3 ? 9 : 2);
  const Batch batch = batch_of({p}, ColorSpace::kRgb);
  const KMeansParams params{2, 8, 100, 0.0};
  std::vector<ClusterStats> host(2);
  KMeansScratch scratch;
  int iterations = 0;
  kmeans_image(view(batch, 0), params, shift_limit2(params, batch.space), host.data(), iterations,
               scratch);
  for (const cuda::LloydVariant lloyd : kVariants) {
    const BatchResult dev = cuda_testing::run(batch, params, 0, lloyd);
    ASSERT_EQ(dev.count[0], 2);
    for (int j = 0; j < 2; ++j) EXPECT_EQ(dev.clusters[j].mode, host[j].mode);
    const std::set<std::uint32_t> modes{dev.clusters[0].mode, dev.clusters[1].mode};
    EXPECT_EQ(modes, (std::set<std::uint32_t>{2, 43}));  // first of the heaviest in each group
  }
#endif
}

}  // namespace
}  // namespace palette
