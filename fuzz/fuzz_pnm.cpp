// libFuzzer target: our binary PNM decoder, P5/P6 (codec_bmp.cpp).

#include <cstddef>
#include <cstdint>

#include "codecs.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace palette::fuzz;
  try {
    (void)palette::codec::decode_pnm(bytes(data, size), kMaxPixels);
  } catch (const palette::Error&) {
    // Bad input, reported as it should be.
  }
  return 0;
}
