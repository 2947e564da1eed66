#pragma once
// A streaming parser of multipart/form-data request bodies (RFC 7578, RFC 2046 section 5.1):
// bytes go in split anywhere, part events come out. It holds no more than one part's headers
// (kMaxPartHeaderBytes); part contents are handed on as they arrive, never buffered here.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace palette {

/// The boundary of a `multipart/form-data; boundary=...` Content-Type value (quoted or not):
/// nullopt when the type is something else or the boundary is missing or invalid (1 to 200
/// characters of RFC 2046's bchars, not ending in a space).
std::optional<std::string> multipart_boundary(std::string_view content_type);

/// Receives the parts of a body, in order: part_begin, any number of part_data, part_end.
class MultipartHandler {
 public:
  virtual ~MultipartHandler() = default;
  /// A part starts: its form field name and its file name (empty when the part has none).
  virtual void part_begin(const std::string& name, const std::string& filename) = 0;
  /// The next bytes of the current part's content.
  virtual void part_data(std::span<const std::uint8_t> bytes) = 0;
  /// The current part is complete.
  virtual void part_end() = 0;
};

/// Parses one body. Not thread-safe; one parser per request.
class MultipartParser {
 public:
  /// Headers of one part (Content-Disposition and the like) larger than this are an error.
  static constexpr std::size_t kMaxPartHeaderBytes = 16 * 1024;

  /// `boundary` as multipart_boundary() returns it. `handler` must outlive the parser.
  MultipartParser(std::string boundary, MultipartHandler& handler);

  /// The next bytes of the body. Returns false once the body is malformed (see error()); bytes
  /// fed after that are ignored.
  bool feed(std::span<const std::uint8_t> bytes);
  /// The body has ended. Returns true when it was complete (its closing boundary was seen);
  /// otherwise error() says what is wrong.
  bool finish();
  /// Why the body is malformed (empty while it is not).
  const std::string& error() const { return error_; }

 private:
  enum class State {
    kPreamble,   // before the first boundary: ignored
    kBoundary,   // after a boundary: "--" (the end) or line end (a part follows)
    kCloseDash,  // after "--boundary-"
    kLineEnd,    // after the boundary line's '\r'
    kHeaders,    // a part's header lines
    kBody,       // a part's content, up to the next "\r\n--boundary"
    kEpilogue,   // after the closing boundary: ignored
    kError,
  };

  std::size_t scan(const std::uint8_t* data, std::size_t size);
  void fail(std::string message);
  bool headers_done();

  std::string delimiter_;  // "\r\n--" + boundary
  MultipartHandler& handler_;
  State state_ = State::kPreamble;
  std::size_t matched_ = 2;  // delimiter bytes matched; the first boundary may lack its "\r\n"
  std::string headers_;
  std::size_t line_start_ = 0;
  std::string error_;
};

}  // namespace palette
