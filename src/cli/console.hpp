#pragma once
// The terminal side of the CLI: log lines and one live status line (the progress bar) sharing
// stderr without tearing each other, plus the capture of whatever libraries print on their own.

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace palette::cli {

/// Serialises writes to the user's stderr. Log lines appear above the status line.
class Console {
 public:
  static Console& instance();

  /// Where to write (a duplicate of the original stderr once capture is on).
  void set_fd(int fd);
  int fd() const { return fd_; }
  bool is_terminal() const { return tty_; }

  /// Writes `line` (a full line, with its newline) above the status line.
  void print(std::string_view line);
  /// Replaces the status line (no newline); empty removes it.
  void status(const std::string& line);

 private:
  void write_all(std::string_view s);

  std::mutex mutex_;
  int fd_ = 2;
  bool tty_ = false;
  std::string status_;
};

/// Writes a command's whole answer to `path` ("-": stdout). Throws UsageError when the file
/// cannot be opened, palette::Error when writing fails.
void write_output(const std::string& path, std::string_view text);

/// Throws UsageError naming `path` when the directory it would go in is not there: said before
/// a run rather than after it, and of the file asked for rather than of one beside it.
void require_parent_directory(const std::string& path);

/// Writes `bytes` to `path` whole or not at all: to PATH.tmp, then renamed over `path` (with
/// `sync`, flushed to the disk first). Throws palette::Error naming `path`.
void write_file_atomically(const std::string& path, std::string_view bytes, bool sync = false);

/// Sets up spdlog: a logger named "palette" writing through Console. verbosity: -1 errors only,
/// 0 info, 1 debug.
void setup_logging(int verbosity);

/// While alive, file descriptor 2 is a pipe: what libraries (libjpeg, libpng, libtiff, OpenCV)
/// print on their own goes to the debug log instead of the user's terminal. Console keeps
/// writing to the original stderr.
class StderrCapture {
 public:
  StderrCapture();
  ~StderrCapture();
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

 private:
  int saved_ = -1, read_end_ = -1;
  std::thread reader_;
};

}  // namespace palette::cli
