// libFuzzer target: PNG (codec_png.cpp), our reader and libpng side by side. Where our reader
// decodes a file, libpng must decode it too, to the same pixels (decode_png_fast promises it);
// a difference is reported as a crash. Mutated bytes rarely keep a chunk's CRC right, which
// sends everything to libpng, so inputs of even length have every CRC recomputed first.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <zlib.h>

#include "codecs.hpp"
#include "fuzz_common.hpp"

namespace {

// The chunks' CRCs made right, as far as the chunk structure goes.
void fix_crcs(std::vector<std::uint8_t>& b) {
  std::size_t pos = 8;
  while (pos <= b.size() && b.size() - pos >= 12) {
    const std::uint32_t length =
        (std::uint32_t{b[pos]} << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3];
    if (length > b.size() - pos - 12) break;
    const auto c = static_cast<std::uint32_t>(crc32(0, &b[pos + 4], length + 4));  // zlib
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
