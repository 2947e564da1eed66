// libFuzzer target: reading back an output file (RowSplitter, as --resume does; writer.hpp).
// The input's first byte picks CSV or JSON Lines; the rest is the file. The lines reported, each
// with its "\n", must give back the file's first complete_bytes() bytes exactly, however the
// bytes are split.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "palette/writer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto format = data[0] & 1 ? palette::OutputFormat::kJsonl : palette::OutputFormat::kCsv;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string whole, split;
  palette::RowSplitter a(format), b(format);
  a.feed(text, [&](std::string_view line) {
    whole.append(line);
    whole += '\n';
  });
  for (std::size_t at = 0; at < text.size(); at += 1 + at % 7) {
    b.feed(text.substr(at, 1 + at % 7), [&](std::string_view line) {
      split.append(line);
      split += '\n';
    });
  }
  if (a.complete_bytes() > text.size() || whole.size() != a.complete_bytes()) std::abort();
  if (whole != text.substr(0, whole.size())) std::abort();
  if (whole != split || a.complete_bytes() != b.complete_bytes()) std::abort();
  const auto formatter = palette::make_formatter(format, 5);
  (void)formatter->is_error_row(text);
  return 0;
}
