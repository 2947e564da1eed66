// libFuzzer target: reading results files back (ResultsParser, results.hpp), as find and stats
// do. The bytes are parsed whole and in pieces of 1 to 16 bytes (the first byte picks the
// size): both must give the same rows, or fail with the same palette::Error.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "palette/error.hpp"
#include "palette/results.hpp"

namespace {

// Every row as text, or the error that ended the parse.
std::string parse(std::string_view text, std::size_t step) {
  std::string out;
  const auto on_row = [&](const palette::ResultsRow& r) {
    if (r.colors.size() != r.shares.size() || (r.failed && !r.colors.empty())) std::abort();
    out.append(r.file);
    out += '|' + std::to_string(r.line) + '|' + (r.failed ? "F" : "-");
    out.append(r.error);
    for (std::size_t i = 0; i < r.colors.size(); ++i) {
      if (r.colors[i] > 0xFFFFFF || !(r.shares[i] >= 0.0 && r.shares[i] <= 1.0)) std::abort();
      out += '|' + std::to_string(r.colors[i]) + ':' + std::to_string(r.shares[i]);
    }
    out += '\n';
  };
  palette::ResultsParser parser("fuzz");
  try {
    for (std::size_t at = 0; at < text.size(); at += step) {
      parser.feed(text.substr(at, step), on_row);
    }
    parser.finish(on_row);
  } catch (const palette::Error& e) {
    out += "error: ";
    out += e.what();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 16;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (parse(text, text.size() + 1) != parse(text, step)) std::abort();
  return 0;
}
