#pragma once
// What the GPU-dependent suites share: whether a device is there, and test batches.

#include <cstdint>
#include <random>
#include <vector>

#include "palette/points.hpp"

#ifdef PALETTE_WITH_CUDA
#include "palette/cuda_backend.hpp"
#endif

namespace palette::test {

/// Whether this build has CUDA and the machine a usable device.
inline bool have_gpu() {
#ifdef PALETTE_WITH_CUDA
  return cuda_device_count() > 0;
#else
  return false;
#endif
}

/// Skips the current test unless a usable CUDA device is there.
#define PALETTE_REQUIRE_GPU()                                                              \
  do {                                                                                     \
    if (!::palette::test::have_gpu()) GTEST_SKIP() << "no CUDA device (or no CUDA build)"; \
  } while (0)

/// `pixels` pixels drawn around `groups` random colours (jitter +-spread), collected as the
/// pipeline does: distinct colours with counts, in `space`.
inline ImagePoints random_image(std::mt19937& rng, int pixels, int groups, int spread,
                                ColorSpace space) {
  std::uniform_int_distribution<std::uint32_t> color(0, 0xFFFFFF);
  std::vector<std::uint32_t> base(static_cast<std::size_t>(groups));
  for (auto& c : base) c = color(rng);
  std::uniform_int_distribution<int> pick(0, groups - 1), jitter(-spread, spread);
  std::vector<std::uint8_t> px;
  for (int i = 0; i < pixels; ++i) {
    const std::uint32_t c = base[pick(rng)];
    for (int shift : {16, 8, 0}) {
      px.push_back(static_cast<std::uint8_t>(
          std::clamp(static_cast<int>((c >> shift) & 0xFF) + jitter(rng), 0, 255)));
    }
  }
  ImagePoints out;
  CollectScratch scratch;
  collect_points(PixelView{px.data(), pixels, 1, 3, px.size()}, 0, space, out, scratch);
  return out;
}

/// An image of `n` distinct random colours, weights 1..max_weight.
inline ImagePoints distinct_image(std::mt19937& rng, int n, int max_weight, ColorSpace space) {
  std::vector<std::uint8_t> px;
  std::uniform_int_distribution<int> byte(0, 255), weight(1, max_weight);
  std::vector<std::uint32_t> seen;
  while (static_cast<int>(seen.size()) < n) {
    const std::uint32_t c = pack_rgb(byte(rng), byte(rng), byte(rng));
    if (std::find(seen.begin(), seen.end(), c) != seen.end()) continue;
    seen.push_back(c);
    for (int w = weight(rng); w > 0; --w) {
      px.push_back(static_cast<std::uint8_t>(c >> 16));
      px.push_back(static_cast<std::uint8_t>(c >> 8));
      px.push_back(static_cast<std::uint8_t>(c));
    }
  }
  ImagePoints out;
  CollectScratch scratch;
  const int pixels = static_cast<int>(px.size() / 3);
  collect_points(PixelView{px.data(), pixels, 1, 3, px.size()}, 0, space, out, scratch);
  return out;
}

/// Appends `count` pixels of colour `rgb` (0xRRGGBB) to an RGB pixel buffer.
inline void add_pixels(std::vector<std::uint8_t>& px, std::uint32_t rgb, int count) {
  for (int i = 0; i < count; ++i) {
    px.push_back(static_cast<std::uint8_t>(rgb >> 16));
    px.push_back(static_cast<std::uint8_t>(rgb >> 8));
    px.push_back(static_cast<std::uint8_t>(rgb));
  }
}

/// An RGB pixel buffer (one row) collected as the pipeline does.
inline ImagePoints from_pixels(const std::vector<std::uint8_t>& px, ColorSpace space) {
  ImagePoints p;
  CollectScratch scratch;
  collect_points(PixelView{px.data(), static_cast<int>(px.size() / 3), 1, 3, px.size()}, 0, space,
                 p, scratch);
  return p;
}

/// `pixels` uniformly random RGB pixels (nearly all distinct: the kernel benchmark's images).
inline ImagePoints noise_image(std::mt19937& rng, int pixels, ColorSpace space) {
  std::vector<std::uint8_t> px(static_cast<std::size_t>(pixels) * 3);
  for (auto& v : px) v = static_cast<std::uint8_t>(rng());
  return from_pixels(px, space);
}

/// `images` packed into one batch in `space`.
inline Batch batch_of(const std::vector<ImagePoints>& images, ColorSpace space) {
  Batch b;
  b.space = space;
  for (const auto& p : images) b.add(p);
  return b;
}

}  // namespace palette::test
