// The CUDA kernel alone, timed with CUDA events: k-means for many images at once (default
// 10,000 images of 256x256 random pixels, 20 iterations, k = 5, 8, 16), images/s, and the time
// against the memory floor (bytes the kernel must read at least once / measured bandwidth),
// for each Lloyd variant (column sums, the default, and warp sums; see lloyd_variant.hpp), side
// by side in one run, and the k-means++ seeding stage alone (part of both variants' time).
// Variants run one after the other (the default, columns, first: the reference the other
// variant's results must equal on every image), each row printed as soon as it is measured.
// Not a test: it measures and prints; it fails (exit 1) only if a variant's results differ or
// a variant fails (its rows say FAILED; the rows before it stand).
//
//   build/bench/bench_cuda_kmeans [--images N] [--pixels P] [--iterations I] [--reps R]
//                                 [--lloyd columns|warp|all]
//                                 [--no-seeding] [k...]
//
// --no-seeding leaves out the seeding rows, so that a profiler sees only the variants' launches
// (one warm-up, then --reps).

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "cuda_testing.hpp"
#include "lloyd_variant.hpp"
#include "palette/cuda_backend.hpp"
#include "palette/kmeans.hpp"
#include "palette/points.hpp"
#include "palette/thread_pool.hpp"

using namespace palette;
using cuda::LloydVariant;

namespace {

// Images whose results (sums, weights, heaviest members, iterations) differ between a and b.
std::size_t differing_images(const BatchResult& a, const BatchResult& b, int k) {
  if (a.images() != b.images()) return std::max(a.images(), b.images());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.images(); ++i) {
    bool same = a.count[i] == b.count[i] && a.iterations[i] == b.iterations[i];
    for (int j = 0; same && j < a.count[i]; ++j) {
      const ClusterStats &x = a.clusters[i * k + j], &y = b.clusters[i * k + j];
      same = x.sum[0] == y.sum[0] && x.sum[1] == y.sum[1] && x.sum[2] == y.sum[2] &&
             x.weight == y.weight && x.mode == y.mode;
    }
    differ += same ? 0 : 1;
  }
  return differ;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t images = 10000, pixels = 65536;
  int iterations = 20, reps = 5;
  bool seeding_rows = true;
  std::vector<int> ks;
  // The default first (the reference).
  std::vector<LloydVariant> variants = {LloydVariant::kColumns, LloydVariant::kWarp};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::strtoull(argv[++i], nullptr, 10) : 0ull; };
    if (a == "--images") {
      images = next();
    } else if (a == "--pixels") {
      pixels = next();
    } else if (a == "--iterations") {
      iterations = static_cast<int>(next());
    } else if (a == "--no-seeding") {
      seeding_rows = false;
    } else if (a == "--reps") {
      reps = static_cast<int>(next());
    } else if (a == "--lloyd" && i + 1 < argc) {
      const std::string v = argv[++i];
      if (v == "columns" || v == "warp") {
        variants = {v == "warp" ? LloydVariant::kWarp : LloydVariant::kColumns};
      } else if (v != "all") {
        std::fprintf(stderr, "bench_cuda_kmeans: --lloyd takes columns, warp or all\n");
        return 2;
      }
    } else {
      ks.push_back(std::atoi(a.c_str()));
    }
  }
  if (ks.empty()) ks = {5, 8, 16};
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // every row out at once, even if a later one hangs
  if (cuda_device_count() == 0) {
    std::printf("bench_cuda_kmeans: no CUDA device, nothing to measure\n");
    return 0;
  }
  const auto dev = cuda_devices().front();

  // Random pixels (every colour equally likely: ~all distinct), prepared as the pipeline does.
  std::vector<ImagePoints> points(images);
  ThreadPool pool(available_cpus());
  pool.parallel_for(images, [&](std::size_t i, int) {
    std::mt19937 rng(static_cast<unsigned>(i));
    std::vector<std::uint8_t> px(pixels * 3);
    for (auto& v : px) v = static_cast<std::uint8_t>(rng());
    CollectScratch scratch;
    collect_points(PixelView{px.data(), static_cast<int>(pixels), 1, 3, px.size()}, 0,
                   ColorSpace::kLab, points[i], scratch);
  });
  Batch batch;
  batch.space = ColorSpace::kLab;
  for (const auto& p : points) batch.add(p);
  points.clear();

  const double bandwidth = cuda_testing::copy_bandwidth(0, std::size_t{1} << 30);
  // Read once: coordinates and weights of every point, the offsets; written once: results.
  const double bytes =
      static_cast<double>(batch.points()) * (3 * sizeof(std::int16_t) + sizeof(std::uint32_t)) +
      4.0 * static_cast<double>(batch.images() + 1);
  std::printf("GPU: %s (%d SMs), device copy bandwidth %.0f GB/s (read + write)\n",
              dev.name.c_str(), dev.multiprocessors, bandwidth / 1e9);
  std::printf("batch: %zu images, %zu pixels each, %zu distinct colours in all (%.0f per image)\n",
              batch.images(), pixels, batch.points(),
              static_cast<double>(batch.points()) / static_cast<double>(batch.images()));
  std::printf("%4s %14s %10s %14s %12s %14s %12s %10s  %s\n", "k", "lloyd", "iters/img",
              "GPU ms median", "GPU ms min", "images/s", "floor ms", "x floor",
              variants.size() > 1 ? "results" : "");
  const double floor_ms = 1000.0 * bytes / bandwidth;
  bool failed = false;
  // The seeding stage alone.
  for (int k : ks) {
    if (!seeding_rows) break;
    const KMeansParams params{k, 0, iterations, 0.0};
    const char* name = "seeding";
    try {
      const auto seeding = cuda_testing::time_kernel(batch, params, 0, reps, LloydVariant::kColumns,
                                                     /*seed_only=*/true);
      std::printf("%4d %14s %10s %14.2f %12.2f %14.0f %12s %10s\n", k, name, "-", seeding.median_ms,
                  seeding.min_ms, 1000.0 * static_cast<double>(batch.images()) / seeding.median_ms,
                  "-", "-");
    } catch (const std::exception& e) {
      std::printf("%4d %14s FAILED: %s\n", k, name, e.what());
      failed = true;
    }
  }
  // One variant after the other, each over every k, the first one (the default) the reference
  // the others must equal image for image (the tests check smaller batches): a variant that
  // fails (an exception; after a device fault every later one fails too) loses none of the rows
  // printed before it.
  std::vector<BatchResult> reference(ks.size());
  for (std::size_t v = 0; v < variants.size(); ++v) {
    const LloydVariant lloyd = variants[v];
    for (std::size_t ki = 0; ki < ks.size(); ++ki) {
      const int k = ks[ki];
      const KMeansParams params{k, 0, iterations, 0.0};
      const std::string name = to_string(lloyd);
      try {
        BatchResult r;
        const auto t = cuda_testing::time_kernel(batch, params, 0, reps, lloyd, false, &r);
        std::string same;
        if (v == 0) {
          reference[ki] = std::move(r);
          same = variants.size() > 1 ? "reference" : "";
        } else if (reference[ki].images() == 0) {
          same = "no reference (it failed)";
        } else {
          const std::size_t d = differing_images(reference[ki], r, k);
          same = d == 0 ? std::string("identical to ") + to_string(variants.front())
                        : "DIFFER FROM " + std::string(to_string(variants.front())) + " in " +
                              std::to_string(d) + " of " + std::to_string(r.images()) + " images";
          failed = failed || d != 0;
        }
        std::printf("%4d %14s %10.1f %14.2f %12.2f %14.0f %12.2f %10.1f  %s\n", k, name.c_str(),
                    t.mean_iterations, t.median_ms, t.min_ms,
                    1000.0 * static_cast<double>(batch.images()) / t.median_ms, floor_ms,
                    t.median_ms / floor_ms, same.c_str());
      } catch (const std::exception& e) {
        std::printf("%4d %14s FAILED: %s\n", k, name.c_str(), e.what());
        failed = true;
      }
    }
  }
  return failed ? 1 : 0;
}
