#pragma once
// Weighted distinct colours: what k-means actually clusters. Identical pixels collapse into one
// point whose weight is their count, which is exact and makes every later step cheaper.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "palette/color.hpp"

namespace palette {

/// A view of 8-bit interleaved RGB (channels == 3) or RGBA (channels == 4) pixels.
/// Rows are `stride` bytes apart. Not owning.
struct PixelView {
  const std::uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  int channels = 3;
  std::size_t stride = 0;
};

/// The distinct colours of one image, sorted by 0xRRGGBB, with their pixel counts and their
/// fixed-point coordinates in one colour space. Structure of arrays, all of size().
struct ImagePoints {
  std::vector<std::int16_t> x, y, z;  ///< coordinates in `space` (see ColorSpace)
  std::vector<std::uint32_t> weight;  ///< pixels of this colour, >= 1
  std::vector<std::uint32_t> rgb;     ///< the colour itself, 0xRRGGBB
  std::uint64_t total_weight = 0;     ///< counted pixels = sum of weight
  std::uint64_t pixels = 0;           ///< pixels looked at, counted or not (alpha)

  std::size_t size() const { return weight.size(); }
  void clear();
};

/// Weights of all 2^24 sRGB colours, summed over many images or rows (a whole library's colours,
/// --combined). It starts as a list of the colours added (a few MiB for a few images: a page's
/// combined palette), and becomes a table of every colour, 128 MiB of address space calloc'ed
/// (the system's zero pages are touched only where colours fall), once kListEntries colours
/// have been added (a run of more than a dozen photos, where adding to the table is cheaper
/// than keeping the list) or reserve() is called. Either way points() gives the same answer.
class ColorWeights {
 public:
  static constexpr std::size_t kListEntries = std::size_t{1} << 20;  // 16 MiB

  /// Adds `weight` to colour `rgb` (0xRRGGBB). Not thread-safe.
  void add(std::uint32_t rgb, std::uint64_t weight);
  /// The same, safe from several threads at once (the table must exist: call reserve() first).
  void add_concurrent(std::uint32_t rgb, std::uint64_t weight);
  /// Makes the table of every colour now (with what was added so far). Throws palette::Error
  /// when memory is short.
  void reserve();
  bool empty() const { return !table_ && pending_.empty() && sorted_.empty(); }
  /// Every colour with weight, in 0xRRGGBB order, as points in `space`: weights scaled down by
  /// one common divisor when a colour's sum exceeds 32 bits (at least 1 each; deterministic).
  /// Not const-thread-safe: the list form is merged first.
  ImagePoints points(ColorSpace space);
  /// Calls fn(rgb, weight) for every colour with weight, in 0xRRGGBB order (the sums as added,
  /// unscaled: what another table needs to add them up). Not const-thread-safe, as points().
  void visit(const std::function<void(std::uint32_t, std::uint64_t)>& fn);

  /// The colours with weight as bytes (a shard's colours for `palette merge`, a checkpoint, an
  /// MPI rank's colours for rank 0):
  /// "PALETTE-COLOURS 1\n", the count (u64, little-endian), then each colour in 0xRRGGBB order
  /// as two LEB128 numbers: its distance from the one after the colour before (from 0 for the
  /// first) and its weight: about 2 to 2.5 bytes a colour (photos, noise), 11 at most. Not
  /// const-thread-safe, as points().
  std::string serialize();
  /// Adds the colours of serialize()'s bytes. Throws palette::Error, having added nothing, for
  /// any other bytes (cut off or with bytes after, a colour past 0xFFFFFF, a zero weight, a
  /// number not in its shortest form).
  void add_serialized(std::string_view bytes);

 private:
  struct Free {
    void operator()(std::uint64_t* p) const;
  };
  struct Entry {
    std::uint32_t rgb;
    std::uint64_t weight;
  };
  void merge_pending();  // pending_ into sorted_, equal colours summed
  template <class F>
  void each(F&& fn);  // visit() without a std::function

  std::unique_ptr<std::uint64_t, Free> table_;
  std::vector<Entry> pending_, sorted_;  // the list form, before the table: added, merged
};

/// Reusable buffers for collect_points (one per worker thread avoids reallocations).
struct CollectScratch {
  std::vector<std::uint32_t> keys, tmp;
};

/// Collects the pixels of `image` whose alpha is >= alpha_threshold (all pixels when the view
/// has no alpha channel or the threshold is 0), merges identical colours and converts them to
/// `space`. Replaces the contents of `out`. Thread-safe for distinct `out`/`scratch`.
void collect_points(const PixelView& image, int alpha_threshold, ColorSpace space, ImagePoints& out,
                    CollectScratch& scratch);

/// Many images' points concatenated (ragged): image i owns points [offsets[i], offsets[i+1]).
/// An image may own no point (a failed image travels through the batch as an empty slot).
struct Batch {
  ColorSpace space = ColorSpace::kLab;
  std::vector<std::uint32_t> offsets{0};
  std::vector<std::int16_t> x, y, z;
  std::vector<std::uint32_t> weight;
  std::vector<std::uint32_t> rgb;

  std::size_t images() const { return offsets.size() - 1; }
  std::size_t points() const { return weight.size(); }
  std::size_t points_of(std::size_t i) const { return offsets[i + 1] - offsets[i]; }
  /// Appends one image (its space must match `space`).
  void add(const ImagePoints& p);
  /// Appends an image without points.
  void add_empty();
  void clear();
};

}  // namespace palette
