#include "palette/points.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>

#include "palette/error.hpp"

namespace palette {
namespace {

// LSD radix sort of 24-bit keys in two passes of 12 bits; `tmp` is scratch of the same size.
void radix_sort24(std::vector<std::uint32_t>& keys, std::vector<std::uint32_t>& tmp) {
  const std::size_t n = keys.size();
  if (n < 512) {
    std::sort(keys.begin(), keys.end());
    return;
  }
  tmp.resize(n);
  std::vector<std::uint32_t> count(4096);
  for (int pass = 0; pass < 2; ++pass) {
    const int shift = pass * 12;
    std::fill(count.begin(), count.end(), 0u);
    for (std::uint32_t k : keys) ++count[(k >> shift) & 0xFFF];
    std::uint32_t sum = 0;
    for (auto& c : count) {
      const std::uint32_t v = c;
      c = sum;
      sum += v;
    }
    for (std::uint32_t k : keys) tmp[count[(k >> shift) & 0xFFF]++] = k;
    keys.swap(tmp);
  }
}

}  // namespace

void ImagePoints::clear() {
  x.clear();
  y.clear();
  z.clear();
  weight.clear();
  rgb.clear();
  total_weight = 0;
  pixels = 0;
}

void collect_points(const PixelView& image, int alpha_threshold, ColorSpace space, ImagePoints& out,
                    CollectScratch& scratch) {
  out.clear();
  auto& keys = scratch.keys;
  keys.clear();
  keys.reserve(static_cast<std::size_t>(image.width) * image.height);
  const bool use_alpha = image.channels == 4 && alpha_threshold > 0;
  for (int row = 0; row < image.height; ++row) {
    const std::uint8_t* p = image.data + row * image.stride;
    if (image.channels == 3) {
      for (int col = 0; col < image.width; ++col, p += 3)
        keys.push_back(pack_rgb(p[0], p[1], p[2]));
    } else if (!use_alpha) {
      for (int col = 0; col < image.width; ++col, p += 4)
        keys.push_back(pack_rgb(p[0], p[1], p[2]));
    } else {
      for (int col = 0; col < image.width; ++col, p += 4) {
        if (p[3] >= alpha_threshold) keys.push_back(pack_rgb(p[0], p[1], p[2]));
      }
    }
  }
  out.total_weight = keys.size();
  out.pixels = static_cast<std::uint64_t>(image.width) * static_cast<std::uint64_t>(image.height);
  if (keys.empty()) return;
  radix_sort24(keys, scratch.tmp);

  for (std::size_t i = 0; i < keys.size();) {
    std::size_t j = i + 1;
    while (j < keys.size() && keys[j] == keys[i]) ++j;
    out.rgb.push_back(keys[i]);
    out.weight.push_back(static_cast<std::uint32_t>(j - i));
    i = j;
  }
  const std::size_t n = out.rgb.size();
  out.x.resize(n);
  out.y.resize(n);
  out.z.resize(n);
  to_space(out.rgb, space, out.x, out.y, out.z);
}

void Batch::add(const ImagePoints& p) {
  x.insert(x.end(), p.x.begin(), p.x.end());
  y.insert(y.end(), p.y.begin(), p.y.end());
  z.insert(z.end(), p.z.begin(), p.z.end());
  weight.insert(weight.end(), p.weight.begin(), p.weight.end());
  rgb.insert(rgb.end(), p.rgb.begin(), p.rgb.end());
  offsets.push_back(static_cast<std::uint32_t>(weight.size()));
}

void Batch::add_empty() { offsets.push_back(static_cast<std::uint32_t>(weight.size())); }

void Batch::clear() {
  offsets.assign(1, 0);
  x.clear();
  y.clear();
  z.clear();
  weight.clear();
  rgb.clear();
}

void ColorWeights::Free::operator()(std::uint64_t* p) const { std::free(p); }

void ColorWeights::reserve() {
  if (table_) return;
  table_.reset(
      static_cast<std::uint64_t*>(std::calloc(std::size_t{1} << 24, sizeof(std::uint64_t))));
  if (!table_) throw Error("out of memory for a table of every colour (128 MiB)");
  for (const Entry& e : sorted_) table_.get()[e.rgb] += e.weight;
  for (const Entry& e : pending_) table_.get()[e.rgb] += e.weight;
  std::vector<Entry>().swap(sorted_);
  std::vector<Entry>().swap(pending_);
}

void ColorWeights::merge_pending() {
  if (pending_.empty()) return;
  std::sort(pending_.begin(), pending_.end(),
            [](const Entry& a, const Entry& b) { return a.rgb < b.rgb; });
  std::vector<Entry> merged;
  merged.reserve(sorted_.size() + pending_.size());
  auto a = sorted_.begin(), b = pending_.begin();
  while (a != sorted_.end() || b != pending_.end()) {
    const Entry next =
        b == pending_.end() || (a != sorted_.end() && a->rgb <= b->rgb) ? *a++ : *b++;
    if (!merged.empty() && merged.back().rgb == next.rgb) {
      merged.back().weight += next.weight;
    } else {
      merged.push_back(next);
    }
  }
  sorted_.swap(merged);
  pending_.clear();
}

void ColorWeights::add(std::uint32_t rgb, std::uint64_t weight) {
  if (table_) {
    table_.get()[rgb & 0xFFFFFF] += weight;
    return;
  }
  pending_.push_back({rgb & 0xFFFFFF, weight});
  if (pending_.size() >= kListEntries) reserve();
}

void ColorWeights::add_concurrent(std::uint32_t rgb, std::uint64_t weight) {
  std::atomic_ref<std::uint64_t>(table_.get()[rgb & 0xFFFFFF])
      .fetch_add(weight, std::memory_order_relaxed);
}

// The colours with weight, in colour order, from the table or the list (merged).
template <class F>
void ColorWeights::each(F&& fn) {
  merge_pending();
  if (table_) {
    const std::uint64_t* w = table_.get();
    for (std::uint32_t c = 0; c < (1u << 24); ++c) {
      if (w[c] != 0) fn(c, w[c]);
    }
    return;
  }
  for (const Entry& e : sorted_) {
    if (e.weight != 0) fn(e.rgb, e.weight);
  }
}

void ColorWeights::visit(const std::function<void(std::uint32_t, std::uint64_t)>& fn) { each(fn); }

namespace {
constexpr std::string_view kColoursMagic = "PALETTE-COLOURS 1\n";
constexpr std::size_t kColourBytes = 12;  // u32 rgb, u64 weight

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>(v >> (8 * i) & 0xFF);
}
std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}
}  // namespace

std::string ColorWeights::serialize() {
  std::uint64_t n = 0;
  each([&](std::uint32_t, std::uint64_t) { ++n; });
  std::string out(kColoursMagic);
  out.reserve(out.size() + 8 + n * kColourBytes);
  put_le(out, n, 8);
  each([&](std::uint32_t c, std::uint64_t w) {
    put_le(out, c, 4);
    put_le(out, w, 8);
  });
  return out;
}

void ColorWeights::add_serialized(std::string_view bytes) {
  if (!bytes.starts_with(kColoursMagic) || bytes.size() < kColoursMagic.size() + 8) {
    throw Error("not a palette colours file");
  }
  const char* p = bytes.data() + kColoursMagic.size();
  const std::uint64_t n = get_le(p, 8);
  p += 8;
  const std::size_t left = bytes.size() - kColoursMagic.size() - 8;
  if (n > (std::uint64_t{1} << 24) || left != n * kColourBytes) {
    throw Error("a palette colours file of the wrong length (damaged or cut off)");
  }
  // Checked whole before any is added.
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t c = get_le(p + i * kColourBytes, 4);
    const std::uint64_t prev = i > 0 ? get_le(p + (i - 1) * kColourBytes, 4) : 0;
    if (c > 0xFFFFFF || (i > 0 && c <= prev) || get_le(p + i * kColourBytes + 4, 8) == 0) {
      throw Error("a damaged palette colours file (colour " + std::to_string(i) + ")");
    }
  }
  for (std::uint64_t i = 0; i < n; ++i) {
    add(static_cast<std::uint32_t>(get_le(p + i * kColourBytes, 4)),
        get_le(p + i * kColourBytes + 4, 8));
  }
}

ImagePoints ColorWeights::points(ColorSpace space) {
  ImagePoints points;
  std::uint64_t heaviest = 0;
  each([&](std::uint32_t, std::uint64_t w) { heaviest = std::max(heaviest, w); });
  const std::uint64_t divisor = heaviest / 0xFFFFFFFFull + 1;
  each([&](std::uint32_t c, std::uint64_t w) {
    const auto weight = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, w / divisor));
    points.rgb.push_back(c);
    points.weight.push_back(weight);
    points.total_weight += weight;
  });
  points.pixels = points.total_weight;
  points.x.resize(points.size());
  points.y.resize(points.size());
  points.z.resize(points.size());
  to_space(points.rgb, space, points.x, points.y, points.z);
  return points;
}

}  // namespace palette
