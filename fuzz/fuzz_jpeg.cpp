// libFuzzer target: JPEG through libjpeg-turbo (codec_jpeg.cpp) at full and reduced DCT scales,
// never handed to the DC-only decoder (fuzz_jpeg_dc has that).

#include <cstddef>
#include <cstdint>

#include "codecs.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace palette::fuzz;
  try {
    (void)palette::codec::decode_jpeg(bytes(data, size), wanted_size(size), /*fast_dc=*/false,
                                      kMaxPixels);
  } catch (const palette::Error&) {
    // Bad input, reported as it should be.
  }
  return 0;
}
