// How much work the bounds variant of the CUDA kernel's Lloyd iterations skips, measured by
// running its source (kernels/lloyd_columns.hpp) on the host, one std::thread per GPU thread,
// on the kernel benchmark's images (65,536 random pixels each, 20 iterations, tol 0): the share
// of point-passes whose distances were computed. A count of work, the same on any machine; not
// a timing.
//
//   build/bench/bench_lloyd_work [--images N] [--pixels P] [--iterations I] [k...]

#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "lloyd_columns.hpp"
#include "palette/kmeans.hpp"
#include "palette/points.hpp"

using namespace palette;

namespace {

constexpr int kThreads = 256;  // as the kernel

struct HostBlock {
  int t;
  std::barrier<>* bar;
  int tid() const { return t; }
  void sync() const { bar->arrive_and_wait(); }
};

}  // namespace

int main(int argc, char** argv) {
  int images = 4, pixels = 65536, iterations = 20;
  std::vector<int> ks;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--images") {
      images = next();
    } else if (a == "--pixels") {
      pixels = next();
    } else if (a == "--iterations") {
      iterations = next();
    } else {
      ks.push_back(std::atoi(a.c_str()));
    }
  }
  if (ks.empty()) ks = {5, 8, 16};
  std::printf("%4s %8s %12s %18s\n", "k", "images", "iters/img", "distances computed");
  for (int k : ks) {
    if (k < 1 || k > columns::kMaxK) {
      std::fprintf(stderr, "bench_lloyd_work: k must be 1..%d\n", columns::kMaxK);
      return 2;
    }
    std::uint64_t computed_all = 0, point_passes = 0, iterations_all = 0;
    for (int img = 0; img < images; ++img) {
      std::mt19937 rng(static_cast<unsigned>(img));  // as bench_cuda_kmeans
      std::vector<std::uint8_t> px(static_cast<std::size_t>(pixels) * 3);
      for (auto& v : px) v = static_cast<std::uint8_t>(rng());
      ImagePoints p;
      CollectScratch collect;
      collect_points(PixelView{px.data(), pixels, 1, 3, px.size()}, 0, ColorSpace::kLab, p,
                     collect);
      if (p.size() <= static_cast<std::size_t>(k)) continue;
      const KMeansParams params{k, 0, iterations, 0.0};
      std::vector<int> seeds(static_cast<std::size_t>(k));
      KMeansScratch scratch;
      const PointsView view{p.x.data(), p.y.data(), p.z.data(), p.weight.data(), p.size()};
      kmeanspp_seeds(view, k, params.seed, scratch, seeds.data());
      std::uint64_t max_w = 0, total = 0;
      std::uint32_t max_abs = 0;
      for (std::size_t i = 0; i < p.size(); ++i) {
        max_w = std::max<std::uint64_t>(max_w, p.weight[i]);
        total += p.weight[i];
        for (int v : {p.x[i], p.y[i], p.z[i]}) {
          max_abs = std::max<std::uint32_t>(max_abs, static_cast<std::uint32_t>(std::abs(v)));
        }
      }
      const std::uint32_t every = columns::flush_tiles(max_w, total, max_abs, false);
      auto sh = std::make_unique<columns::Shared<kThreads>>();
      std::vector<std::uint64_t> area(columns::column_bytes(k, kThreads) / 8);
      std::vector<std::uint32_t> words(p.size());
      const columns::ImageRef ref{p.x.data(), p.y.data(), p.z.data(), p.weight.data(),
                                  static_cast<std::uint32_t>(p.size())};
      std::vector<ClusterStats> out(static_cast<std::size_t>(k));
      std::vector<std::uint32_t> computed(kThreads);
      std::barrier<> bar(kThreads);
      int ran = 0;
      {
        std::vector<std::jthread> threads;
        for (int t = 0; t < kThreads; ++t) {
          threads.emplace_back([&, t] {
            const HostBlock b{t, &bar};
            const int r = columns::lloyd_bounds_any<kThreads>(
                b, *sh, reinterpret_cast<std::int32_t*>(area.data()), ref,
                columns::PointState{words.data()}, seeds.data(), k, iterations,
                shift_limit2(params, ColorSpace::kLab), every, out.data(), computed.data());
            if (t == 0) ran = r;
          });
        }
      }
      for (auto c : computed) computed_all += c;
      point_passes += p.size() * static_cast<std::uint64_t>(ran);
      iterations_all += static_cast<std::uint64_t>(ran);
    }
    std::printf("%4d %8d %12.1f %17.1f%%\n", k, images,
                static_cast<double>(iterations_all) / images,
                100.0 * static_cast<double>(computed_all) / static_cast<double>(point_passes));
  }
  return 0;
}
