// Soak (label soak): palette extract over 100,000 tiny generated images listed through @list.
// Every row must be there, in order, and the process's peak RSS must stay under the bound
// README.md states for the CPU backend at default settings: inputs are streamed, not collected,
// and the reorder window is bounded however many inputs there are.
//
// The peak asserted is getrusage's for the child, an upper bound: a child started with
// posix_spawn (vfork) inherits this process's high-water mark at exec. The palette process's own
// peak (VmHWM, read from /proc while it runs) is printed beside it.

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/images.hpp"

extern char** environ;

namespace palette::test {
namespace {

constexpr int kImages = 100'000;
// The bound README.md states (CPU backend, default settings, images within the default --size).
constexpr long kBoundKiB = 256 * 1024;

// A 4x4 binary PPM of two colours taken from i.
std::string tiny_ppm(int i) {
  std::string s = "P6 4 4 255\n";
  const auto a = static_cast<unsigned>(i) * 2654435761u;
  for (int p = 0; p < 16; ++p) {
    const unsigned c = p < 11 ? a : ~a;
    s += static_cast<char>(c >> 16);
    s += static_cast<char>(c >> 8);
    s += static_cast<char>(c);
  }
  return s;
}

// VmHWM of a running process, KiB; 0 once it has exited.
long vm_hwm_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

TEST(Soak, HundredThousandInputsInOrderWithinTheMemoryBound) {
  TempDir dir;
  std::vector<std::string> paths;
  paths.reserve(kImages);
  {
    std::ofstream list(dir.file("list.txt"));
    for (int i = 0; i < kImages; ++i) {
      const std::string sub = dir.file("d" + std::to_string(i / 1000));
      if (i % 1000 == 0) std::filesystem::create_directory(sub);
      const std::string p = sub + "/i" + std::to_string(i) + ".ppm";
      std::ofstream(p, std::ios::binary) << tiny_ppm(i);
      list << p << '\n';
      paths.push_back(p);
    }
  }
  const std::string out = dir.file("out.csv");
  std::vector<std::string> argv = {PALETTE_BINARY, "extract", "@" + dir.file("list.txt"),
                                   "-o",           out,       "-q"};
  std::vector<char*> c;
  for (auto& s : argv) c.push_back(s.data());
  c.push_back(nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, c[0], nullptr, nullptr, c.data(), environ), 0);
  int status = 0;
  rusage usage{};
  long own_peak = 0;
  for (;;) {  // polls the child's own high-water mark until it ends
    const pid_t r = ::wait4(pid, &status, WNOHANG, &usage);
    ASSERT_NE(r, -1);
    if (r == pid) break;
    own_peak = std::max(own_peak, vm_hwm_kib(pid));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::printf(
      "soak: %d images in %.1f s, peak RSS at most %ld KiB (getrusage), palette's own %ld KiB "
      "(VmHWM); bound %ld KiB\n",
      kImages, seconds, usage.ru_maxrss, own_peak, kBoundKiB);
  RecordProperty("own_peak_kib", static_cast<int>(own_peak));
  RecordProperty("peak_rss_kib", static_cast<int>(usage.ru_maxrss));
  EXPECT_LT(usage.ru_maxrss, kBoundKiB);

  // Every row, in input order, none failed.
  std::ifstream in(out);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line.rfind("file,", 0), 0u);
  std::size_t i = 0, bad = 0;
  while (std::getline(in, line)) {
    if (i < paths.size()) {
      const bool same = line.rfind(paths[i] + ",", 0) == 0;
      const bool ok = !line.empty() && line.back() == ',';  // an empty error column
      if ((!same || !ok) && ++bad <= 5) ADD_FAILURE() << "row " << i << ": " << line;
    }
    ++i;
  }
  EXPECT_EQ(i, paths.size());
  EXPECT_EQ(bad, 0u);
}

}  // namespace
}  // namespace palette::test
