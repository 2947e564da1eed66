// How much work the bounds variant of the CUDA kernel's Lloyd iterations skips, measured by
// running its source (kernels/lloyd_columns.hpp) on the host, one std::thread per GPU thread,
// on the kernel benchmark's images (65,536 random pixels each, 20 iterations, tol 0). Counts,
// the same on any machine; not timings:
// - distances: point-passes whose distances were computed;
// - warp-tiles: groups of 32 consecutive points (one warp's lanes in one tile) in which at
//   least one point computed, i.e. where the warp runs the distance code at all;
// - bytes: device memory one point-pass reads and writes in 32-byte sectors (coordinates 16
//   points per sector, weights and the per-point state 8), against the columns variant's 10.
// With --dir, on the images of a directory instead (decoded and shrunk as `palette extract`
// does, --size 256, CIELAB), with extract's defaults (100 iterations at most, tol 0.5).
//
//   build/bench/bench_lloyd_work [--images N] [--pixels P] [--iterations I] [k...]
//   build/bench/bench_lloyd_work --dir DIR [k...]

#include <algorithm>
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <filesystem>

#include "lloyd_columns.hpp"
#include "palette/image_io.hpp"
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
  double tol = 0.0;
  std::string dir;
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
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      ks.push_back(std::atoi(a.c_str()));
    }
  }
  if (ks.empty()) ks = {5, 8, 16};
  // The images: random pixels as bench_cuda_kmeans, or the directory's files.
  std::vector<ImagePoints> sources;
  if (dir.empty()) {
    for (int img = 0; img < images; ++img) {
      std::mt19937 rng(static_cast<unsigned>(img));  // as bench_cuda_kmeans
      std::vector<std::uint8_t> px(static_cast<std::size_t>(pixels) * 3);
      for (auto& v : px) v = static_cast<std::uint8_t>(rng());
      ImagePoints p;
      CollectScratch collect;
      collect_points(PixelView{px.data(), pixels, 1, 3, px.size()}, 0, ColorSpace::kLab, p,
                     collect);
      sources.push_back(std::move(p));
    }
  } else {
    init_image_io();
    iterations = 100;
    tol = 0.5;
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.is_regular_file()) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      try {
        const FileBytes bytes = read_file(f);
        const DecodedImage d = decode_image(bytes, DecodeOptions{});
        ImagePoints p;
        CollectScratch collect;
        collect_points(PixelView{d.pixels.data(), d.width, d.height, d.channels,
                                 static_cast<std::size_t>(d.width) * d.channels},
                       128, ColorSpace::kLab, p, collect);
        sources.push_back(std::move(p));
      } catch (const std::exception&) {
        // not an image (licence files and the like)
      }
    }
    images = static_cast<int>(sources.size());
  }
  std::printf("%4s %8s %10s %10s %11s %14s\n", "k", "images", "iters/img", "distances",
              "warp-tiles", "bytes/pt-pass");
  for (int k : ks) {
    if (k < 1 || k > columns::kMaxK) {
      std::fprintf(stderr, "bench_lloyd_work: k must be 1..%d\n", columns::kMaxK);
      return 2;
    }
    std::uint64_t computed_all = 0, point_passes = 0, iterations_all = 0, used = 0;
    std::uint64_t warp_tiles = 0, warp_tiles_busy = 0;
    double bytes = 0;
    for (const ImagePoints& p : sources) {
      if (p.size() <= static_cast<std::size_t>(k)) continue;
      ++used;
      const KMeansParams params{k, 0, iterations, tol};
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
      std::vector<std::uint32_t> words(p.size()), trace(p.size(), 0);
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
                shift_limit2(params, ColorSpace::kLab), every, out.data(), computed.data(),
                trace.data());
            if (t == 0) ran = r;
          });
        }
      }
      for (auto c : computed) computed_all += c;
      point_passes += p.size() * static_cast<std::uint64_t>(ran);
      iterations_all += static_cast<std::uint64_t>(ran);
      // Any point of each group of `g` consecutive points computed in pass `it`.
      const std::size_t n = p.size();
      auto busy_groups = [&](int it, std::size_t g) {
        std::uint64_t busy = 0;
        for (std::size_t first = 0; first < n; first += g) {
          bool any = false;
          for (std::size_t i = first; i < std::min(n, first + g) && !any; ++i) {
            any = (trace[i] >> (it - 1)) & 1u;
          }
          busy += any ? 1 : 0;
        }
        return busy;
      };
      for (int it = 1; it <= std::min(ran, 32); ++it) {
        warp_tiles += (n + 31) / 32;
        warp_tiles_busy += busy_groups(it, 32);
        const double sectors16 = static_cast<double>(busy_groups(it, 16));
        const double sectors8 = static_cast<double>(busy_groups(it, 8));
        // Every pass reads the state; a computing point reads its coordinates (3 int16 arrays)
        // and weight, and writes its state.
        bytes +=
            (it > 1 ? 4.0 * static_cast<double>(n) : 0.0) + 3 * 32 * sectors16 + 2 * 32 * sectors8;
      }
    }
    std::printf("%4d %8llu %10.1f %9.1f%% %10.1f%% %14.1f\n", k,
                static_cast<unsigned long long>(used),
                static_cast<double>(iterations_all) / static_cast<double>(used),
                100.0 * static_cast<double>(computed_all) / static_cast<double>(point_passes),
                100.0 * static_cast<double>(warp_tiles_busy) / static_cast<double>(warp_tiles),
                bytes / static_cast<double>(point_passes));
  }
  return 0;
}
