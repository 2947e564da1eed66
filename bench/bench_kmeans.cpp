// Micro benchmarks of the k-means core: images/s for 256-px images (256x171 pixels, the size a
// 3:2 photo is shrunk to by default) at k = 5 and 8. Not a test: it measures and prints.
//
//   build/bench/bench_kmeans [--benchmark_filter=...]

#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "palette/backend.hpp"
#include "palette/kmeans.hpp"
#include "palette/points.hpp"
#include "palette/thread_pool.hpp"

namespace palette {
namespace {

constexpr int kWidth = 256, kHeight = 171;

// Photo-like pixels: a few smooth colour fields with noise, so most pixels are distinct colours
// (as in real photos shrunk with area averaging: 10k-40k distinct colours per image).
std::vector<std::uint8_t> synthetic_photo(unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> noise(0, 6);
  double base[4][3];
  for (auto& b : base) {
    for (double& c : b) c = 30 + 200 * u(rng);
  }
  std::vector<std::uint8_t> px(static_cast<std::size_t>(kWidth) * kHeight * 3);
  for (int y = 0; y < kHeight; ++y) {
    for (int x = 0; x < kWidth; ++x) {
      const double fx = static_cast<double>(x) / kWidth, fy = static_cast<double>(y) / kHeight;
      const double w[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
      for (int c = 0; c < 3; ++c) {
        double v = 0;
        for (int k = 0; k < 4; ++k) v += w[k] * base[k][c];
        v += noise(rng);
        px[(static_cast<std::size_t>(y) * kWidth + x) * 3 + c] =
            static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
      }
    }
  }
  return px;
}

const std::vector<std::vector<std::uint8_t>>& photos() {
  static const auto p = [] {
    std::vector<std::vector<std::uint8_t>> v;
    for (unsigned i = 0; i < 64; ++i) v.push_back(synthetic_photo(i));
    return v;
  }();
  return p;
}

Batch make_batch(ColorSpace space) {
  Batch batch;
  batch.space = space;
  ImagePoints p;
  CollectScratch scratch;
  for (const auto& px : photos()) {
    collect_points(PixelView{px.data(), kWidth, kHeight, 3, kWidth * 3u}, 0, space, p, scratch);
    batch.add(p);
  }
  return batch;
}

// Dedup + colour conversion of one image (the "prepare" stage).
void BM_CollectPoints(benchmark::State& state) {
  const auto space = static_cast<ColorSpace>(state.range(0));
  ImagePoints p;
  CollectScratch scratch;
  std::size_t i = 0, distinct = 0;
  for (auto _ : state) {
    const auto& px = photos()[i++ % photos().size()];
    collect_points(PixelView{px.data(), kWidth, kHeight, 3, kWidth * 3u}, 0, space, p, scratch);
    distinct += p.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["distinct/img"] = static_cast<double>(distinct) / state.iterations();
  state.SetLabel(std::string(to_string(space)));
}
BENCHMARK(BM_CollectPoints)->Arg(0)->Arg(1)->Arg(2);

// K-means of one image on one thread: the per-image cost.
void BM_KMeansOneImage(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const Batch batch = make_batch(ColorSpace::kLab);
  KMeansParams params;
  params.k = k;
  const float limit2 = shift_limit2(params, batch.space);
  std::vector<ClusterStats> out(k);
  KMeansScratch scratch;
  std::size_t i = 0, iters = 0;
  for (auto _ : state) {
    const std::size_t img = i++ % batch.images();
    const std::size_t b = batch.offsets[img];
    const PointsView view{batch.x.data() + b, batch.y.data() + b, batch.z.data() + b,
                          batch.weight.data() + b, batch.points_of(img)};
    int it = 0;
    benchmark::DoNotOptimize(kmeans_image(view, params, limit2, out.data(), it, scratch));
    iters += static_cast<std::size_t>(it);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["iter/img"] = static_cast<double>(iters) / state.iterations();
}
BENCHMARK(BM_KMeansOneImage)->Arg(5)->Arg(8)->Unit(benchmark::kMicrosecond);

// The CPU backend on a batch of 64 images with every core: images/s of the cluster stage.
void BM_CpuBackendBatch(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const Batch batch = make_batch(ColorSpace::kLab);
  auto backend = make_cpu_backend(available_cpus());
  KMeansParams params;
  params.k = k;
  BatchResult result;
  for (auto _ : state) backend->fit(batch, params, result);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch.images()));
  state.SetLabel(backend->device());
}
BENCHMARK(BM_CpuBackendBatch)->Arg(5)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace palette

BENCHMARK_MAIN();
