// libFuzzer target: PNG (codec_png.cpp), our reader and libpng side by side. Where our reader
// decodes a file, libpng must decode it too, to the same pixels (decode_png_fast promises it);
// a difference is reported as a crash. Mutated bytes rarely keep a chunk's CRC right, which
// sends everything to libpng, so inputs of even length have every CRC recomputed first.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "codecs.hpp"
#include "fuzz_common.hpp"

namespace {

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// The chunks' CRCs made right, as far as the chunk structure goes.
void fix_crcs(std::vector<std::uint8_t>& b) {
  std::size_t pos = 8;
  while (pos <= b.size() && b.size() - pos >= 12) {
    const std::uint32_t length =
        (std::uint32_t{b[pos]} << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3];
    if (length > b.size() - pos - 12) break;
    const std::uint32_t c = crc32(&b[pos + 4], std::size_t{length} + 4);
    const std::size_t at = pos + 8 + length;
    b[at] = static_cast<std::uint8_t>(c >> 24);
    b[at + 1] = static_cast<std::uint8_t>(c >> 16);
    b[at + 2] = static_cast<std::uint8_t>(c >> 8);
    b[at + 3] = static_cast<std::uint8_t>(c);
    pos = at + 4;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace palette::fuzz;
  std::vector<std::uint8_t> input(data, data + size);
  if (size % 2 == 0) fix_crcs(input);
  try {
    (void)palette::codec::decode_png(input, kMaxPixels);
  } catch (const palette::Error&) {
    // Bad input, reported as it should be.
  }
  const cv::Mat fast = palette::codec::decode_png_fast(input, kMaxPixels);
  if (fast.empty()) return 0;
  cv::Mat reference;
  try {
    reference = palette::codec::decode_png_libpng(input, kMaxPixels);
  } catch (const palette::Error& e) {
    std::fprintf(stderr, "decode_png_fast decoded a file libpng refuses: %s\n", e.what());
    std::abort();
  }
  if (reference.size() != fast.size() || reference.type() != fast.type() ||
      cv::norm(reference, fast, cv::NORM_INF) != 0) {
    std::fprintf(stderr, "decode_png_fast and libpng differ\n");
    std::abort();
  }
  return 0;
}
