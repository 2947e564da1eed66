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
#include "cuda_testing.hpp"
#include "lloyd_columns.hpp"
#endif

namespace palette {
namespace {

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
    // Tile-by-tile seeding, and seed_block.hpp's (the fma variant's, k <= 16).
    for (const CudaLloyd lloyd : {CudaLloyd::kWarp, CudaLloyd::kColumnsFma}) {
      const auto device = cuda_testing::seeds(batch, params, 0, lloyd);
      KMeansScratch scratch;
      for (std::size_t i = 0; i < batch.images(); ++i) {
        if (batch.points_of(i) <= static_cast<std::size_t>(k)) continue;
        std::vector<int> host(k);
        kmeanspp_seeds(view(batch, i), k, params.seed, scratch, host.data());
        EXPECT_EQ(device[i], host) << to_string(lloyd) << " k=" << k << " image " << i;
      }
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

// With the Lloyd variant PALETTE_CUDA_LLOYD names (gpu-check.sh runs this suite with each).
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
    expect_matches_host(batch, params, cuda_testing::run(batch, params, 0, cuda_lloyd_from_env()),
                        "space " + std::to_string(space));
  }
#endif
}

// Every Lloyd variant on one batch that has every kind of image: light and heavy weights
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
  // so the columns path, which the fma variant then reads unpacked.
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
    for (const CudaLloyd lloyd : {CudaLloyd::kWarp, CudaLloyd::kColumns, CudaLloyd::kColumnsFma,
                                  CudaLloyd::kColumnsCluster}) {
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
  const BatchResult dev =
      cuda_testing::run(batch, KMeansParams{5, 0, 100, 0.5}, 0, cuda_lloyd_from_env());
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
  const BatchResult dev = cuda_testing::run(batch, params, 0, cuda_lloyd_from_env());
  std::vector<ClusterStats> host(2);
  KMeansScratch scratch;
  int iterations = 0;
  kmeans_image(view(batch, 0), params, shift_limit2(params, batch.space), host.data(), iterations,
               scratch);
  ASSERT_EQ(dev.count[0], 2);
  for (int j = 0; j < 2; ++j) EXPECT_EQ(dev.clusters[j].mode, host[j].mode);
  const std::set<std::uint32_t> modes{dev.clusters[0].mode, dev.clusters[1].mode};
  EXPECT_EQ(modes, (std::set<std::uint32_t>{2, 43}));  // first of the heaviest in each group
#endif
}

// CudaLloyd::kColumnsCluster runs as thread-block clusters on compute capability 9.0 and newer
// (else, and for k > 16, as columns-fma or warp sums), so that the kernel these tests and the
// benchmark check is the cluster kernel where it can be; its results equal the host's either way.
TEST(GpuKernel, ClusterVariantRunsAsClustersFromComputeCapability9) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  std::mt19937 rng(24);
  std::vector<ImagePoints> images;
  // The benchmark's kind of image (65,536 random pixels, nearly all distinct): large enough for
  // any cluster size (images below 4,096 points per block run as columns-fma); then small ones.
  images.push_back(noise_image(rng, 65536, ColorSpace::kLab));
  ASSERT_GE(images.back().size(), 8u * 4096u);
  for (int i = 0; i < 20; ++i) {
    images.push_back(random_image(rng, 100 + static_cast<int>(rng() % 4000),
                                  1 + static_cast<int>(rng() % 8), 30, ColorSpace::kLab));
  }
  const Batch batch = batch_of(images, ColorSpace::kLab);
  const int blocks = cuda_testing::cluster_blocks(batch, 8, 0);
  if (cuda_devices().front().cc_major >= 9) {
    EXPECT_TRUE(blocks == 2 || blocks == 4 || blocks == 8) << "blocks per image: " << blocks;
  } else {
    EXPECT_EQ(blocks, 0);
  }
  EXPECT_EQ(cuda_testing::cluster_blocks(batch, 20, 0), 0);
  for (int k : {3, 8, 16}) {
    const KMeansParams params{k, 77, 20, 0.0};
    expect_matches_host(batch, params,
                        cuda_testing::run(batch, params, 0, CudaLloyd::kColumnsCluster),
                        "columns-cluster k=" + std::to_string(k));
  }
#endif
}

// One image just large enough for the cluster kernel at any cluster size (8 blocks x 4,096
// points), few passes: small enough for compute-sanitizer's racecheck (gpu-check runs it there).
TEST(GpuKernel, ClusterKernelOnOneImage) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  std::mt19937 rng(25);
  const Batch batch = batch_of({noise_image(rng, 36000, ColorSpace::kLab)}, ColorSpace::kLab);
  ASSERT_GE(batch.points_of(0), 8u * 4096u);
  if (cuda_devices().front().cc_major >= 9) {
    EXPECT_GT(cuda_testing::cluster_blocks(batch, 5, 0), 0);
  }
  const KMeansParams params{5, 3, 3, 0.0};
  expect_matches_host(batch, params,
                      cuda_testing::run(batch, params, 0, CudaLloyd::kColumnsCluster),
                      "columns-cluster, one image");
#endif
}

// The cluster kernel's empty-cluster refills (counts and farthest points combined over the
// cluster's blocks through distributed shared memory), which the k-means++ seeds of noise images
// hardly ever need: Lloyd from given seeds, all on one point (k - 1 clusters start empty) or on
// two, against lloyd_image on the host. max_iter 1 refills in the last pass.
TEST(GpuKernel, ClusterKernelRefillsEmptyClustersAsTheHost) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  std::mt19937 rng(26);
  const Batch batch = batch_of(
      {noise_image(rng, 36000, ColorSpace::kLab), noise_image(rng, 34000, ColorSpace::kLab)},
      ColorSpace::kLab);
  for (std::size_t i = 0; i < batch.images(); ++i) ASSERT_GE(batch.points_of(i), 8u * 4096u);
  for (const int k : {3, 8, 16}) {
    std::vector<std::vector<int>> seeds(batch.images());
    seeds[0].assign(k, 1234);  // one point
    seeds[1].assign(k, 20000);
    for (int j = 0; j < k / 2; ++j) seeds[1][j] = 7;  // two points
    for (const int max_iter : {1, 3}) {
      const KMeansParams params{k, 0, max_iter, 0.0};
      if (cuda_devices().front().cc_major < 9) {  // no clusters there
        EXPECT_THROW(cuda_testing::run_from_seeds(batch, params, 0, seeds), Error);
        continue;
      }
      ASSERT_GT(cuda_testing::cluster_blocks(batch, k, 0), 0);
      const BatchResult dev = cuda_testing::run_from_seeds(batch, params, 0, seeds);
      KMeansScratch scratch;
      for (std::size_t i = 0; i < batch.images(); ++i) {
        std::vector<ClusterStats> host(k);
        int iterations = 0;
        lloyd_image(view(batch, i), params, shift_limit2(params, batch.space), seeds[i].data(),
                    host.data(), iterations, scratch);
        const std::string what = "k=" + std::to_string(k) + " max_iter " +
                                 std::to_string(max_iter) + ", image " + std::to_string(i);
        ASSERT_EQ(dev.count[i], k) << what;
        EXPECT_EQ(dev.iterations[i], iterations) << what;
        same_clusters(dev.clusters.data() + i * k, host.data(), k, what);
      }
    }
  }
#endif
}

// Heavy images in the cluster kernel: columns folded every tile or every few tiles (flush_tiles),
// and images it hands to its first block alone: weights beyond 32-bit columns (warp sums), or a
// colour of more than 65,535 pixels (its weight does not fit the packed points' 16 bits).
TEST(GpuKernel, ClusterKernelOnHeavyImages) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  std::mt19937 rng(27);
  std::vector<ImagePoints> images;
  std::vector<std::uint32_t> every;
  // 36,000 random pixels, then `colours` flat colours of `pixels` pixels each.
  for (const auto& [colours, pixels] : {std::pair{1, 70000}, {8, 40000}, {8, 20000}, {15, 10000}}) {
    std::vector<std::uint8_t> px(36000 * 3);
    for (auto& v : px) v = static_cast<std::uint8_t>(rng());
    for (int c = 0; c < colours; ++c) test::add_pixels(px, rng() & 0xFFFFFF, pixels);
    images.push_back(test::from_pixels(px, ColorSpace::kLab));
    const ImagePoints& p = images.back();
    ASSERT_GE(p.size(), 8u * 4096u);
    every.push_back(columns::flush_tiles_of(
        columns::ImageRef{p.x.data(), p.y.data(), p.z.data(), p.weight.data(),
                          static_cast<std::uint32_t>(p.size())}));
  }
  EXPECT_GT(*std::max_element(images[0].weight.begin(), images[0].weight.end()), 65535u);
  EXPECT_EQ(every[1], 0u);  // warp sums
  EXPECT_EQ(every[2], 1u);  // a fold after every tile
  EXPECT_GT(every[3], 1u);  // every few tiles
  EXPECT_LT(every[3], 5u);  // a pass is 5 tiles per block with 8 blocks
  images.push_back(noise_image(rng, 36000, ColorSpace::kLab));
  const Batch batch = batch_of(images, ColorSpace::kLab);
  if (cuda_devices().front().cc_major >= 9) {
    EXPECT_GT(cuda_testing::cluster_blocks(batch, 8, 0), 0);
  }
  for (const int k : {5, 8}) {
    const KMeansParams params{k, 9, 20, 0.0};
    expect_matches_host(batch, params,
                        cuda_testing::run(batch, params, 0, CudaLloyd::kColumnsCluster),
                        "heavy, columns-cluster k=" + std::to_string(k));
  }
#endif
}

}  // namespace
}  // namespace palette
