// libFuzzer target: the server's streaming multipart/form-data parser (src/server/multipart.cpp).
//
// The input's first line (up to '\n', at most 300 bytes) is a Content-Type value; the rest is the
// body. The body is parsed twice: whole, and split into pieces of 1 to 16 bytes (sizes from the
// body's own bytes). Both must give the same events, the same verdict and the same error: a body
// means one thing however the network happens to split it. The events must also be well formed
// (data and ends only inside a part) and no part's header may pass the parser's limit.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "multipart.hpp"

namespace {

struct Recorder final : palette::MultipartHandler {
  std::string events;  // "B<name>|<filename>\n", "D" + bytes per part, "E\n"
  bool in_part = false;
  std::string data;

  void part_begin(const std::string& name, const std::string& filename) override {
    if (in_part) std::abort();  // a part began inside a part
    if (name.size() + filename.size() > palette::MultipartParser::kMaxPartHeaderBytes) std::abort();
    in_part = true;
    data.clear();
    events += "B" + name + "|" + filename + "\n";
  }
  void part_data(std::span<const std::uint8_t> bytes) override {
    if (!in_part) std::abort();  // data outside a part
    data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  void part_end() override {
    if (!in_part) std::abort();  // an end without a beginning
    in_part = false;
    // The data of a part is compared whole: pieces may come in any sizes.
    events += "D" + std::to_string(data.size()) + ":" + data + "E\n";
  }
};

struct Outcome {
  std::string events;
  bool fed = false, finished = false;
  std::string error;
  bool operator==(const Outcome&) const = default;
};

template <typename Split>
Outcome parse(const std::string& boundary, std::span<const std::uint8_t> body, Split next_piece) {
  Recorder r;
  palette::MultipartParser p(boundary, r);
  Outcome o;
  o.fed = true;
  for (std::size_t at = 0; at < body.size();) {
    const std::size_t n = std::min(next_piece(at), body.size() - at);
    o.fed = p.feed(body.subspan(at, n)) && o.fed;
    at += n;
  }
  o.finished = p.finish();
  o.error = p.error();
  // A part still open at the end is only possible when the body did not complete.
  if (o.finished && r.in_part) std::abort();
  if (o.finished != o.error.empty()) std::abort();
  o.events = r.events;
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::size_t line = std::find(data, data + std::min<std::size_t>(size, 300), '\n') - data;
  if (line == size || line >= 300) return 0;
  const std::string_view content_type(reinterpret_cast<const char*>(data), line);
  const std::optional<std::string> boundary = palette::multipart_boundary(content_type);
  if (!boundary) return 0;
  if (boundary->empty() || boundary->size() > 200) std::abort();  // what the parser may assume
  const std::span<const std::uint8_t> body(data + line + 1, size - line - 1);

  const Outcome whole = parse(*boundary, body, [&](std::size_t) { return body.size(); });
  const Outcome split =
      parse(*boundary, body, [&](std::size_t at) -> std::size_t { return 1 + body[at] % 16; });
  const Outcome bytewise = parse(*boundary, body, [](std::size_t) -> std::size_t { return 1; });
  if (!(whole == split) || !(whole == bytewise)) std::abort();  // the split changed the meaning
  return 0;
}
