// libFuzzer target: our DC-only JPEG decoder (codec_jpeg_dc.cpp), including its shrinking.

#include <cstddef>
#include <cstdint>

#include "codecs.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace palette::fuzz;
  try {
    (void)palette::codec::decode_jpeg_dc(bytes(data, size), wanted_size(size), kMaxPixels);
  } catch (const palette::Error&) {
    // Bad input, reported as it should be.
  }
  return 0;
}
