// libFuzzer target: a sharded --combined run's colours file as `palette merge` reads it
// (ColorWeights::add_serialized, points.hpp). Bytes it accepts are exactly the bytes serialize()
// writes for what they added; anything else is refused whole, adding nothing.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "palette/error.hpp"
#include "palette/points.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  palette::ColorWeights w;
  try {
    w.add_serialized(bytes);
  } catch (const palette::Error&) {
    if (!w.empty()) std::abort();
    return 0;
  }
  if (w.serialize() != bytes) std::abort();
  return 0;
}
