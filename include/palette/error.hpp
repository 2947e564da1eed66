#pragma once
// Error type of the library: every failure that is not a programming error is a palette::Error.

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

namespace palette {

/// Thrown by library code for any failure the caller can report (bad input, I/O, device).
/// The message is short and meant for users: it ends up in a CSV `error` cell or a log line.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// The message an image's error row carries for the exception being handled: a palette::Error's
/// own text, "out of memory while decoding", or "unexpected error: ..." for anything else. Call
/// it only inside a catch block.
inline std::string decode_error_text() {
  try {
    throw;
  } catch (const Error& e) {
    return e.what();
  } catch (const std::bad_alloc&) {
    return "out of memory while decoding";
  } catch (const std::exception& e) {
    return std::string("unexpected error: ") + e.what();
  } catch (...) {
    return "unexpected error";
  }
}

}  // namespace palette
