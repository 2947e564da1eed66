// libFuzzer target: decode_image, the whole path an input file takes: sniffing, the header's pixel
// limit, the decoder the format picks (the DC-only JPEG decoder first where it applies), alpha
// handling and shrinking.

#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace palette::fuzz;
  try {
    palette::DecodeOptions options;
    options.size = wanted_size(size);
    options.max_pixels = kMaxPixels;
    (void)palette::decode_image(bytes(data, size), options);
  } catch (const palette::Error&) {
    // Bad input, reported as it should be.
  }
  return 0;
}
