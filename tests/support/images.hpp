#pragma once
// Helpers shared by the test suites: synthetic images written to a temporary directory, a CSV
// parser (RFC 4180) and a way to run the palette binary.

#include <cstdint>
#include <filesystem>
#include <map>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace palette::test {

/// A fresh directory under the system temp dir, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  /// path() / name, as a string.
  std::string file(const std::string& name) const;

 private:
  std::filesystem::path path_;
};

/// An RGB image (CV_8UC3, in RGB order) of vertical stripes: colors[i] filling widths[i]
/// columns, `height` rows.
cv::Mat stripes(const std::vector<std::uint32_t>& colors, const std::vector<int>& widths,
                int height);

/// Writes an image with OpenCV's imgcodecs (tests only: the product decodes on its own).
/// `rgb` is RGB/RGBA/grey of any depth; channels are reordered to OpenCV's BGR(A) on the way.
/// `params` are cv::imwrite parameters. Throws on failure.
void write_image(const std::string& path, const cv::Mat& rgb, const std::vector<int>& params = {});

/// Writes `bytes` to `path`.
void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes);
void write_text(const std::string& path, const std::string& text);
std::vector<std::uint8_t> read_bytes(const std::string& path);
/// A file's bytes as text ("" when it cannot be read).
std::string read_text(const std::string& path);
/// Every file of a directory (not below it), by name, with its bytes.
std::map<std::string, std::vector<std::uint8_t>> read_directory(const std::string& dir);

/// Parses CSV text (RFC 4180: quoted fields may hold commas, quotes and newlines).
std::vector<std::vector<std::string>> parse_csv(const std::string& text);

/// Result of running a command.
struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

/// Runs `argv` (argv[0] is the program) with `stdin_text` on its standard input, capturing
/// stdout and stderr. No shell is involved.
RunResult run(const std::vector<std::string>& argv, const std::string& stdin_text = "");

}  // namespace palette::test
