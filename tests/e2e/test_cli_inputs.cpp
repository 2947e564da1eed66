// End-to-end tests of `palette extract`: inputs (files, directories, @lists, stdin; order and
// multiplicity) and interruption (rows written before Ctrl-C stay). Helpers in cli_helpers.hpp.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli_helpers.hpp"

extern char** environ;

namespace palette::test {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Inputs: files, directories, @lists, stdin; order and multiplicity.

TEST_F(ExtractTest, RowsFollowCommandLineOrder) {
  const std::string c = solid_png("c.png", kBlue);
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kGreen);
  const auto r = extract_rows({c, a, b});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(r.rows), (std::vector<std::string>{c, a, b}));
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].colors[0], hex(kBlue));
  EXPECT_EQ(r.rows[1].colors[0], hex(kRed));
  EXPECT_EQ(r.rows[2].colors[0], hex(kGreen));
}

TEST_F(ExtractTest, SamePathTwiceGivesTwoRows) {
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kBlue);
  const auto r = extract_rows({a, b, a});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(r.rows), (std::vector<std::string>{a, b, a}));
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].cells, (std::vector<std::string>(r.rows[2].cells)));
}

TEST_F(ExtractTest, ManyImagesWithManyThreadsKeepInputOrderAndContent) {
  // Each image is one solid colour derived from its position, so a row can be matched to the
  // image it came from; names are given in an order unrelated to their sorting.
  std::vector<std::string> paths;
  std::vector<std::string> expected_colors;
  for (int i = 0; i < 40; ++i) {
    const int n = (i * 17) % 40;
    const auto color = static_cast<std::uint32_t>(0x010203 * (n + 1) + 0x400000);
    // Sizes vary so workers finish out of order.
    const int side = 4 + (n % 7) * 40;
    paths.push_back(solid_png("img" + std::to_string(n) + ".png", color, side, side));
    expected_colors.push_back(hex(color));
  }
  std::vector<std::string> args = paths;
  for (const std::string a : {"--threads", "4", "--batch", "3"}) args.push_back(a);
  const auto r = extract_rows(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(r.rows), paths);
  ASSERT_EQ(r.rows.size(), paths.size());
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    EXPECT_EQ(r.rows[i].colors, (std::vector<std::string>{expected_colors[i]})) << r.rows[i].file;
  }
}

TEST_F(ExtractTest, DirectoryIsRecursiveSortedByFullPathAndFiltered) {
  const std::string root = make_dir("root");
  make_dir("root/a");
  make_dir("root/a/deeper");
  make_dir("root/.git");
  make_dir("root/z-empty");
  std::vector<std::string> images;
  for (const std::string name : {"root/b.png", "root/a.png", "root/a/c.png", "root/a/deeper/x.png",
                                 "root/a0.png", "root/D.PNG", "root/a-b.png", "root/Zed.png"}) {
    images.push_back(solid_png(name, kRed));
  }
  // Not images by name, or hidden: skipped.
  write_text(dir_.file("root/notes.txt"), "hello");
  write_text(dir_.file("root/png"), "no extension");
  write_text(dir_.file("root/image.png.bak"), "backup");
  solid_png("root/.hidden.png", kBlue);
  solid_png("root/.git/inside.png", kBlue);

  const auto r = extract_rows({root});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::sort(images.begin(), images.end());
  EXPECT_EQ(files_of(r.rows), images);
  for (const auto& row : r.rows) EXPECT_EQ(row.colors, (std::vector<std::string>{hex(kRed)}));
}

TEST_F(ExtractTest, DirectoryPathWithTrailingSlashGivesTheSameFiles) {
  const std::string root = make_dir("root");
  const std::string a = solid_png("root/a.png", kRed);
  const auto r = extract_rows({root + "/"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(fs::path(r.rows[0].file).lexically_normal(), fs::path(a).lexically_normal());
}

TEST_F(ExtractTest, DirectoryExtensionsAreCaseInsensitive) {
  const std::string root = make_dir("exts");
  std::vector<std::string> images;
  // Written as PNG whatever the name says: palette recognises images by their bytes.
  for (const std::string name :
       {"a.jpg", "b.JPG", "c.jpeg", "d.JpEg", "e.png", "f.PNG", "g.webp", "h.WEBP", "i.bmp",
        "j.Bmp", "k.tif", "l.TIF", "m.tiff", "n.TIFF"}) {
    const std::string p = dir_.file("exts/" + name);
    write_bytes(p, read_bytes(solid_png("src.png", kGreen)));
    images.push_back(p);
  }
  for (const std::string name : {"x.gif", "y.txt", "z.jpg2", "w.pngx"}) {
    write_bytes(dir_.file("exts/" + name), read_bytes(solid_png("src.png", kGreen)));
  }
  const auto r = extract_rows({root});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::sort(images.begin(), images.end());
  EXPECT_EQ(files_of(r.rows), images);
}

TEST_F(ExtractTest, HiddenIncludesDotNamesInDirectories) {
  const std::string root = make_dir("root");
  make_dir("root/.cache");
  std::vector<std::string> images = {solid_png("root/.dot.png", kRed),
                                     solid_png("root/.cache/in.png", kGreen),
                                     solid_png("root/visible.png", kBlue)};
  const auto without = extract_rows({root});
  EXPECT_EQ(without.exit_code, 0) << without.err;
  EXPECT_EQ(files_of(without.rows), (std::vector<std::string>{dir_.file("root/visible.png")}));

  const auto with = extract_rows({root, "--hidden"});
  EXPECT_EQ(with.exit_code, 0) << with.err;
  std::sort(images.begin(), images.end());
  EXPECT_EQ(files_of(with.rows), images);
}

TEST_F(ExtractTest, HiddenFileNamedExplicitlyIsProcessed) {
  const std::string dot = solid_png(".dot.png", kRed);
  const auto r = extract_rows({dot});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(r.rows), (std::vector<std::string>{dot}));
}

TEST_F(ExtractTest, ListFileWithCrlfAndEmptyLines) {
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kGreen);
  const std::string c = solid_png("c.png", kBlue);
  const std::string list = dir_.file("list.txt");
  write_text(list, "\n" + c + "\r\n\r\n" + a + "\n\n" + b + "\r\n" + c);  // no final newline
  const auto r = extract_rows({"@" + list});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(r.rows), (std::vector<std::string>{c, a, b, c}));
  for (const auto& row : r.rows) EXPECT_EQ(row.error, "") << row.file;
}

TEST_F(ExtractTest, ListFileThatDoesNotExistIsAnErrorRow) {
  const std::string a = solid_png("a.png", kRed);
  const auto r = extract_rows({a, "@" + dir_.file("missing-list.txt")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].file, a);
  EXPECT_EQ(r.rows[1].file, "@" + dir_.file("missing-list.txt"));
  EXPECT_NE(r.rows[1].error.find("cannot read list"), std::string::npos) << r.rows[1].error;
}

TEST_F(ExtractTest, PathsFromStdin) {
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kGreen);
  const auto r = extract_rows({"-"}, b + "\r\n\n" + a + "\n" + b + "\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(r.rows), (std::vector<std::string>{b, a, b}));
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0].colors, (std::vector<std::string>{hex(kGreen)}));
  EXPECT_EQ(r.rows[1].colors, (std::vector<std::string>{hex(kRed)}));
}

TEST_F(ExtractTest, MixedInputKindsKeepArgumentOrder) {
  const std::string first = solid_png("first.png", kRed);
  const std::string root = make_dir("dir");
  const std::string d1 = solid_png("dir/2.png", kGreen);
  const std::string d0 = solid_png("dir/1.png", kGreen);
  const std::string listed = solid_png("listed.png", kBlue);
  const std::string piped = solid_png("piped.png", kYellow);
  const std::string list = dir_.file("list.txt");
  write_text(list, listed + "\n" + first + "\n");
  const auto r = extract_rows({first, root, "@" + list, "-", first}, piped + "\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files_of(r.rows),
            (std::vector<std::string>{first, d0, d1, listed, first, piped, first}));
}

// ---------------------------------------------------------------------------------------------
// Interruption: rows written before Ctrl-C stay.

// What an interrupted `palette extract -` left behind.
struct Interrupted {
  std::string before;  // stdout before the signal
  std::string text;    // all of stdout
  bool ended = false;  // whether palette ended (stdout closed) in time
  int status = 0;      // waitpid status
};

// Runs `palette extract - --threads 2`, sends `paths` on stdin (kept open), waits for the header
// and one row per path, sends SIGINT, optionally closes stdin, and waits up to `wait` for the end
// of stdout (killing palette after that).
Interrupted interrupt_run(const std::vector<std::string>& paths, bool close_stdin_after_signal,
                          std::chrono::seconds wait) {
  Interrupted result;
  int in[2], out[2];
  if (::pipe(in) != 0 || ::pipe(out) != 0) throw std::runtime_error("pipe failed");
  const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, devnull, 2);
  for (int fd : {in[0], in[1], out[0], out[1]}) posix_spawn_file_actions_addclose(&fa, fd);
  std::vector<std::string> argv = {PALETTE_BINARY, "extract", "-", "--threads", "2"};
  std::vector<char*> args;
  for (auto& s : argv) args.push_back(s.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  ::close(devnull);
  if (spawned != 0) throw std::runtime_error("cannot run palette");

  std::string lines;
  for (const auto& p : paths) lines += p + "\n";
  if (::write(in[1], lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) {
    ADD_FAILURE() << "cannot write paths to palette's stdin";
  }
  // Reads stdout until it holds `want` lines (0: until EOF) or the time is up; false on EOF.
  auto read_until = [&](std::size_t want, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (want == 0 || count_lines(result.text) < want) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return true;
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) return false;
      result.text.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  };
  read_until(paths.size() + 1, std::chrono::seconds(10));
  result.before = result.text;
  ::kill(pid, SIGINT);
  if (close_stdin_after_signal) ::close(in[1]);
  result.ended = !read_until(0, wait);
  if (!result.ended) ::kill(pid, SIGKILL);
  ::waitpid(pid, &result.status, 0);
  if (!close_stdin_after_signal) ::close(in[1]);
  ::close(out[0]);
  return result;
}

TEST_F(ExtractTest, InterruptKeepsRowsAlreadyWritten) {
  const std::string a = solid_png("a.png", kRed);
  const std::string b = solid_png("b.png", kBlue);
  const auto r = interrupt_run({a, b}, /*close_stdin_after_signal=*/true, std::chrono::seconds(10));
  EXPECT_EQ(count_lines(r.before), 3u)
      << "rows were not written before the interrupt: " << r.before;
  ASSERT_TRUE(r.ended) << "palette did not end within 10 s of SIGINT and end of stdin";
  EXPECT_EQ(r.text.substr(0, r.before.size()), r.before);
  const auto rows = parse_rows(r.text, 5);
  EXPECT_EQ(files_of(rows), (std::vector<std::string>{a, b}));
  for (const auto& row : rows) EXPECT_EQ(row.error, "") << row.file;
  EXPECT_TRUE(WIFEXITED(r.status)) << "killed by a signal instead of exiting cleanly";
}

TEST_F(ExtractTest, InterruptEndsRunWaitingForMorePathsOnStdin) {
  // The producer of the paths is still there (stdin stays open): one SIGINT must still end the
  // run, keeping the rows written so far.
  const std::string a = solid_png("a.png", kRed);
  const auto r = interrupt_run({a}, /*close_stdin_after_signal=*/false, std::chrono::seconds(5));
  EXPECT_EQ(count_lines(r.before), 2u) << "row was not written before the interrupt: " << r.before;
  EXPECT_TRUE(r.ended) << "palette did not end within 5 s of SIGINT";
  EXPECT_EQ(files_of(parse_rows(r.text, 5)), (std::vector<std::string>{a}));
  if (r.ended) {
    EXPECT_TRUE(WIFEXITED(r.status)) << "killed by a signal instead of exiting cleanly";
    if (WIFEXITED(r.status)) {
      EXPECT_NE(WEXITSTATUS(r.status), 0);
    }
  }
}

}  // namespace
}  // namespace palette::test
