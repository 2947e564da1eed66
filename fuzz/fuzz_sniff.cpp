// libFuzzer target: sniff_image (header.cpp): format and dimensions from the first bytes.

#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace palette::fuzz;
  try {
    (void)palette::sniff_image(bytes(data, size));
  } catch (const palette::Error&) {
    // Bad input, reported as it should be.
  }
  return 0;
}
