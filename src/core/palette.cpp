#include "palette/palette.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

namespace palette {

std::vector<std::uint32_t> round_shares(const std::vector<std::uint64_t>& weights) {
  const std::size_t n = weights.size();
  std::vector<std::uint32_t> out(n, 0);
  const std::uint64_t total = std::accumulate(weights.begin(), weights.end(), std::uint64_t{0});
  if (total == 0) return out;
  std::vector<std::uint64_t> rem(n);
  std::uint64_t assigned = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t scaled = weights[i] * 10000;
    out[i] = static_cast<std::uint32_t>(scaled / total);
    rem[i] = scaled % total;
    assigned += out[i];
  }
  // Hand the missing units to the largest remainders (heavier colour first on ties), which keeps
  // the order of the shares the same as the order of the weights.
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (rem[a] != rem[b]) return rem[a] > rem[b];
    return weights[a] > weights[b];
  });
  for (std::size_t i = 0; assigned < 10000 && i < n; ++i, ++assigned) ++out[order[i]];
  return out;
}

Palette make_palette(const Batch& batch, std::size_t image, const BatchResult& result) {
  Palette pal;
  const int count = result.count[image];
  const ClusterStats* stats = &result.clusters[image * static_cast<std::size_t>(result.k)];
  pal.iterations = result.iterations[image];
  pal.distinct = batch.points_of(image);

  std::vector<std::uint32_t> colors(count);
  for (int j = 0; j < count; ++j) {
    const auto w = static_cast<double>(stats[j].weight);
    colors[j] =
        to_rgb(static_cast<double>(stats[j].sum[0]) / w, static_cast<double>(stats[j].sum[1]) / w,
               static_cast<double>(stats[j].sum[2]) / w, batch.space);
  }
  auto sorted = colors;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    // Two centroids round to one hex colour: fall back to the heaviest member of every cluster.
    // Each distinct colour belongs to exactly one cluster, so these are all different.
    const std::size_t base = batch.offsets[image];
    for (int j = 0; j < count; ++j) colors[j] = batch.rgb[base + stats[j].mode];
  }

  std::vector<int> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    if (stats[a].weight != stats[b].weight) return stats[a].weight > stats[b].weight;
    return colors[a] < colors[b];
  });
  for (int j : order) {
    pal.colors.push_back(colors[j]);
    pal.weights.push_back(stats[j].weight);
    pal.total_weight += stats[j].weight;
  }
  pal.shares_e4 = round_shares(pal.weights);
  return pal;
}

std::optional<PaletteSort> parse_palette_sort(std::string_view name) {
  if (name == "share") return PaletteSort::kShare;
  if (name == "lightness") return PaletteSort::kLightness;
  if (name == "hue") return PaletteSort::kHue;
  return std::nullopt;
}

void shape_palette(Palette& p, const ShapeOptions& o) {
  if (!o.active() || p.colors.empty()) return;
  std::vector<std::uint32_t> colors = p.colors;
  std::vector<std::uint64_t> weights = p.weights;
  std::vector<std::array<double, 3>> lab(colors.size());
  for (std::size_t i = 0; i < colors.size(); ++i) lab[i] = srgb_to_lab(colors[i]);

  // Merge look-alikes, the closest pair first.
  while (o.merge_delta_e > 0 && colors.size() > 1) {
    std::size_t a = 0, b = 0;
    double best = o.merge_delta_e;
    for (std::size_t i = 0; i < colors.size(); ++i) {
      for (std::size_t j = i + 1; j < colors.size(); ++j) {
        const double d = delta_e2000(lab[i], lab[j]);
        if (d < best) {
          best = d;
          a = i;
          b = j;
        }
      }
    }
    if (a == b) break;
    const double wa = static_cast<double>(weights[a]), wb = static_cast<double>(weights[b]);
    std::array<double, 3> mean;
    for (int c = 0; c < 3; ++c) mean[c] = (lab[a][c] * wa + lab[b][c] * wb) / (wa + wb);
    colors[a] = to_rgb(mean[0] * 128.0, mean[1] * 128.0, mean[2] * 128.0, ColorSpace::kLab);
    lab[a] = srgb_to_lab(colors[a]);  // the colour as it will be written
    weights[a] += weights[b];
    colors.erase(colors.begin() + static_cast<std::ptrdiff_t>(b));
    weights.erase(weights.begin() + static_cast<std::ptrdiff_t>(b));
    lab.erase(lab.begin() + static_cast<std::ptrdiff_t>(b));
  }

  // Drop small colours (never the heaviest).
  if (o.min_share > 0 && colors.size() > 1) {
    const std::uint64_t total = std::accumulate(weights.begin(), weights.end(), std::uint64_t{0});
    const std::size_t heaviest = static_cast<std::size_t>(
        std::max_element(weights.begin(), weights.end()) - weights.begin());
    std::size_t kept = 0;
    for (std::size_t i = 0; i < colors.size(); ++i) {
      const double share = static_cast<double>(weights[i]) / static_cast<double>(total);
      if (i != heaviest && share < o.min_share) continue;
      colors[kept] = colors[i];
      weights[kept] = weights[i];
      lab[kept] = lab[i];
      ++kept;
    }
    colors.resize(kept);
    weights.resize(kept);
    lab.resize(kept);
  }

  // Order.
  std::vector<std::size_t> order(colors.size());
  std::iota(order.begin(), order.end(), 0);
  const auto by_share = [&](std::size_t a, std::size_t b) {
    if (weights[a] != weights[b]) return weights[a] > weights[b];
    return colors[a] < colors[b];
  };
  if (o.sort == PaletteSort::kShare) {
    std::sort(order.begin(), order.end(), by_share);
  } else if (o.sort == PaletteSort::kLightness) {
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      if (lab[a][0] != lab[b][0]) return lab[a][0] < lab[b][0];
      return by_share(a, b);
    });
  } else {
    constexpr double kDeg = 180.0 / 3.14159265358979323846;
    const auto chroma = [&](std::size_t i) { return std::hypot(lab[i][1], lab[i][2]); };
    const auto hue = [&](std::size_t i) {
      const double h = std::atan2(lab[i][2], lab[i][1]) * kDeg;
      return h < 0 ? h + 360.0 : h;
    };
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const bool na = chroma(a) < kNeutralChroma, nb = chroma(b) < kNeutralChroma;
      if (na != nb) return nb;  // colourful ones first
      if (!na && hue(a) != hue(b)) return hue(a) < hue(b);
      if (lab[a][0] != lab[b][0]) return lab[a][0] < lab[b][0];
      return by_share(a, b);
    });
  }
  p.colors.clear();
  p.weights.clear();
  p.total_weight = 0;
  for (const std::size_t i : order) {
    p.colors.push_back(colors[i]);
    p.weights.push_back(weights[i]);
    p.total_weight += weights[i];
  }
  p.shares_e4 = round_shares(p.weights);
}

void add_quality(Palette& p, const Batch& batch, std::size_t image, std::uint64_t pixels) {
  std::vector<std::array<double, 3>> lab(p.colors.size());
  for (std::size_t j = 0; j < p.colors.size(); ++j) lab[j] = srgb_to_lab(p.colors[j]);
  double sum = 0, weight = 0;
  for (std::size_t i = batch.offsets[image]; i < batch.offsets[image + 1]; ++i) {
    const auto c = srgb_to_lab(batch.rgb[i]);
    double best = INFINITY;
    for (const auto& q : lab) {
      const double d2 = (c[0] - q[0]) * (c[0] - q[0]) + (c[1] - q[1]) * (c[1] - q[1]) +
                        (c[2] - q[2]) * (c[2] - q[2]);
      best = std::min(best, d2);
    }
    sum += static_cast<double>(batch.weight[i]) * std::sqrt(best);
    weight += static_cast<double>(batch.weight[i]);
  }
  p.mean_delta_e = weight > 0 ? sum / weight : 0;
  p.excluded =
      pixels > 0 ? 1.0 - static_cast<double>(p.total_weight) / static_cast<double>(pixels) : 0;
}

std::vector<std::uint8_t> swatch_strip(const Palette& p, int width, int height) {
  std::vector<std::uint8_t> px(static_cast<std::size_t>(width) * height * 3, 255);
  std::uint64_t cum = 0;
  int x0 = 0;
  for (std::size_t i = 0; i < p.colors.size(); ++i) {
    cum += p.shares_e4[i];
    const int x1 = static_cast<int>((cum * static_cast<std::uint64_t>(width) + 5000) / 10000);
    for (int y = 0; y < height; ++y) {
      for (int x = x0; x < std::min(x1, width); ++x) {
        std::uint8_t* q = &px[(static_cast<std::size_t>(y) * width + x) * 3];
        q[0] = static_cast<std::uint8_t>(p.colors[i] >> 16);
        q[1] = static_cast<std::uint8_t>(p.colors[i] >> 8);
        q[2] = static_cast<std::uint8_t>(p.colors[i]);
      }
    }
    x0 = std::max(x0, x1);
  }
  return px;
}

}  // namespace palette
