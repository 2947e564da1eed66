// Long runs: interrupted by SIGINT or SIGTERM at several moments, then finished with --resume,
// must give the file an uninterrupted run writes, byte for byte (CSV and JSON Lines); what
// --resume refuses; a last row cut off mid-line; --combined runs, whose colours are saved beside
// them; runs that draw contact sheets and strips.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli_helpers.hpp"

extern char** environ;

namespace palette::test {
namespace {

class ResumeTest : public ExtractTest {
 protected:
  // `n` small images of a few colours each, listed in list.txt; a name with a comma and a quote
  // among them (a quoted CSV field).
  void SetUp() override {
    std::string list;
    for (int i = 0; i < kImages; ++i) {
      const std::string name = i == 7 ? "we\"ird, name.png" : "img" + std::to_string(i) + ".png";
      const auto a = static_cast<std::uint32_t>(i * 2654435761u) & 0xFFFFFF;
      list += png(name, {a, a ^ 0x808080, kRed}, {3 + i % 5, 4, 2}, 6) + "\n";
    }
    list_ = dir_.file("list.txt");
    write_text(list_, list);
  }

  std::vector<std::string> args(const std::string& output, const std::string& format) const {
    return {"@" + list_, "-o", output, "--format", format, "--threads", "2", "-q"};
  }

  // The file an uninterrupted run writes.
  std::string clean(const std::string& format) {
    const std::string out = dir_.file("clean." + format);
    const auto r = extract(args(out, format));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return read_text(out);
  }

  // Starts palette extract ARGS, waits until `output` exists and holds `lines` lines, sends
  // `sig`, and returns the exit status. (A signal before palette has started up, while the
  // dynamic loader runs, would simply kill it: no output exists then.)
  int interrupt(const std::vector<std::string>& extract_args, const std::string& output,
                std::size_t lines, int sig) {
    std::vector<std::string> argv = {PALETTE_BINARY, "extract"};
    argv.insert(argv.end(), extract_args.begin(), extract_args.end());
    std::vector<char*> c;
    for (auto& s : argv) c.push_back(s.data());
    c.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, c[0], &fa, nullptr, c.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (spawned != 0) throw std::runtime_error("cannot run palette");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while ((!std::filesystem::exists(output) || count_lines(read_text(output)) < lines) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
  }

  static constexpr int kImages = 400;
  std::string list_;
};

// Every signal, format and moment: before the first row, mid-run, among the last rows.
TEST_F(ResumeTest, InterruptedThenResumedIsByteIdentical) {
  int interrupted = 0;  // runs the signal did stop before their end
  for (const std::string format : {"csv", "jsonl"}) {
    const std::string want = clean(format);
    const std::size_t header = format == "csv" ? 1 : 0;
    for (const int sig : {SIGINT, SIGTERM}) {
      for (const std::size_t at : {std::size_t{0}, header + 40, header + kImages - 15}) {
        const std::string what =
            format + ", signal " + std::to_string(sig) + ", after " + std::to_string(at) + " lines";
        const std::string out = dir_.file("run." + format);
        std::filesystem::remove(out);
        const int status = interrupt(args(out, format), out, at, sig);
        ASSERT_TRUE(WIFEXITED(status)) << what << ": killed instead of exiting";
        // A run may have finished before the signal came (exit 0); else 128 + the signal.
        const int code = WEXITSTATUS(status);
        EXPECT_TRUE(code == 128 + sig || code == 0) << what << ": exit " << code;
        interrupted += code == 128 + sig ? 1 : 0;
        const std::string part = read_text(out);
        EXPECT_EQ(want.substr(0, part.size()), part) << what << ": not a prefix of the clean run";
        if (!part.empty()) {
          EXPECT_EQ(part.back(), '\n') << what << ": a row cut in half";
        }
        const auto r = extract([&] {
          auto a = args(out, format);
          a.push_back("--resume");
          return a;
        }());
        EXPECT_EQ(r.exit_code, 0) << what << ": " << r.err;
        EXPECT_EQ(read_text(out), want) << what;
      }
    }
  }
  EXPECT_GE(interrupted, 4) << "too few runs were still going when their signal came";
}

// A second signal ends the run at once, still with whole rows only.
TEST_F(ResumeTest, SecondSignalExitsAtOnceWithWholeRows) {
  const std::string want = clean("csv");
  const std::string out = dir_.file("run.csv");
  std::vector<std::string> argv = {PALETTE_BINARY, "extract"};
  for (const auto& a : args(out, "csv")) argv.push_back(a);
  std::vector<char*> c;
  for (auto& s : argv) c.push_back(s.data());
  c.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, c[0], nullptr, nullptr, c.data(), environ), 0);
  while (count_lines(read_text(out)) < 30)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ::kill(pid, SIGTERM);
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_TRUE(WEXITSTATUS(status) == 143 || WEXITSTATUS(status) == 0) << WEXITSTATUS(status);
  const std::string part = read_text(out);
  EXPECT_EQ(want.substr(0, part.size()), part);
  EXPECT_EQ(part.back(), '\n');
}

// The last row cut off mid-line (a power cut, a killed process): dropped and written again.
TEST_F(ResumeTest, LastRowCutOffIsWrittenAgain) {
  for (const std::string format : {"csv", "jsonl"}) {
    const std::string want = clean(format);
    const std::string out = dir_.file("cut." + format);
    std::filesystem::copy_file(dir_.file("clean." + format) + ".palette-run.json",
                               out + ".palette-run.json",
                               std::filesystem::copy_options::overwrite_existing);
    // Cut inside the quoted name of row 8 (CSV: the quote and comma must not end the row), in
    // the middle of a later row, and inside the header.
    const std::size_t in_quotes = want.find("ird, name") + 2;
    for (const std::size_t at : {in_quotes, want.size() / 2 + 7, std::size_t{3}}) {
      write_text(out, want.substr(0, at));
      auto a = args(out, format);
      a.push_back("--resume");
      const auto r = extract(a);
      EXPECT_EQ(r.exit_code, 0) << format << " cut at " << at << ": " << r.err;
      EXPECT_EQ(read_text(out), want) << format << " cut at " << at;
    }
  }
}

// A write that fails mid-run (here the file size limit, with SIGXFSZ ignored: EFBIG, as ENOSPC
// on a full disk) stops the run with exit 3 and one line saying why, never the 1 of a whole
// output with failed images; the rows written stay, and --resume finishes the file.
TEST_F(ResumeTest, FailedWriteExitsThreeAndResumeFinishesTheFile) {
  for (const std::string format : {"csv", "jsonl"}) {
    const std::string want = clean(format);
    ASSERT_GT(want.size(), 16384u);
    const std::string out = dir_.file("full." + format);
    // 32 blocks of 512 bytes: the run record fits, the rows do not.
    std::vector<std::string> argv = {
        "/bin/sh", "-c", "trap '' XFSZ; ulimit -f 32; exec \"$0\" extract \"$@\"", PALETTE_BINARY};
    for (const auto& a : args(out, format)) argv.push_back(a);
    const auto r = run(argv);
    EXPECT_EQ(r.exit_code, 3) << format << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
    const std::string part = read_text(out);
    EXPECT_GT(part.size(), 0u) << format;  // it stopped mid-run, not before its first row
    EXPECT_LT(part.size(), want.size()) << format;
    EXPECT_EQ(want.substr(0, part.size()), part) << format << ": not a prefix of the clean run";
    auto a = args(out, format);
    a.push_back("--resume");
    const auto again = extract(a);
    EXPECT_EQ(again.exit_code, 0) << format << ": " << again.err;
    EXPECT_EQ(read_text(out), want) << format;
  }
}

// A complete output: nothing to add, the same bytes, exit 0.
TEST_F(ResumeTest, CompleteOutputIsLeftAsItIs) {
  const std::string want = clean("csv");
  auto a = args(dir_.file("clean.csv"), "csv");
  a.push_back("--resume");
  const auto r = extract(a);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(dir_.file("clean.csv")), want);
}

// A resume that would mix two runs is refused with one line naming the difference, exit 2, and
// leaves the file as it was.
TEST_F(ResumeTest, ChangedOptionsAreRefused) {
  const std::string want = clean("csv");
  const std::string out = dir_.file("part.csv");
  const std::string part = want.substr(0, want.size() / 3);
  std::filesystem::copy_file(dir_.file("clean.csv") + ".palette-run.json",
                             out + ".palette-run.json");
  const std::string other_list = dir_.file("other.txt");
  write_text(other_list, read_text(list_).substr(read_text(list_).find('\n') + 1));
  struct Case {
    std::vector<std::string> extra;
    std::string names;
    std::string format = "csv";
  };
  const std::vector<Case> cases = {
      {{"-k", "6"}, "-k"},
      {{"--space", "oklab"}, "--space"},
      {{"--size", "64"}, "--size"},
      {{"--seed", "9"}, "--seed"},
      {{"--max-iter", "7"}, "--max-iter"},
      {{"--tol", "0"}, "--tol"},
      {{}, "--format", "jsonl"},
      {{"--names"}, "--names"},
      {{"--sort", "hue"}, "--sort"},
      {{"--stats"}, "--stats"},
      {{"--ignore", "white"}, "--ignore"},
      {{"--region", "0,0,5,5"}, "--region"},
      {{"--merge-delta-e", "3"}, "--merge-delta-e"},
      {{"--min-share", "0.01"}, "--min-share"},
  };
  for (const auto& c : cases) {
    write_text(out, part);
    auto a = args(out, c.format);
    a.insert(a.end(), c.extra.begin(), c.extra.end());
    a.push_back("--resume");
    const auto r = extract(a);
    EXPECT_EQ(r.exit_code, 2) << c.names << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find(c.names + " was"), std::string::npos) << r.err;
    EXPECT_EQ(read_text(out), part) << c.names << ": the file changed";
  }
  // Another input list: named in the record, and found in the rows too.
  write_text(out, part);
  auto a = args(out, "csv");
  a[0] = "@" + other_list;
  a.push_back("--resume");
  auto r = extract(a);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("the inputs were"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(out), part);
  // No record beside the output; stdout as the output.
  std::filesystem::remove(out + ".palette-run.json");
  a = args(out, "csv");
  a.push_back("--resume");
  r = extract(a);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("no record"), std::string::npos) << r.err;
  a = args("-", "csv");
  a.push_back("--resume");
  r = extract(a);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--resume needs an output file"), std::string::npos) << r.err;
}

// --combined: the colours of the rows written are saved beside the output (when the run stops,
// when it ends, and now and then while it runs), so that --resume goes on gathering them and
// ends with the combined row of an uninterrupted run. Rows past what the saved colours cover
// (written after the last save, and a finished run's combined row) are cut and made again.
TEST_F(ResumeTest, CombinedRunsResumeByteIdentical) {
  const std::vector<std::string> combined = {"--combined", "--stats"};
  int interrupted = 0, killed = 0;  // runs still going when their signal came
  const auto with = [&](const std::string& out, const std::string& format, bool resume) {
    auto a = args(out, format);
    *(std::find(a.begin(), a.end(), "--threads") + 1) = "1";  // slower: signals come mid-run
    a.insert(a.end(), combined.begin(), combined.end());
    if (resume) a.push_back("--resume");
    return a;
  };
  const auto resumed = [&](const std::string& out, const std::string& format,
                           const std::string& what) {
    const auto r = extract(with(out, format, true));
    EXPECT_EQ(r.exit_code, 0) << what << ": " << r.err;
    return read_text(out);
  };
  for (const std::string format : {"csv", "jsonl"}) {
    const std::string out = dir_.file("c." + format);
    ASSERT_EQ(extract(with(out, format, false)).exit_code, 0);
    const std::string want = read_text(out);
    ASSERT_NE(want.find("*combined*"), std::string::npos);
    const std::string checkpoint = out + ".palette-checkpoint";
    ASSERT_TRUE(std::filesystem::exists(checkpoint));
    // A finished run: its combined row is made again from the saved colours, the same.
    EXPECT_EQ(resumed(out, format, format + " finished"), want);
    // Stopped by a signal: the colours of its rows are saved as it stops.
    for (const int sig : {SIGINT, SIGTERM}) {
      const std::string what = format + ", signal " + std::to_string(sig);
      std::filesystem::remove(out);
      const int status = interrupt(with(out, format, false), out, 60, sig);
      ASSERT_TRUE(WIFEXITED(status)) << what;
      interrupted += WEXITSTATUS(status) == 128 + sig ? 1 : 0;
      EXPECT_EQ(want.substr(0, read_text(out).size()), read_text(out)) << what;
      EXPECT_EQ(resumed(out, format, what), want) << what;
    }
    // Killed (SIGKILL), saving after every batch: the file holds at least the rows saved.
    ::setenv("PALETTE_TEST_CHECKPOINT_SECONDS", "0", 1);
    std::filesystem::remove(out);
    const int status = interrupt(with(out, format, false), out, 150, SIGKILL);
    ::unsetenv("PALETTE_TEST_CHECKPOINT_SECONDS");
    EXPECT_TRUE(WIFSIGNALED(status) || WEXITSTATUS(status) == 0) << format;
    killed += WIFSIGNALED(status) ? 1 : 0;
    EXPECT_EQ(resumed(out, format, format + " killed"), want);
    // Saved colours that cover fewer rows than the file holds (a save some batches back):
    // the rows past them are cut and made again.
    std::filesystem::remove(out);
    interrupt(with(out, format, false), out, 100, SIGTERM);
    const std::string early = read_text(checkpoint);
    EXPECT_EQ(resumed(out, format, format + " stopped"), want);
    write_text(checkpoint, early);
    EXPECT_EQ(resumed(out, format, format + " behind"), want);
    // No saved colours (a run killed before its first save): every row is made again.
    std::filesystem::remove(checkpoint);
    write_text(out, want.substr(0, want.size() / 2));
    EXPECT_EQ(resumed(out, format, format + " none saved"), want);
  }
  EXPECT_GE(interrupted, 2) << "too few runs were still going when their signal came";
  EXPECT_GE(killed, 1) << "no run was still going when it was killed";
  std::cout << "[ combined ] " << interrupted << " of 4 runs stopped by a signal, " << killed
            << " of 2 killed\n";
  // --combined-output: its file is written again at the end of the resumed run.
  const std::string out = dir_.file("rows.csv"), own = dir_.file("own.csv");
  auto a = args(out, "csv");
  a.insert(a.end(), {"--combined-output", own, "--stats"});
  ASSERT_EQ(extract(a).exit_code, 0);
  const std::string want_rows = read_text(out), want_own = read_text(own);
  std::filesystem::remove(out);
  std::filesystem::remove(own);
  interrupt(a, out, 80, SIGTERM);
  a.push_back("--resume");
  EXPECT_EQ(extract(a).exit_code, 0);
  EXPECT_EQ(read_text(out), want_rows);
  EXPECT_EQ(read_text(own), want_own);
  // Damaged saved colours, or ones that cover more rows than the file has: refused, one line,
  // the file left as it is.
  const std::string c = dir_.file("c.csv"), checkpoint = c + ".palette-checkpoint";
  const std::string saved = read_text(checkpoint), rows = read_text(c);
  const auto refused = [&](const std::string& why) {
    const auto r = extract(with(c, "csv", true));
    EXPECT_EQ(r.exit_code, 2) << why << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
  };
  write_text(checkpoint, saved.substr(0, saved.size() - 1));
  refused("cut off palette colours file");
  write_text(checkpoint, "PALETTE");
  refused("is damaged");
  write_text(checkpoint, saved);
  write_text(c, rows.substr(0, rows.size() / 2));
  refused("cover");
  EXPECT_EQ(read_text(c), rows.substr(0, rows.size() / 2));
}

// --contact-sheet and --swatches: a run's pictures are drawn before its rows are written (a
// sheet as soon as its 100th image is in), so --resume keeps the rows of the sheets already
// drawn, up to the first one missing, and makes the rest again: the sheets and strips of an
// uninterrupted run, byte for byte, whenever the run stopped or was killed.
TEST_F(ResumeTest, ContactSheetRunsResumeByteIdentical) {
  // With --combined too: the rows the saved colours cover stay, and those of them past the last
  // whole sheet are made again for their sheet, not written again nor their pixels counted twice.
  for (const bool combined : {false, true}) {
    SCOPED_TRACE(combined ? "--combined" : "");
    const std::string tag = combined ? "c-" : "";
    const auto with = [&](const std::string& name, bool resume) {
      auto a = args(dir_.file(tag + name + ".csv"), "csv");
      *(std::find(a.begin(), a.end(), "--threads") + 1) = "1";  // slower: signals come mid-run
      std::filesystem::create_directories(dir_.file(tag + name));
      a.insert(a.end(), {"--contact-sheet", dir_.file(tag + name + "/sheet.png"), "--swatches",
                         dir_.file(tag + name + "-strips")});
      if (combined) a.push_back("--combined");
      if (resume) a.push_back("--resume");
      return a;
    };
    ASSERT_EQ(extract(with("clean", false)).exit_code, 0);
    const std::string want = read_text(dir_.file(tag + "clean.csv"));
    const auto sheets = read_directory(dir_.file(tag + "clean"));
    auto strips = read_directory(dir_.file(tag + "clean-strips"));
    ASSERT_EQ(sheets.size(), 4u);
    ASSERT_EQ(strips.size(), static_cast<std::size_t>(kImages) + (combined ? 1 : 0));
    ASSERT_EQ(combined, want.find("*combined*") != std::string::npos);
    const auto same = [&](const std::string& name) {
      EXPECT_EQ(read_text(dir_.file(tag + name + ".csv")), want);
      EXPECT_EQ(read_directory(dir_.file(tag + name)), sheets);
      EXPECT_EQ(read_directory(dir_.file(tag + name + "-strips")), strips);
    };
    const auto resume = [&](const std::string& name, const std::string& said = "") {
      auto a = with(name, true);
      a.erase(std::find(a.begin(), a.end(), "-q"));
      const auto r = extract(a);
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_NE(r.err.find(said), std::string::npos) << r.err;
      same(name);
    };
    int stopped = 0;
    // Killed: with --combined, the colours saved after every batch.
    if (combined) ::setenv("PALETTE_TEST_CHECKPOINT_SECONDS", "0", 1);
    for (const auto& [sig, lines] : std::vector<std::pair<int, std::size_t>>{
             {SIGINT, 150}, {SIGTERM, 230}, {SIGKILL, 120}, {SIGKILL, 310}}) {
      const std::string name = "run" + std::to_string(sig) + "-" + std::to_string(lines);
      SCOPED_TRACE(name);
      const int status = interrupt(with(name, false), dir_.file(tag + name + ".csv"), lines, sig);
      stopped += WIFSIGNALED(status) || WEXITSTATUS(status) != 0 ? 1 : 0;
      resume(name);
    }
    ::unsetenv("PALETTE_TEST_CHECKPOINT_SECONDS");
    EXPECT_GE(stopped, 2) << "too few runs were still going when their signal came";
    // A sheet gone from a finished run (or one another MPI rank had not drawn): its rows and
    // every row after them are made again.
    const auto copy_clean = [&](const std::string& name) {
      std::filesystem::copy(dir_.file(tag + "clean"), dir_.file(tag + name));
      std::filesystem::copy(dir_.file(tag + "clean-strips"), dir_.file(tag + name + "-strips"));
      for (const std::string end : {".csv", ".csv.palette-run.json", ".csv.palette-checkpoint"}) {
        if (!std::filesystem::exists(dir_.file(tag + "clean" + end))) continue;
        std::filesystem::copy_file(dir_.file(tag + "clean" + end), dir_.file(tag + name + end));
      }
    };
    copy_clean("gone");
    std::filesystem::remove(dir_.file(tag + "gone/sheet-3.png"));
    resume("gone", combined ? "rows 201 to 400 are made again to draw their contact sheet"
                            : "its last 200 rows are made again");
    if (!combined) continue;
    // Saved colours some way behind the rows (a save before the last): the rows past them are
    // cut and made again, and those from the last whole sheet before them replayed.
    std::filesystem::remove(dir_.file(tag + "behind.csv"));
    interrupt(with("behind", false), dir_.file(tag + "behind.csv"), 130, SIGTERM);
    const std::string early = read_text(dir_.file(tag + "behind.csv.palette-checkpoint"));
    resume("behind");
    write_text(dir_.file(tag + "behind.csv.palette-checkpoint"), early);
    resume("behind", "are made again to draw their contact sheet");
    // A row already there that comes out otherwise (the inputs changed): the run stops (exit 3)
    // naming it, and nothing is written past the rows there.
    copy_clean("changed");
    std::string rows = read_text(dir_.file(tag + "changed.csv"));
    const std::size_t row_350 = [&] {
      std::size_t at = 0;
      for (int i = 0; i < 350; ++i) at = rows.find('\n', at) + 1;  // the header, 349 rows
      return at;
    }();
    rows[rows.find(',', row_350) + 1] = rows[rows.find(',', row_350) + 1] == '#' ? '%' : '#';
    write_text(dir_.file(tag + "changed.csv"), rows);
    std::filesystem::remove(dir_.file(tag + "changed/sheet-4.png"));
    const auto r = extract(with("changed", true));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("row 350 ("), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("the inputs changed"), std::string::npos) << r.err;
  }
}

// The record sits beside the output; the output itself stays plain CSV (no comment lines).
TEST_F(ResumeTest, RunRecordBesideThePlainOutput) {
  const std::string want = clean("csv");
  EXPECT_EQ(want.substr(0, 5), "file,");
  const std::string record = read_text(dir_.file("clean.csv") + ".palette-run.json");
  for (const char* key : {"\"-k\": \"5\"", "\"--format\": \"csv\"", "\"the inputs\""}) {
    EXPECT_NE(record.find(key), std::string::npos) << key << " in " << record;
  }
  // Without --resume an output is replaced, as before.
  const auto r = extract(args(dir_.file("clean.csv"), "csv"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(read_text(dir_.file("clean.csv")), want);
}

}  // namespace
}  // namespace palette::test
