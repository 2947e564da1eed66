// How often the CUDA kernel's fma filter (CudaLloyd::kColumnsFma, kernels/lloyd_columns.hpp)
// cannot decide a point's nearest centroid from its keys and falls back to exact distances:
// per point, and per warp slot (the 32 points one load instruction of a warp covers, which run
// the fallback together if any of them needs it). Counted on the host over the Lloyd passes
// the CPU backend runs from k-means++ seeds, on the kernel benchmark's images (65,536 random
// pixels) and on the images of a folder when one is given. Not a test: it counts and prints.
//
//   build/bench/bench_filter_rechecks [DIR] [--iterations I]

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "lloyd_columns.hpp"
#include "palette/image_io.hpp"
#include "palette/kmeans.hpp"
#include "palette/kmeans_math.hpp"
#include "palette/points.hpp"

using namespace palette;

namespace {

struct Count {
  double points = 0, rechecks = 0, slots = 0, slot_rechecks = 0;
};

// The passes of Lloyd's iterations on `p` as the kernel would run them, counting the points
// the filter leaves to exact distances. Centroids of pass t come from the CPU backend's first
// t - 1 iterations (the same as the kernel's, bit for bit).
template <int KP>
void count_image(const ImagePoints& p, int k, int iterations, Count& c) {
  const PointsView v{p.x.data(), p.y.data(), p.z.data(), p.weight.data(), p.size()};
  KMeansScratch scratch;
  std::vector<int> seeds(static_cast<std::size_t>(k));
  kmeanspp_seeds(v, k, 0, scratch, seeds.data());
  std::uint32_t max_abs = 0;
  for (const auto* a : {&p.x, &p.y, &p.z}) {
    for (const int q : *a) max_abs = std::max<std::uint32_t>(max_abs, q < 0 ? -q : q);
  }
  const float margin = columns::tie_margin(max_abs);
  std::vector<float> cx(static_cast<std::size_t>(k)), cy(cx.size()), cz(cx.size());
  std::vector<ClusterStats> stats(cx.size());
  std::vector<char> recheck(p.size());
  for (int pass = 1; pass <= iterations; ++pass) {
    if (pass == 1) {
      for (int j = 0; j < k; ++j) {
        cx[j] = p.x[seeds[j]];
        cy[j] = p.y[seeds[j]];
        cz[j] = p.z[seeds[j]];
      }
    } else {
      int ran = 0;
      lloyd_image(v, KMeansParams{k, 0, pass - 1, 0.0}, 0.0f, seeds.data(), stats.data(), ran,
                  scratch);
      if (ran < pass - 1) break;  // converged: the kernel stops too
      for (int j = 0; j < k; ++j) {
        cx[j] = math::centroid_coord(stats[j].sum[0], stats[j].weight);
        cy[j] = math::centroid_coord(stats[j].sum[1], stats[j].weight);
        cz[j] = math::centroid_coord(stats[j].sum[2], stats[j].weight);
      }
    }
    columns::Centroids<KP, true> centroids;
    centroids.load(cx.data(), cy.data(), cz.data(), k, margin);
    for (std::size_t i = 0; i < p.size(); ++i) {
      recheck[i] = centroids.filtered(p.x[i], p.y[i], p.z[i]) < 0;
      c.rechecks += recheck[i];
    }
    c.points += static_cast<double>(p.size());
    // A warp's load takes 4 consecutive points per lane: slot e of the tile at `base` is points
    // base + 4 * lane + e.
    for (std::size_t base = 0; base < p.size(); base += 128) {
      for (std::size_t e = 0; e < 4; ++e) {
        bool any = false;
        for (std::size_t lane = 0; lane < 32; ++lane) {
          const std::size_t i = base + 4 * lane + e;
          any = any || (i < p.size() && recheck[i]);
        }
        c.slots += 1;
        c.slot_rechecks += any;
      }
    }
  }
}

void count(const ImagePoints& p, int k, int iterations, Count& c) {
  if (p.size() <= static_cast<std::size_t>(k)) return;
  columns::with_padded_k(k,
                         [&](auto kp) { count_image<decltype(kp)::value>(p, k, iterations, c); });
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int iterations = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) {
      iterations = std::atoi(argv[++i]);
    } else if (!a.empty() && a[0] != '-') {
      dir = a;
    } else {
      std::fprintf(stderr, "usage: bench_filter_rechecks [DIR] [--iterations I]\n");
      return 2;
    }
  }
  init_image_io();
  std::vector<DecodedImage> decoded;
  if (!dir.empty()) {
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.is_regular_file()) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      try {
        const FileBytes bytes = read_file(f);
        decoded.push_back(decode_image(bytes, DecodeOptions{}));
      } catch (const std::exception&) {
        // not an image (licence files and the like)
      }
    }
  }
  std::printf("fma filter re-checks over %d Lloyd passes (%% of points / %% of warp slots)\n",
              iterations);
  std::printf("%-6s %3s %26s %26s\n", "space", "k", "random 65,536 px (4 images)",
              dir.empty() ? "" : (std::to_string(decoded.size()) + " images of DIR").c_str());
  for (const ColorSpace space : {ColorSpace::kLab, ColorSpace::kOklab, ColorSpace::kRgb}) {
    for (const int k : {5, 8, 16}) {
      Count random, folder;
      for (unsigned img = 0; img < 4; ++img) {
        std::mt19937 rng(img);
        std::vector<std::uint8_t> px(65536 * 3);
        for (auto& b : px) b = static_cast<std::uint8_t>(rng());
        ImagePoints p;
        CollectScratch cs;
        collect_points(PixelView{px.data(), 65536, 1, 3, px.size()}, 0, space, p, cs);
        count(p, k, iterations, random);
      }
      for (const DecodedImage& d : decoded) {
        ImagePoints p;
        CollectScratch cs;
        collect_points(PixelView{d.pixels.data(), d.width, d.height, d.channels,
                                 static_cast<std::size_t>(d.width) * d.channels},
                       DecodeOptions{}.alpha_threshold, space, p, cs);
        count(p, k, iterations, folder);
      }
      auto pct = [](double a, double b) { return b > 0 ? 100.0 * a / b : 0.0; };
      std::printf("%-6s %3d %12.3f%% / %7.2f%% ", std::string(to_string(space)).c_str(), k,
                  pct(random.rechecks, random.points), pct(random.slot_rechecks, random.slots));
      if (folder.points > 0) {
        std::printf("%12.3f%% / %7.2f%%", pct(folder.rechecks, folder.points),
                    pct(folder.slot_rechecks, folder.slots));
      }
      std::printf("\n");
    }
  }
  return 0;
}
