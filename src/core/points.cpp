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

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>(v >> (8 * i) & 0xFF);
}
// LEB128: 7 bits a byte, low first, the high bit set on all but the last.
void put_varint(std::string& out, std::uint64_t v) {
  for (; v >= 0x80; v >>= 7) out += static_cast<char>((v & 0x7F) | 0x80);
  out += static_cast<char>(v);
}

// Reads serialize()'s bytes, each part checked; false at the first thing wrong.
class ColoursReader {
 public:
  explicit ColoursReader(std::string_view bytes) : s_(bytes) {}
  bool u64(std::uint64_t& v) {
    if (s_.size() - at_ < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) {
      v |= std::uint64_t{static_cast<unsigned char>(s_[at_ + i])} << (8 * i);
    }
    at_ += 8;
    return true;
  }
  // The shortest encoding only (so that what is read back writes the same bytes), 64 bits.
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; at_ < s_.size() && shift < 64; shift += 7) {
      const auto byte = static_cast<unsigned char>(s_[at_++]);
      const std::uint64_t bits = byte & 0x7F;
      if (shift == 63 && bits > 1) return false;
      v |= bits << shift;
      if (!(byte & 0x80)) return shift == 0 || bits != 0;
    }
    return false;
  }
  bool done() const { return at_ == s_.size(); }

 private:
  std::string_view s_;
  std::size_t at_ = 0;
};
}  // namespace

std::string ColorWeights::serialize() {
  std::uint64_t n = 0;
  each([&](std::uint32_t, std::uint64_t) { ++n; });
  std::string out(kColoursMagic);
  put_le(out, n, 8);
  std::uint64_t next = 0;  // the lowest colour the next one can be
  each([&](std::uint32_t c, std::uint64_t w) {
    put_varint(out, c - next);
    put_varint(out, w);
    next = std::uint64_t{c} + 1;
  });
  return out;
}

void ColorWeights::add_serialized(std::string_view bytes) {
  if (!bytes.starts_with(kColoursMagic)) throw Error("not a palette colours file");
  // Checked whole before any is added.
  const auto each_entry = [&](auto&& fn) {
    ColoursReader in(bytes.substr(kColoursMagic.size()));
    std::uint64_t n = 0, next = 0;
    if (!in.u64(n) || n > (std::uint64_t{1} << 24)) {
      throw Error("a damaged palette colours file (its colour count)");
    }
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint64_t gap = 0, weight = 0;
      if (!in.varint(gap) || next > 0xFFFFFF || gap > 0xFFFFFF - next || !in.varint(weight) ||
          weight == 0) {
        throw Error("a damaged or cut off palette colours file (colour " + std::to_string(i) +
                    " of " + std::to_string(n) + ")");
      }
      fn(static_cast<std::uint32_t>(next + gap), weight);
      next += gap + 1;
    }
    if (!in.done()) throw Error("a damaged palette colours file (bytes after its colours)");
  };
  each_entry([](std::uint32_t, std::uint64_t) {});
  each_entry([&](std::uint32_t c, std::uint64_t w) { add(c, w); });
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
