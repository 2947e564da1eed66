#include "palette/palette.hpp"

#include <algorithm>
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

}  // namespace palette
