// libFuzzer target: WebP through libwebp (codec_webp.cpp), with and without its rescaler.

#include <cstddef>
#include <cstdint>

#include "codecs.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace palette::fuzz;
  try {
    (void)palette::codec::decode_webp(bytes(data, size), wanted_size(size), kMaxPixels);
  } catch (const palette::Error&) {
    // Bad input, reported as it should be.
  }
  return 0;
}
