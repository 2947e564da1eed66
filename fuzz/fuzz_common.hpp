#pragma once
// What every fuzz target shares: small limits, so libFuzzer spends its time in the parsers rather
// than on huge (legitimate) allocations, and the one exception a parser may throw.
//
// Every harness catches palette::Error only: that is the answer to bad bytes. Anything else that
// escapes (std::bad_alloc, cv::Exception, std::length_error, ...) is a bug in the parser, and
// libFuzzer reports it as a crash ("deadly signal" after std::terminate).

#include <cstddef>
#include <cstdint>
#include <span>

#include "palette/error.hpp"
#include "palette/image_io.hpp"

namespace palette::fuzz {

/// The pixel limit the decoders get (the product's default is 200 million).
inline constexpr std::uint64_t kMaxPixels = 4'000'000;

/// The long side asked for: 16, 32, 64 or 128 from the input's length, so one corpus reaches both
/// full-size and reduced-scale decoding (JPEG DCT scaling, WebP's rescaler, shrinking), and a
/// saved input replays the same way.
inline int wanted_size(std::size_t length) { return 16 << (length % 4); }

inline std::span<const std::uint8_t> bytes(const std::uint8_t* data, std::size_t size) {
  return {data, size};
}

}  // namespace palette::fuzz

/// Silences OpenCV's logging and keeps it from starting threads, as the product does.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  palette::init_image_io();
  return 0;
}
