#pragma once
// Error type of the library: every failure that is not a programming error is a palette::Error.

#include <stdexcept>
#include <string>

namespace palette {

/// Thrown by library code for any failure the caller can report (bad input, I/O, device).
/// The message is short and meant for users: it ends up in a CSV `error` cell or a log line.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace palette
