// CPU and CUDA backends on the same batches: identical cluster statistics, iterations and
// palettes, bit for bit. Skipped (never passed) without a CUDA device.

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <random>

#include "palette/backend.hpp"
#include "palette/palette.hpp"
#include "support/gpu.hpp"

#ifdef PALETTE_WITH_CUDA
#include "cuda_backend_internal.hpp"
#include "palette/cuda_backend.hpp"
#endif

namespace palette {
namespace {

using test::batch_of;
using test::distinct_image;
using test::random_image;

#ifdef PALETTE_WITH_CUDA
// The product's CUDA backend runs the columns variant (warp sums where columns cannot hold an
// image); the warp variant on every image is checked too.
constexpr cuda::LloydVariant kVariants[] = {cuda::LloydVariant::kColumns,
                                            cuda::LloydVariant::kWarp};
#endif

// Runs `batch` through both backends (the CUDA one with each Lloyd variant) and compares
// everything they return.
void expect_parity(const Batch& batch, const KMeansParams& params, const std::string& where) {
#ifdef PALETTE_WITH_CUDA
  BatchResult cpu;
  make_cpu_backend(2)->fit(batch, params, cpu);
  for (const cuda::LloydVariant lloyd : kVariants) {
    BatchResult gpu;
    cuda::make_backend_for_tests(0, {lloyd})->fit(batch, params, gpu);
    const std::string what = where + " (" + to_string(lloyd) + ")";
    ASSERT_EQ(cpu.images(), gpu.images()) << what;
    int mismatches = 0;
    for (std::size_t i = 0; i < batch.images() && mismatches < 5; ++i) {
      const bool same_shape =
          cpu.count[i] == gpu.count[i] && cpu.iterations[i] == gpu.iterations[i];
      EXPECT_TRUE(same_shape) << what << ", image " << i << ": count " << cpu.count[i] << " vs "
                              << gpu.count[i] << ", iterations " << cpu.iterations[i] << " vs "
                              << gpu.iterations[i];
      if (!same_shape) {
        ++mismatches;
        continue;
      }
      for (int j = 0; j < cpu.count[i]; ++j) {
        const ClusterStats& a = cpu.clusters[i * params.k + j];
        const ClusterStats& b = gpu.clusters[i * params.k + j];
        const bool same = a.sum[0] == b.sum[0] && a.sum[1] == b.sum[1] && a.sum[2] == b.sum[2] &&
                          a.weight == b.weight && a.mode == b.mode;
        EXPECT_TRUE(same) << what << ", image " << i << " cluster " << j << ": weight " << a.weight
                          << " vs " << b.weight << ", mode " << a.mode << " vs " << b.mode;
        if (!same) {
          ++mismatches;
          break;
        }
      }
      if (batch.points_of(i) > 0) {
        const Palette pa = make_palette(batch, i, cpu), pb = make_palette(batch, i, gpu);
        EXPECT_EQ(pa.colors, pb.colors) << what << ", image " << i;
        EXPECT_EQ(pa.shares_e4, pb.shares_e4) << what << ", image " << i;
      }
    }
  }
#else
  (void)batch;
  (void)params;
  (void)where;
#endif
}

TEST(Parity, KnownColourBlocks) {
  PALETTE_REQUIRE_GPU();
  std::vector<ImagePoints> images;
  CollectScratch scratch;
  for (int v = 0; v < 6; ++v) {
    std::vector<std::uint8_t> px;
    const std::uint32_t colors[4] = {0xd62728, 0x1f77b4, 0x2ca02c, 0xff7f0e};
    for (int c = 0; c < 4; ++c) {
      for (int i = 0; i < (c + 1) * (v + 3) * 7; ++i) {
        px.push_back(static_cast<std::uint8_t>(colors[c] >> 16));
        px.push_back(static_cast<std::uint8_t>(colors[c] >> 8));
        px.push_back(static_cast<std::uint8_t>(colors[c]));
      }
    }
    ImagePoints p;
    collect_points(PixelView{px.data(), static_cast<int>(px.size() / 3), 1, 3, px.size()}, 0,
                   ColorSpace::kLab, p, scratch);
    images.push_back(p);
  }
  for (int k : {2, 3, 4, 5, 8}) {
    expect_parity(batch_of(images, ColorSpace::kLab), KMeansParams{k, 0, 100, 0.5},
                  "blocks k=" + std::to_string(k));
  }
}

TEST(Parity, RandomImagesEverySpaceAndK) {
  PALETTE_REQUIRE_GPU();
  std::mt19937 rng(11);
  for (auto space : {ColorSpace::kLab, ColorSpace::kOklab, ColorSpace::kRgb}) {
    std::vector<ImagePoints> images;
    for (int i = 0; i < 40; ++i) {
      images.push_back(random_image(rng, 100 + static_cast<int>(rng() % 6000),
                                    1 + static_cast<int>(rng() % 10), 20, space));
    }
    const Batch batch = batch_of(images, space);
    for (int k : {1, 2, 5, 8, 16, 64}) {
      for (double tol : {0.0, 0.5}) {
        expect_parity(batch, KMeansParams{k, rng(), 100, tol},
                      std::string(to_string(space)) + " k=" + std::to_string(k) +
                          " tol=" + std::to_string(tol));
      }
    }
  }
}

// Point counts around the warp (32) and block (256) sizes, and k above the colour count.
TEST(Parity, TailsAndFewColours) {
  PALETTE_REQUIRE_GPU();
  std::mt19937 rng(5);
  std::vector<ImagePoints> images;
  for (int n : {1, 2, 5, 8, 9, 31, 32, 33, 63, 64, 65, 255, 256, 257, 511, 512, 513, 1025}) {
    images.push_back(distinct_image(rng, n, 1 + n % 7, ColorSpace::kLab));
  }
  const Batch batch = batch_of(images, ColorSpace::kLab);
  for (int k : {1, 5, 8, 32, 64}) {
    expect_parity(batch, KMeansParams{k, 3, 100, 0.5}, "tails k=" + std::to_string(k));
  }
}

TEST(Parity, EmptyClustersAndTies) {
  PALETTE_REQUIRE_GPU();
  // Heavy colours and many near-duplicates: Lloyd empties clusters, weights tie.
  std::vector<ImagePoints> images;
  CollectScratch scratch;
  for (int extra = 1; extra <= 6; ++extra) {
    std::vector<std::uint8_t> px;
    for (int i = 0; i < 10 + extra; ++i) {
      const int reps = i < 3 ? 1000 : 1 + i % 2;
      for (int r = 0; r < reps; ++r) {
        px.push_back(static_cast<std::uint8_t>(i < 3 ? 250 - i : 10 + i));
        px.push_back(40);
        px.push_back(40);
      }
    }
    ImagePoints p;
    collect_points(PixelView{px.data(), static_cast<int>(px.size() / 3), 1, 3, px.size()}, 0,
                   ColorSpace::kRgb, p, scratch);
    images.push_back(p);
  }
  const Batch batch = batch_of(images, ColorSpace::kRgb);
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    expect_parity(batch, KMeansParams{10, seed, 100, 0.0}, "empties seed " + std::to_string(seed));
  }
}

// Colours covering thousands of pixels each (flat areas): the kernel's wide sums.
TEST(Parity, HeavyWeights) {
  PALETTE_REQUIRE_GPU();
  std::mt19937 rng(31);
  std::vector<ImagePoints> images;
  CollectScratch scratch;
  for (int i = 0; i < 12; ++i) {
    std::vector<std::uint8_t> px;
    for (int c = 0; c < 6; ++c) {
      const std::uint32_t color = rng() & 0xFFFFFF;
      const int reps =
          c < 2 ? 3000 + static_cast<int>(rng() % 60000) : 1 + static_cast<int>(rng() % 50);
      for (int r = 0; r < reps; ++r) {
        px.push_back(static_cast<std::uint8_t>(color >> 16));
        px.push_back(static_cast<std::uint8_t>(color >> 8));
        px.push_back(static_cast<std::uint8_t>(color));
      }
    }
    const ImagePoints p = random_image(rng, 3000, 4, 30, ColorSpace::kLab);
    // The flat colours plus a noisy image's pixels, collected together.
    std::vector<std::uint8_t> all = px;
    for (std::size_t j = 0; j < p.size(); ++j) {
      for (std::uint32_t w = 0; w < p.weight[j]; ++w) {
        all.push_back(static_cast<std::uint8_t>(p.rgb[j] >> 16));
        all.push_back(static_cast<std::uint8_t>(p.rgb[j] >> 8));
        all.push_back(static_cast<std::uint8_t>(p.rgb[j]));
      }
    }
    ImagePoints merged;
    collect_points(PixelView{all.data(), static_cast<int>(all.size() / 3), 1, 3, all.size()}, 0,
                   ColorSpace::kLab, merged, scratch);
    ASSERT_GT(*std::max_element(merged.weight.begin(), merged.weight.end()), 2047u);
    images.push_back(merged);
  }
  for (int k : {3, 5, 8}) {
    expect_parity(batch_of(images, ColorSpace::kLab), KMeansParams{k, 6, 100, 0.5},
                  "heavy k=" + std::to_string(k));
  }
}

TEST(Parity, OneImageAndFiveThousandImages) {
  PALETTE_REQUIRE_GPU();
  std::mt19937 rng(9);
  expect_parity(batch_of({random_image(rng, 40000, 8, 30, ColorSpace::kLab)}, ColorSpace::kLab),
                KMeansParams{8, 1, 100, 0.5}, "one image");
  std::vector<ImagePoints> images;
  for (int i = 0; i < 5000; ++i) {
    images.push_back(i % 97 == 0
                         ? ImagePoints{}
                         : random_image(rng, 50 + static_cast<int>(rng() % 400),
                                        1 + static_cast<int>(rng() % 6), 25, ColorSpace::kLab));
  }
  expect_parity(batch_of(images, ColorSpace::kLab), KMeansParams{5, 2, 100, 0.5}, "5000 images");
}

TEST(Parity, FirstIterationOnly) {
  PALETTE_REQUIRE_GPU();
  std::mt19937 rng(13);
  std::vector<ImagePoints> images;
  for (int i = 0; i < 20; ++i) images.push_back(random_image(rng, 3000, 6, 40, ColorSpace::kLab));
  expect_parity(batch_of(images, ColorSpace::kLab), KMeansParams{6, 4, 1, 0.5}, "max_iter 1");
}

#ifdef PALETTE_WITH_CUDA
// `count` batches of noise images (2,000 pixels around 5 colours), the b-th of
// images + b * step images.
std::vector<Batch> noise_batches(unsigned seed, int count, int images, int step) {
  std::mt19937 rng(seed);
  std::vector<Batch> batches;
  for (int b = 0; b < count; ++b) {
    std::vector<ImagePoints> points;
    for (int i = 0; i < images + b * step; ++i) {
      points.push_back(random_image(rng, 2000, 5, 30, ColorSpace::kLab));
    }
    batches.push_back(batch_of(points, ColorSpace::kLab));
  }
  return batches;
}

// Every image of `batch` has the palette the CPU backend gives it in `result`.
void expect_cpu_palettes(const Batch& batch, const KMeansParams& params, const BatchResult& result,
                         const std::string& what) {
  BatchResult cpu;
  make_cpu_backend(2)->fit(batch, params, cpu);
  ASSERT_EQ(result.images(), batch.images()) << what;
  for (std::size_t i = 0; i < batch.images(); ++i) {
    EXPECT_EQ(make_palette(batch, i, cpu).colors, make_palette(batch, i, result).colors)
        << what << ", image " << i;
  }
}

// Submits every batch to `backend` with at most two in flight, as the pipeline does.
std::vector<BatchResult> run_two_in_flight(Backend& backend, const std::vector<Batch>& batches,
                                           const KMeansParams& params) {
  std::vector<BatchResult> results(batches.size());
  backend.submit(batches[0], params, results[0]);
  for (std::size_t b = 1; b < batches.size(); ++b) {
    backend.submit(batches[b], params, results[b]);
    backend.finish();  // batch b-1
  }
  backend.finish();
  return results;
}
#endif

// Through the asynchronous interface with two batches in flight, as the pipeline uses it.
TEST(Parity, TwoBatchesInFlight) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  const std::vector<Batch> batches = noise_batches(17, 5, 50, 10);
  const KMeansParams params{5, 7, 100, 0.5};
  auto gpu = make_cuda_backend(0);
  ASSERT_GE(gpu->max_in_flight(), 2);
  const std::vector<BatchResult> results = run_two_in_flight(*gpu, batches, params);
  for (std::size_t b = 0; b < batches.size(); ++b) {
    expect_cpu_palettes(batches[b], params, results[b], "batch " + std::to_string(b));
    EXPECT_GT(results[b].device_seconds, 0.0);
  }
#endif
}

// fit() while another batch is in flight: it returns its own batch; the other one is still
// there for finish(), and a batch submitted after the fit() does not take its slot.
TEST(Parity, FitWithABatchInFlight) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  const std::vector<Batch> batches = noise_batches(18, 3, 40, 7);
  const KMeansParams params{5, 9, 100, 0.5};
  auto gpu = make_cuda_backend(0);
  BatchResult first, second, third;
  gpu->submit(batches[0], params, first);
  gpu->fit(batches[1], params, second);
  gpu->submit(batches[2], params, third);
  gpu->finish();  // the first
  gpu->finish();  // the third
  expect_cpu_palettes(batches[0], params, first, "submitted batch");
  expect_cpu_palettes(batches[1], params, second, "fitted batch");
  expect_cpu_palettes(batches[2], params, third, "batch submitted after the fit");
#endif
}

// fit() while both slots hold a batch (a multi-device backend hands a failed device's batch to a
// device that has two in flight): a spare slot takes it; the two in flight are untouched.
TEST(Parity, FitWhileBothSlotsHoldABatch) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  const std::vector<Batch> batches = noise_batches(21, 4, 30, 6);
  const KMeansParams params{5, 10, 100, 0.5};
  auto gpu = make_cuda_backend(0);
  ASSERT_EQ(gpu->max_in_flight(), 2);
  std::vector<BatchResult> results(batches.size());
  gpu->submit(batches[0], params, results[0]);
  gpu->submit(batches[1], params, results[1]);
  gpu->fit(batches[2], params, results[2]);
  gpu->fit(batches[3], params, results[3]);  // the spare slot again
  gpu->finish();
  gpu->finish();
  for (std::size_t b = 0; b < batches.size(); ++b) {
    expect_cpu_palettes(batches[b], params, results[b], "batch " + std::to_string(b));
  }
#endif
}

// release_memory() gives the slots' device buffers back (the device's free memory grows by at
// least what the batch's points took), and the next batches grow them again and cluster the same.
TEST(Parity, ReleasedMemoryIsGivenBackAndGrowsAgain) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  // 60 images of 20,000 distinct colours: 1.2 million points, at least 11 device bytes each
  // (coordinates, weight, label) in the slot that ran them.
  std::mt19937 rng(23);
  std::vector<ImagePoints> images;
  for (int i = 0; i < 60; ++i) images.push_back(distinct_image(rng, 20000, 9, ColorSpace::kLab));
  const Batch big = batch_of(images, ColorSpace::kLab);
  const std::vector<Batch> small = noise_batches(24, 3, 20, 5);
  const KMeansParams params{6, 12, 30, 0.5};
  auto gpu = make_cuda_backend(0);
  BatchResult first;
  gpu->fit(big, params, first);
  expect_cpu_palettes(big, params, first, "big batch");
  const std::size_t before = cuda_devices().at(0).free_memory;
  gpu->release_memory();
  const std::size_t after = cuda_devices().at(0).free_memory;
  EXPECT_GE(after, before + big.points() * 11)
      << "free device memory " << before << " -> " << after << " bytes";
  const std::vector<BatchResult> results = run_two_in_flight(*gpu, small, params);
  for (std::size_t b = 0; b < small.size(); ++b) {
    expect_cpu_palettes(small[b], params, results[b], "batch " + std::to_string(b));
  }
  BatchResult again;
  gpu->fit(big, params, again);
  expect_cpu_palettes(big, params, again, "big batch after the release");
  gpu->release_memory();  // nothing in flight, twice in a row: harmless
  gpu->release_memory();
#endif
}

// A device fault before the third of five batches (a kernel that traps: the context is dead
// from then on) is not taken for a lack of memory: the CPU fallback takes over the batches in
// flight and the rest, with the same results, and says so once.
TEST(Parity, DeviceFaultFallsBackToTheCpu) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  const std::vector<Batch> batches = noise_batches(19, 5, 30, 0);
  const KMeansParams params{5, 3, 100, 0.5};
  std::vector<std::string> failovers;
  auto backend =
      with_cpu_fallback(cuda::make_backend_for_tests(0, {cuda::LloydVariant::kColumns, 2}), 2,
                        [&](const std::string& e) { failovers.push_back(e); });
  const std::vector<BatchResult> results = run_two_in_flight(*backend, batches, params);
  ASSERT_EQ(failovers.size(), 1u);
  EXPECT_EQ(backend->name(), "cpu");
  for (std::size_t b = 0; b < batches.size(); ++b) {
    expect_cpu_palettes(batches[b], params, results[b], "batch " + std::to_string(b));
  }
#endif
}

#ifdef PALETTE_WITH_CUDA
// The device of the second member of a two-device backend: device 1 where there are two, else
// device 0 again (two backends sharing one GPU, each with its own streams and buffers: the
// multi-device logic on real backends, on a machine with one GPU).
int second_device() { return cuda_device_count() >= 2 ? 1 : 0; }

// Submits every batch to `backend` with as many in flight as it takes, as the pipeline does.
std::vector<BatchResult> run_all_in_flight(Backend& backend, const std::vector<Batch>& batches,
                                           const KMeansParams& params) {
  const int slots = backend.max_in_flight();
  std::vector<BatchResult> results(batches.size());
  std::size_t finished = 0;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    if (static_cast<int>(b - finished) == slots) {
      backend.finish();
      ++finished;
    }
    backend.submit(batches[b], params, results[b]);
  }
  for (; finished < batches.size(); ++finished) backend.finish();
  return results;
}

// with_devices() of device 0 and `second` (on second_device()), its notices kept in `failovers`
// (which must outlive it).
std::unique_ptr<Backend> two_devices(std::unique_ptr<Backend> second,
                                     std::vector<std::string>& failovers) {
  std::vector<DeviceBackend> devices;
  devices.push_back({0, make_cuda_backend(0)});
  devices.push_back({second_device(), std::move(second)});
  return with_devices(std::move(devices), 2,
                      [&failovers](const std::string& e) { failovers.push_back(e); });
}
#endif

// --devices: two devices as one backend (two GPUs, or two backends on one), batches spread over
// both with every slot of each in flight, the same palettes as the CPU.
TEST(Parity, TwoDevicesShareTheBatches) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  const std::vector<Batch> batches = noise_batches(20, 9, 40, 5);
  const KMeansParams params{5, 11, 100, 0.5};
  std::vector<std::string> failovers;
  const auto backend = two_devices(make_cuda_backend(second_device()), failovers);
  ASSERT_EQ(backend->max_in_flight(), 4);
  const std::vector<BatchResult> results = run_all_in_flight(*backend, batches, params);
  EXPECT_TRUE(failovers.empty());
  for (std::size_t b = 0; b < batches.size(); ++b) {
    expect_cpu_palettes(batches[b], params, results[b], "batch " + std::to_string(b));
  }
#endif
}

// A device that faults (a trapping kernel before its second batch) while every slot of both is
// in flight: its batches go to the other device, which takes them in a spare slot while its own
// two are in flight; the palettes are the CPU's. With two GPUs the other device goes on; on one
// GPU the fault takes the shared context with it, so both are lost and the CPU finishes.
// (Named *Fault*: gpu-check.sh runs these each in a process of its own.)
TEST(Parity, DeviceFaultHandsTheBatchesToTheOtherDevice) {
  PALETTE_REQUIRE_GPU();
#ifdef PALETTE_WITH_CUDA
  const std::vector<Batch> batches = noise_batches(22, 9, 40, 5);
  const KMeansParams params{5, 11, 100, 0.5};
  std::vector<std::string> failovers;
  const auto backend = two_devices(
      cuda::make_backend_for_tests(second_device(), {cuda::LloydVariant::kColumns, 1}), failovers);
  const std::vector<BatchResult> results = run_all_in_flight(*backend, batches, params);
  ASSERT_FALSE(failovers.empty());
  for (const auto& f : failovers) std::cout << "failover: " << f << "\n";
  if (second_device() == 1) {
    EXPECT_EQ(failovers.size(), 1u);
    EXPECT_EQ(backend->name(), "cuda");
    EXPECT_EQ(backend->max_in_flight(), 2);
  }
  for (std::size_t b = 0; b < batches.size(); ++b) {
    expect_cpu_palettes(batches[b], params, results[b], "batch " + std::to_string(b));
  }
#endif
}

}  // namespace
}  // namespace palette
