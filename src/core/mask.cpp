#include "palette/mask.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <vector>

namespace palette {

std::optional<Region> parse_region(std::string_view text) {
  std::array<double, 4> v{};
  int percents = 0;
  for (int i = 0; i < 4; ++i) {
    const std::size_t comma = i < 3 ? text.find(',') : text.size();
    if (comma == std::string_view::npos) return std::nullopt;
    std::string_view item = text.substr(0, comma);
    text.remove_prefix(std::min(text.size(), comma + 1));
    if (!item.empty() && item.back() == '%') {
      ++percents;
      item.remove_suffix(1);
    }
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v[i]);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() ||
        !std::isfinite(v[i]) || v[i] < 0) {
      return std::nullopt;
    }
  }
  if (percents != 0 && percents != 4) return std::nullopt;
  Region r{v[0], v[1], v[2], v[3], percents == 4};
  if (r.w <= 0 || r.h <= 0) return std::nullopt;
  if (r.percent && (r.x > 100 || r.y > 100 || r.w > 100 || r.h > 100)) return std::nullopt;
  if (!r.percent &&
      (v[0] != std::floor(v[0]) || v[1] != std::floor(v[1]) || v[2] != std::floor(v[2]) ||
       v[3] != std::floor(v[3]) || v[0] > 1e9 || v[1] > 1e9 || v[2] > 1e9 || v[3] > 1e9)) {
    return std::nullopt;
  }
  return r;
}

PixelRect region_rect(const Region& r, int width, int height, int source_width, int source_height) {
  // Original pixels (or percent) to the shrunk image's, rounded to the nearest pixel edge.
  const double sx = r.percent ? width / 100.0 : source_width > 0 ? double(width) / source_width : 1;
  const double sy = r.percent           ? height / 100.0
                    : source_height > 0 ? double(height) / source_height
                                        : 1;
  const auto edge = [](double v, int limit) {
    return static_cast<int>(std::clamp(std::lround(v), 0L, static_cast<long>(limit)));
  };
  return {edge(r.x * sx, width), edge(r.y * sy, height), edge((r.x + r.w) * sx, width),
          edge((r.y + r.h) * sy, height)};
}

std::optional<IgnoreOptions> parse_ignore(std::string_view list) {
  IgnoreOptions o;
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string_view word = list.substr(0, comma);
    if (word == "white") {
      o.white = true;
    } else if (word == "black") {
      o.black = true;
    } else if (word == "grey" || word == "gray") {
      o.grey = true;
    } else if (word == "background") {
      o.background = true;
    } else {
      return std::nullopt;
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return o;
}

std::optional<std::uint32_t> border_color(const PixelView& img, int alpha_threshold) {
  if (img.width <= 0 || img.height <= 0) return std::nullopt;
  const int band =
      std::max(1, static_cast<int>(std::lround(0.03 * std::min(img.width, img.height))));
  // Border pixels by colour, 4 bits a channel: the most common cell, if it holds half of them,
  // gives the mean of its pixels.
  std::vector<std::uint32_t> count(4096, 0);
  std::vector<std::array<std::uint64_t, 3>> sum(4096, {0, 0, 0});
  std::uint64_t seen = 0;
  for (int y = 0; y < img.height; ++y) {
    const std::uint8_t* row = img.data + static_cast<std::size_t>(y) * img.stride;
    const bool edge_row = y < band || y >= img.height - band;
    for (int x = 0; x < img.width; ++x) {
      if (!edge_row && x == band) x = std::max(band, img.width - band);  // skip the inside
      if (x >= img.width) break;
      const std::uint8_t* p = row + static_cast<std::size_t>(x) * img.channels;
      if (img.channels == 4 && alpha_threshold > 0 && p[3] < alpha_threshold) continue;
      const int cell = (p[0] >> 4) << 8 | (p[1] >> 4) << 4 | (p[2] >> 4);
      ++count[cell];
      sum[cell][0] += p[0];
      sum[cell][1] += p[1];
      sum[cell][2] += p[2];
      ++seen;
    }
  }
  if (seen == 0) return std::nullopt;
  const auto best =
      static_cast<std::size_t>(std::max_element(count.begin(), count.end()) - count.begin());
  if (2 * static_cast<std::uint64_t>(count[best]) < seen) return std::nullopt;
  std::uint32_t rgb = 0;
  for (int c = 0; c < 3; ++c) {
    rgb = rgb << 8 | static_cast<std::uint32_t>((sum[best][c] + count[best] / 2) / count[best]);
  }
  return rgb;
}

void drop_ignored(ImagePoints& pts, const IgnoreOptions& o, std::optional<std::uint32_t> bg) {
  if (!o.white && !o.black && !o.grey && !(o.background && bg)) return;
  const double t = o.threshold;
  const auto bg_lab = bg ? srgb_to_lab(*bg) : std::array<double, 3>{};
  std::size_t kept = 0;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const auto lab = srgb_to_lab(pts.rgb[i]);
    const double chroma = std::sqrt(lab[1] * lab[1] + lab[2] * lab[2]);
    bool drop = (o.white && lab[0] > 100 - t && chroma < t) || (o.black && lab[0] < t) ||
                (o.grey && chroma < t);
    if (!drop && o.background && bg) {
      const double d = std::sqrt((lab[0] - bg_lab[0]) * (lab[0] - bg_lab[0]) +
                                 (lab[1] - bg_lab[1]) * (lab[1] - bg_lab[1]) +
                                 (lab[2] - bg_lab[2]) * (lab[2] - bg_lab[2]));
      drop = d <= t;
    }
    if (drop) continue;
    pts.x[kept] = pts.x[i];
    pts.y[kept] = pts.y[i];
    pts.z[kept] = pts.z[i];
    pts.weight[kept] = pts.weight[i];
    pts.rgb[kept] = pts.rgb[i];
    total += pts.weight[i];
    ++kept;
  }
  pts.x.resize(kept);
  pts.y.resize(kept);
  pts.z.resize(kept);
  pts.weight.resize(kept);
  pts.rgb.resize(kept);
  pts.total_weight = total;
}

}  // namespace palette
