#include "palette/results.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "palette/error.hpp"

namespace palette {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A share as written ("0.2345", or JSON's 0.25, 1e-4): the double nearest to the decimal, in
// [0, 1]. Short plain decimals take Clinger's fast path (an integer below 2^53 divided by an
// exact power of ten is one correctly rounded IEEE division, so it equals what from_chars gives);
// anything else goes through from_chars.
bool parse_share(std::string_view s, double& out) {
  static constexpr double kPow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  std::uint64_t mantissa = 0;
  int digits = 0, decimals = -1;
  bool fast = !s.empty() && s.size() <= 16;
  for (std::size_t i = 0; fast && i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      mantissa = mantissa * 10 + static_cast<std::uint64_t>(c - '0');
      ++digits;
      if (decimals >= 0) ++decimals;
    } else if (c == '.' && decimals < 0 && i > 0 && i + 1 < s.size()) {
      decimals = 0;
    } else {
      fast = false;
    }
  }
  if (fast && digits > 0 && digits <= 15) {
    out = static_cast<double>(mantissa) / kPow10[decimals < 0 ? 0 : decimals];
  } else {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return false;
  }
  return std::isfinite(out) && out >= 0.0 && out <= 1.0;
}

// A cursor over one JSON Lines record, enough JSON (RFC 8259) to read extract's rows and to skip
// any member it does not know.
class Json {
 public:
  explicit Json(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n')) ++p_;
  }
  bool eat(char c) {
    ws();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool at_end() {
    ws();
    return p_ == end_;
  }
  bool peek(char c) {
    ws();
    return p_ < end_ && *p_ == c;
  }
  bool literal(std::string_view word) {
    ws();
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  // A string, unescaped into out (UTF-8; \u escapes and surrogate pairs decoded).
  bool string(std::string& out) {
    out.clear();
    if (!eat('"')) return false;
    while (p_ < end_) {
      const char c = *p_++;
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p_ == end_) return false;
      const char e = *p_++;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {  // a high surrogate: its low half must follow
            std::uint32_t low = 0;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            if (!hex4(low) || low < 0xDC00 || low >= 0xE000) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            return false;
          }
          utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  // A number's text, checked against JSON's grammar.
  bool number(std::string_view& text) {
    ws();
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else if (!digits()) {
      return false;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return false;
    }
    text = std::string_view(start, static_cast<std::size_t>(p_ - start));
    return true;
  }

  // Any value, skipped; nesting deeper than 64 is refused (no stack exhaustion).
  bool skip(int depth = 0) {
    if (depth > 64) return false;
    ws();
    if (p_ == end_) return false;
    std::string_view num;
    switch (*p_) {
      case '"':
        return string(scratch_);
      case '{':
        ++p_;
        if (eat('}')) return true;
        do {
          if (!string(scratch_) || !eat(':') || !skip(depth + 1)) return false;
        } while (eat(','));
        return eat('}');
      case '[':
        ++p_;
        if (eat(']')) return true;
        do {
          if (!skip(depth + 1)) return false;
        } while (eat(','));
        return eat(']');
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number(num);
    }
  }

 private:
  bool digits() {
    const char* start = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ > start;
  }
  bool hex4(std::uint32_t& v) {
    if (end_ - p_ < 4) return false;
    for (int i = 0; i < 4; ++i) {
      const int d = hex_digit(*p_++);
      if (d < 0) return false;
      v = v << 4 | static_cast<std::uint32_t>(d);
    }
    return true;
  }
  static void utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | cp >> 6);
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | cp >> 12);
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | cp >> 18);
      out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  const char* p_;
  const char* end_;
  std::string scratch_;
};

}  // namespace

bool parse_hex_color(std::string_view s, std::uint32_t& rgb) {
  if (s.size() != 7 || s[0] != '#') return false;
  std::uint32_t v = 0;
  for (std::size_t i = 1; i < 7; ++i) {
    const int d = hex_digit(s[i]);
    if (d < 0) return false;
    v = v << 4 | static_cast<std::uint32_t>(d);
  }
  rgb = v;
  return true;
}

ResultsParser::ResultsParser(std::string source) : source_(std::move(source)) {}

ResultsParser ResultsParser::fork(std::uint64_t line) const {
  ResultsParser p(source_);
  p.format_ = format_;
  p.k_ = k_;
  p.header_seen_ = header_seen_;
  p.line_ = line;
  return p;
}

void ResultsParser::fail(std::string_view why) const {
  throw Error(source_ + ":" + std::to_string(line_) + ": " + std::string(why));
}

// Where the record that starts at `from` ends (its "\n"), or npos when `bytes` holds no end;
// `quoted` carries the CSV quote parity across calls (a line break inside quotes is data).
std::size_t ResultsParser::record_end(std::string_view bytes, std::size_t from,
                                      bool& quoted) const {
  const char* const base = bytes.data();
  const char* const end = base + bytes.size();
  const char* p = base + from;
  while (p < end) {
    const auto* nl =
        static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    const char* stop = nl ? nl : end;
    if (format_ == Format::kCsv) {
      for (const char* q = p;;) {
        q = static_cast<const char*>(std::memchr(q, '"', static_cast<std::size_t>(stop - q)));
        if (!q) break;
        quoted = !quoted;
        ++q;
      }
    }
    if (!nl) return std::string_view::npos;
    if (!quoted) return static_cast<std::size_t>(nl - base);
    p = nl + 1;
  }
  return std::string_view::npos;
}

void ResultsParser::feed(std::string_view bytes, const RowFn& on_row) {
  if (bytes.empty()) return;
  if (format_ == Format::kUnknown) {
    format_ = pending_.empty() && bytes[0] == '{' ? Format::kJsonl : Format::kCsv;
  }
  std::size_t pos = 0;
  if (!pending_.empty() || pending_quoted_) {
    const std::size_t end = record_end(bytes, 0, pending_quoted_);
    if (end == std::string_view::npos) {
      if (pending_.size() + bytes.size() > kMaxResultRowBytes) fail("a row longer than 1 MiB");
      pending_.append(bytes);
      return;
    }
    pending_.append(bytes.substr(0, end));
    record(pending_, on_row);
    pending_.clear();
    pos = end + 1;
  }
  while (pos < bytes.size()) {
    bool quoted = false;
    const std::size_t end = record_end(bytes, pos, quoted);
    if (end == std::string_view::npos) {
      if (bytes.size() - pos > kMaxResultRowBytes) fail("a row longer than 1 MiB");
      pending_.assign(bytes.substr(pos));
      pending_quoted_ = quoted;
      return;
    }
    record(bytes.substr(pos, end - pos), on_row);
    pos = end + 1;
  }
}

void ResultsParser::finish(const RowFn& on_row) {
  if (pending_quoted_) fail("the file ends inside a quoted field");
  if (!pending_.empty()) {
    const std::string last = std::move(pending_);
    pending_.clear();
    record(last, on_row);
  }
  // An empty file has no rows (extract writes one for no inputs in JSON Lines).
  if (format_ == Format::kCsv && !header_seen_) {
    fail("not a palette results file: no CSV header (file,color_1..,share_1..,error)");
  }
}

void ResultsParser::record(std::string_view text, const RowFn& on_row) {
  std::uint64_t lines = 1;
  if (format_ == Format::kCsv && text.find('"') != std::string_view::npos) {
    for (const char c : text) lines += c == '\n';
  }
  if (text.size() > kMaxResultRowBytes) fail("a row longer than 1 MiB");
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (!header_seen_ && text.starts_with(kBom)) text.remove_prefix(kBom.size());
  if (!text.empty()) {
    if (format_ == Format::kJsonl) {
      jsonl_record(text, on_row);
    } else {
      csv_record(text, on_row);
    }
  }
  line_ += lines;
}

void ResultsParser::csv_record(std::string_view text, const RowFn& on_row) {
  // Split into fields (RFC 4180); a record without quotes is cut at its commas in place.
  fields_.clear();
  if (text.find('"') == std::string_view::npos) {
    for (std::size_t at = 0;;) {
      const std::size_t comma = text.find(',', at);
      fields_.push_back(text.substr(at, comma - at));
      if (comma == std::string_view::npos) break;
      at = comma + 1;
    }
  } else {
    unquoted_.clear();
    unquoted_.reserve(text.size());  // the views below point into it: no reallocation
    std::size_t i = 0;
    while (true) {
      const std::size_t start = unquoted_.size();
      if (i < text.size() && text[i] == '"') {
        for (++i; i < text.size(); ++i) {
          if (text[i] == '"') {
            if (i + 1 < text.size() && text[i + 1] == '"') {
              unquoted_ += '"';
              ++i;
            } else {
              ++i;
              break;
            }
          } else {
            unquoted_ += text[i];
          }
        }
      }
      while (i < text.size() && text[i] != ',') unquoted_ += text[i++];
      fields_.emplace_back(unquoted_.data() + start, unquoted_.size() - start);
      if (i >= text.size()) break;
      ++i;  // the comma
    }
  }

  if (!header_seen_) {
    const auto bad_header = [&] {
      fail(
          "not a palette results file: the CSV header must be "
          "file,color_1..color_K,share_1..share_K,error");
    };
    if (fields_.empty() || fields_[0] != "file") bad_header();
    std::size_t k = 0;
    while (1 + k < fields_.size() && fields_[1 + k] == "color_" + std::to_string(k + 1)) ++k;
    if (k == 0 || k > kMaxResultColors || fields_.size() < 2 * k + 2) bad_header();
    for (std::size_t i = 0; i < k; ++i) {
      if (fields_[1 + k + i] != "share_" + std::to_string(i + 1)) bad_header();
    }
    if (fields_[1 + 2 * k] != "error") bad_header();
    k_ = k;
    header_seen_ = true;
    return;
  }
  if (fields_.size() < 2 * k_ + 2) fail("a row with too few columns for the header");
  ResultsRow row;
  row.file = fields_[0];
  row.line = line_;
  row.error = fields_[1 + 2 * k_];
  row.failed = !row.error.empty();
  colors_.clear();
  shares_.clear();
  if (!row.failed) {
    for (std::size_t i = 0; i < k_ && !fields_[1 + i].empty(); ++i) {
      std::uint32_t rgb = 0;
      double share = 0;
      if (!parse_hex_color(fields_[1 + i], rgb))
        fail("color_" + std::to_string(i + 1) + " is not #rrggbb");
      if (!parse_share(fields_[1 + k_ + i], share)) {
        fail("share_" + std::to_string(i + 1) + " is not a number in 0..1");
      }
      colors_.push_back(rgb);
      shares_.push_back(share);
    }
  }
  row.colors = colors_;
  row.shares = shares_;
  on_row(row);
}

void ResultsParser::jsonl_record(std::string_view text, const RowFn& on_row) {
  Json j(text);
  const auto bad = [&](std::string_view why) {
    fail("not a row of palette's JSON Lines: " + std::string(why));
  };
  if (!j.eat('{')) bad("not an object");
  bool has_file = false, has_colors = false, has_shares = false, has_error = false;
  bool failed = false;
  colors_.clear();
  shares_.clear();
  std::size_t n_shares = 0;
  std::string key, value;
  if (!j.eat('}')) {
    do {
      if (!j.string(key) || !j.eat(':')) bad("a member without a name");
      if (key == "file") {
        if (!j.string(file_)) bad("\"file\" is not a string");
        has_file = true;
      } else if (key == "error") {
        if (j.literal("null")) {
          failed = false;
        } else if (j.string(error_)) {
          failed = true;
        } else {
          bad("\"error\" is neither null nor a string");
        }
        has_error = true;
      } else if (key == "colors") {
        colors_.clear();
        if (!j.eat('[')) bad("\"colors\" is not an array");
        if (!j.eat(']')) {
          do {
            std::uint32_t rgb = 0;
            if (!j.string(value) || !parse_hex_color(value, rgb)) bad("a colour is not #rrggbb");
            if (colors_.size() == kMaxResultColors) bad("too many colours");
            colors_.push_back(rgb);
          } while (j.eat(','));
          if (!j.eat(']')) bad("\"colors\" is not an array");
        }
        has_colors = true;
      } else if (key == "shares") {
        shares_.clear();
        if (!j.eat('[')) bad("\"shares\" is not an array");
        if (!j.eat(']')) {
          do {
            std::string_view num;
            double share = 0;
            if (!j.number(num) || !parse_share(num, share)) bad("a share is not a number in 0..1");
            if (shares_.size() == kMaxResultColors) bad("too many shares");
            shares_.push_back(share);
          } while (j.eat(','));
          if (!j.eat(']')) bad("\"shares\" is not an array");
        }
        n_shares = shares_.size();
        has_shares = true;
      } else if (!j.skip()) {
        bad("a malformed value");
      }
    } while (j.eat(','));
    if (!j.eat('}')) bad("a malformed object");
  }
  if (!j.at_end()) bad("text after the object");
  if (!has_file) bad("no \"file\"");
  if (!has_error) bad("no \"error\"");
  ResultsRow row;
  row.file = file_;
  row.line = line_;
  row.failed = failed;
  if (failed) {
    row.error = error_;
  } else {
    if (!has_colors || !has_shares || colors_.size() != n_shares) {
      bad("\"colors\" and \"shares\" do not match");
    }
    row.colors = colors_;
    row.shares = shares_;
  }
  on_row(row);
}

void read_results(const std::string& path, const ResultsParser::RowFn& on_row) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> owned(nullptr, &std::fclose);
  std::FILE* in = stdin;
  if (path != "-") {
    owned.reset(std::fopen(path.c_str(), "rb"));
    if (!owned) throw Error("cannot read " + path + ": " + std::strerror(errno));
    in = owned.get();
  }
  ResultsParser parser(path == "-" ? "stdin" : path);
  std::vector<char> buf(std::size_t{1} << 20);
  while (true) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), in);
    if (n == 0) {
      if (std::ferror(in)) throw Error("cannot read " + path + ": " + std::strerror(errno));
      break;
    }
    parser.feed(std::string_view(buf.data(), n), on_row);
  }
  parser.finish(on_row);
}

namespace {

// The length of the longest prefix of `text` made of whole records (up to and including the
// last line end outside quotes), given that `text` starts with a record.
std::size_t complete_prefix(std::string_view text, bool csv) {
  if (!csv || text.find('"') == std::string_view::npos) {
    const std::size_t nl = text.rfind('\n');
    return nl == std::string_view::npos ? 0 : nl + 1;
  }
  std::size_t end = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '"') quoted = !quoted;
    if (text[i] == '\n' && !quoted) end = i + 1;
  }
  return end;
}

FILE* open_results(const std::string& path,
                   std::unique_ptr<std::FILE, int (*)(std::FILE*)>& owned) {
  if (path == "-") return stdin;
  owned.reset(std::fopen(path.c_str(), "rb"));
  if (!owned) throw Error("cannot read " + path + ": " + std::strerror(errno));
  return owned.get();
}

}  // namespace

void read_results_parallel(const std::vector<std::string>& paths, unsigned threads,
                           const ParallelRowFn& on_row) {
  if (threads <= 1) {
    std::uint64_t order = 0;
    for (const auto& path : paths) {
      read_results(path, [&](const ResultsRow& row) { on_row(0, row, order++); });
    }
    return;
  }
  // A chunk: whole records of one file, the parser that continues there, its place in order.
  struct Chunk {
    std::string text;
    ResultsParser parser;
    std::uint64_t id;
    bool last;  // the file's end: a record without a line end, or an open quote, is checked
  };
  constexpr std::size_t kChunkBytes = std::size_t{4} << 20;
  std::mutex mutex;
  std::condition_variable ready, space;
  std::deque<Chunk> queue;
  bool closed = false;
  std::atomic<bool> stop{false};
  std::optional<std::pair<std::uint64_t, std::string>> first_error;  // (chunk id, message)
  const auto record_error = [&](std::uint64_t id, const std::string& what) {
    std::lock_guard lock(mutex);
    if (!first_error || id < first_error->first) first_error.emplace(id, what);
    stop = true;
  };

  std::vector<std::thread> workers;
  for (unsigned w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      while (true) {
        std::unique_lock lock(mutex);
        ready.wait(lock, [&] { return closed || !queue.empty(); });
        if (queue.empty()) return;
        Chunk chunk = std::move(queue.front());
        queue.pop_front();
        // Later chunks than a failed one are skipped: the error is what is reported.
        const bool skip = first_error && chunk.id > first_error->first;
        lock.unlock();
        space.notify_one();
        if (skip) continue;
        std::uint64_t n = 0;
        const auto each = [&](const ResultsRow& row) { on_row(w, row, chunk.id << 32 | n++); };
        try {
          chunk.parser.feed(chunk.text, each);
          if (chunk.last) chunk.parser.finish(each);
        } catch (const Error& e) {
          record_error(chunk.id, e.what());
        } catch (const std::exception& e) {
          record_error(chunk.id, e.what());
        }
      }
    });
  }
  const auto dispatch = [&](Chunk chunk) {
    std::unique_lock lock(mutex);
    space.wait(lock, [&] { return queue.size() < 2 * threads; });
    queue.push_back(std::move(chunk));
    lock.unlock();
    ready.notify_one();
  };

  std::uint64_t id = 0;
  try {
    std::vector<char> buf(kChunkBytes);
    for (const auto& path : paths) {
      if (stop) break;
      std::unique_ptr<std::FILE, int (*)(std::FILE*)> owned(nullptr, &std::fclose);
      std::FILE* in = open_results(path, owned);
      ResultsParser proto(path == "-" ? "stdin" : path);
      std::string carry;
      std::uint64_t line = 1;
      bool started = false;
      const auto nothing = [](const ResultsRow&) {};
      while (!stop) {
        const std::size_t n = std::fread(buf.data(), 1, buf.size(), in);
        if (n == 0) {
          if (std::ferror(in)) throw Error("cannot read " + path + ": " + std::strerror(errno));
          break;
        }
        std::string text = std::move(carry);
        carry.clear();
        text.append(buf.data(), n);
        if (!started) {
          // The format from the first byte; a CSV file's header, parsed here, shapes the rest.
          proto.format_ =
              text[0] == '{' ? ResultsParser::Format::kJsonl : ResultsParser::Format::kCsv;
          if (proto.format_ == ResultsParser::Format::kCsv) {
            bool quoted = false;
            const std::size_t end = proto.record_end(text, 0, quoted);
            if (end == std::string_view::npos) {
              if (text.size() > kMaxResultRowBytes) proto.feed(text, nothing);  // throws
              carry = std::move(text);
              continue;
            }
            proto.feed(std::string_view(text).substr(0, end + 1), nothing);
            line = proto.line_;
            text.erase(0, end + 1);
          }
          started = true;
        }
        const std::size_t cut = complete_prefix(text, proto.format_ == ResultsParser::Format::kCsv);
        carry = text.substr(cut);
        if (carry.size() > kMaxResultRowBytes) {
          ResultsParser at = proto.fork(line + static_cast<std::uint64_t>(std::count(
                                                   text.begin(), text.begin() + cut, '\n')));
          at.fail("a row longer than 1 MiB");
        }
        if (cut == 0) continue;
        text.resize(cut);
        const auto lines = static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n'));
        dispatch(Chunk{std::move(text), proto.fork(line), id++, false});
        line += lines;
      }
      if (stop) break;
      if (!started) {
        // No complete header: the sequential parser says what is wrong (or reads a header
        // without a line end, with no rows).
        proto.feed(carry, nothing);
        proto.finish(nothing);
        continue;
      }
      dispatch(Chunk{std::move(carry), proto.fork(line), id++, true});
    }
  } catch (const Error& e) {
    record_error(id, e.what());
  }
  {
    std::lock_guard lock(mutex);
    closed = true;
  }
  ready.notify_all();
  for (auto& t : workers) t.join();
  if (first_error) throw Error(first_error->second);
}

}  // namespace palette
