#include "multipart.hpp"

#include <cstring>
#include <utility>

namespace palette {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// RFC 2046's bchars: the characters a boundary may hold.
bool is_bchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::strchr("'()+_,-./:=? ", c) != nullptr && c != '\0';
}

// The parameters of a header value: `type; key=value; key="quoted value"`. Calls
// `param(key, value)` for each. Quoted values end at the next quote: browsers send file names
// with '"' as %22 and a backslash as itself (HTML's form encoding), so there are no escapes.
template <class F>
void for_each_param(std::string_view value, F param) {
  std::size_t i = value.find(';');
  while (i < value.size()) {
    ++i;  // the ';'
    const std::size_t key_end = value.find_first_of("=;", i);
    const std::string_view key = trim(value.substr(i, key_end - i));
    if (key_end == std::string_view::npos || value[key_end] == ';') {
      i = key_end;
      continue;
    }
    i = key_end + 1;
    while (i < value.size() && is_space(value[i])) ++i;
    std::string_view v;
    if (i < value.size() && value[i] == '"') {
      const std::size_t close = value.find('"', i + 1);
      v = value.substr(i + 1, close == std::string_view::npos ? close : close - i - 1);
      i = close == std::string_view::npos ? close : value.find(';', close);
    } else {
      const std::size_t end = value.find(';', i);
      v = trim(value.substr(i, end == std::string_view::npos ? end : end - i));
      i = end;
    }
    param(key, v);
  }
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  const std::size_t semi = content_type.find(';');
  if (!iequals(trim(content_type.substr(0, semi)), "multipart/form-data")) return std::nullopt;
  std::optional<std::string> boundary;
  for_each_param(content_type, [&](std::string_view key, std::string_view value) {
    if (!boundary && iequals(key, "boundary")) boundary = std::string(value);
  });
  if (!boundary || boundary->empty() || boundary->size() > 200 || boundary->back() == ' ') {
    return std::nullopt;
  }
  for (char c : *boundary) {
    if (!is_bchar(c)) return std::nullopt;
  }
  return boundary;
}

MultipartParser::MultipartParser(std::string boundary, MultipartHandler& handler)
    : delimiter_("\r\n--" + std::move(boundary)), handler_(handler) {}

void MultipartParser::fail(std::string message) {
  state_ = State::kError;
  error_ = std::move(message);
}

// Looks for the delimiter in the preamble or a part's content; hands content on. A delimiter
// split between two calls is carried in matched_: the bytes it matched are delimiter_'s own, so
// they are handed on from delimiter_ when the match fails. A failed match never hides the start
// of another: '\r' appears in the delimiter only at its start (a boundary holds no '\r').
// Returns the bytes consumed: all of them, or up to the end of a delimiter.
std::size_t MultipartParser::scan(const std::uint8_t* data, std::size_t size) {
  const bool content = state_ == State::kBody;
  std::size_t i = 0;
  while (i < size) {
    if (matched_ == 0) {
      const void* cr = std::memchr(data + i, '\r', size - i);
      const std::size_t at =
          cr ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(cr) - data) : size;
      if (content && at > i) handler_.part_data({data + i, at - i});
      if (!cr) return size;
      i = at + 1;
      matched_ = 1;
      continue;
    }
    if (static_cast<char>(data[i]) == delimiter_[matched_]) {
      ++i;
      if (++matched_ == delimiter_.size()) {
        matched_ = 0;
        if (content) handler_.part_end();
        state_ = State::kBoundary;
        return i;
      }
      continue;
    }
    if (content) {
      handler_.part_data({reinterpret_cast<const std::uint8_t*>(delimiter_.data()), matched_});
    }
    matched_ = 0;  // and look at data[i] again
  }
  return size;
}

bool MultipartParser::headers_done() {
  std::optional<std::string> name;
  std::string filename;
  std::string_view rest = headers_;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      fail("malformed multipart body: a part header line without ':'");
      return false;
    }
    if (!iequals(trim(line.substr(0, colon)), "content-disposition")) continue;
    bool has_filename = false;
    for_each_param(trim(line.substr(colon + 1)), [&](std::string_view key, std::string_view v) {
      if (!name && iequals(key, "name")) name = std::string(v);
      if (!has_filename && iequals(key, "filename")) {
        filename = std::string(v);
        has_filename = true;
      }
    });
  }
  if (!name) {
    fail(
        "malformed multipart body: a part without a name (Content-Disposition: form-data; "
        "name=\"...\")");
    return false;
  }
  headers_.clear();
  line_start_ = 0;
  state_ = State::kBody;
  matched_ = 0;
  handler_.part_begin(*name, filename);
  return true;
}

bool MultipartParser::feed(std::span<const std::uint8_t> bytes) {
  const std::uint8_t* data = bytes.data();
  const std::size_t size = bytes.size();
  std::size_t i = 0;
  while (i < size && state_ != State::kError) {
    switch (state_) {
      case State::kPreamble:
      case State::kBody:
        i += scan(data + i, size - i);
        break;
      case State::kBoundary: {
        const char c = static_cast<char>(data[i++]);
        if (c == '-') {
          state_ = State::kCloseDash;
        } else if (c == '\r') {
          state_ = State::kLineEnd;
        } else if (c == '\n') {
          state_ = State::kHeaders;
        } else if (!is_space(c)) {  // spaces: transport padding (RFC 2046)
          fail("malformed multipart body: unexpected bytes after a boundary");
        }
        break;
      }
      case State::kCloseDash:
        if (data[i++] == '-') {
          state_ = State::kEpilogue;
        } else {
          fail("malformed multipart body: unexpected bytes after a boundary");
        }
        break;
      case State::kLineEnd:
        if (data[i++] == '\n') {
          state_ = State::kHeaders;
        } else {
          fail("malformed multipart body: a boundary line not ended by CRLF");
        }
        break;
      case State::kHeaders: {
        const void* nl = std::memchr(data + i, '\n', size - i);
        const std::size_t end =
            nl ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - data) + 1 : size;
        if (headers_.size() + (end - i) > kMaxPartHeaderBytes) {
          fail("malformed multipart body: part headers longer than 16 KiB");
          break;
        }
        headers_.append(reinterpret_cast<const char*>(data + i), end - i);
        i = end;
        if (!nl) break;
        const std::string_view line = std::string_view(headers_).substr(line_start_);
        if (line == "\n" || line == "\r\n") {
          headers_done();
        } else {
          line_start_ = headers_.size();
        }
        break;
      }
      case State::kEpilogue:
        i = size;
        break;
      case State::kError:
        break;
    }
  }
  return state_ != State::kError;
}

bool MultipartParser::finish() {
  if (state_ == State::kError) return false;
  if (state_ != State::kEpilogue) {
    fail(state_ == State::kPreamble
             ? "malformed multipart body: no boundary line (the body does not match the "
               "Content-Type's boundary)"
             : "malformed multipart body: it ends before its closing boundary");
    return false;
  }
  return true;
}

}  // namespace palette
