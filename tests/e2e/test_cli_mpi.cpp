// mpirun -n N palette extract (CPU backend, this machine's cores oversubscribed): the output is
// the file a plain run writes, byte for byte, for 1, 2 and 4 ranks, CSV and JSON Lines, error
// rows included; a rank killed mid-run ends the job non-zero with a message naming it, and a
// plain --resume finishes the file byte-identically; --combined gives the palette of the whole
// run, as one process does; every rank draws the strips and contact sheets of its own images,
// and they are those a plain run draws. Skipped where mpirun is missing or palette was built
// without MPI.

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_helpers.hpp"
#include "support/images.hpp"

namespace palette::test {
namespace {

class MpiTest : public ExtractTest {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists("/usr/bin/mpirun")) GTEST_SKIP() << "no mpirun";
    if (run({PALETTE_BINARY, "info"}).out.find("mpi: mpirun") == std::string::npos) {
      GTEST_SKIP() << "palette built without MPI";
    }
    // 240 inputs (enough that rank 0 alone cannot be done before the others have started):
    // small images, a corrupt file and a missing one among them.
    std::string list;
    for (int i = 0; i < 240; ++i) {
      if (i == 17) {
        const std::string bad = dir_.file("bad.png");
        write_text(bad, "not a png");
        list += bad + "\n";
        continue;
      }
      if (i == 41) {
        list += dir_.file("missing.png") + "\n";
        continue;
      }
      const auto a = static_cast<std::uint32_t>(i * 2654435761u) & 0xFFFFFF;
      list += png("img" + std::to_string(i) + (i == 8 ? ", \"odd\".png" : ".png"),
                  {a, a ^ 0x808080, kBlue}, {3 + i % 5, 4, 2}, 6) +
              "\n";
    }
    write_text(dir_.file("list.txt"), list);
  }
  std::vector<std::string> args(const std::string& out, const std::string& format) {
    return {"@" + dir_.file("list.txt"),
            "-o",
            out,
            "--format",
            format,
            "--threads",
            "1",
            "--chunk",
            "3",
            "-q"};
  }
  // mpirun, as root where the tests run as root, oversubscribing this machine's cores.
  static std::vector<std::string> launcher() {
    return {"/usr/bin/env", "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
            "OMPI_MCA_rmaps_base_oversubscribe=1", "/usr/bin/mpirun"};
  }
  // mpirun -n N [OPTIONS] BINARY extract ARGS, with ENV set for every rank.
  RunResult mpirun(int n, const std::vector<std::string>& args,
                   const std::vector<std::string>& env = {},
                   const std::vector<std::string>& options = {},
                   const std::string& binary = PALETTE_BINARY) {
    std::vector<std::string> argv = launcher();
    argv.insert(argv.end(), {"-n", std::to_string(n)});
    for (const auto& e : env) argv.insert(argv.end(), {"-x", e});
    argv.insert(argv.end(), options.begin(), options.end());
    argv.insert(argv.end(), {binary, "extract"});
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
};

TEST_F(MpiTest, RanksWriteTheFileOneProcessWrites) {
  for (const std::string format : {"csv", "jsonl"}) {
    const std::string plain = dir_.file("plain." + format);
    ASSERT_EQ(extract(args(plain, format)).exit_code, 1);  // the two failed inputs
    const std::string want = read_text(plain);
    for (const int n : {1, 2, 4}) {
      SCOPED_TRACE(format + ", " + std::to_string(n) + " ranks");
      const std::string out = dir_.file("mpi" + std::to_string(n) + "." + format);
      const auto r = mpirun(n, args(out, format));
      EXPECT_EQ(r.exit_code, 1) << r.err;
      EXPECT_EQ(read_text(out), want);
      // The record is a plain run's: --resume of it (without mpirun) has nothing to do.
      auto again = args(out, format);
      again.push_back("--resume");
      EXPECT_EQ(extract(again).exit_code, 1);
      EXPECT_EQ(read_text(out), want);
    }
  }
}

// A process the launcher counts as one of several, but alone in its MPI world (here: PMI_SIZE
// set, and Open MPI starting it as a singleton, as it does under another MPI's launcher): it
// would write the whole output beside the others, so it refuses, unless given its own shard.
TEST_F(MpiTest, OneOfSeveralProcessesAloneInItsWorldRefuses) {
  ::setenv("PMI_SIZE", "3", 1);
  // Open MPI's singleton start leaks (LeakSanitizer, under scripts/sanitize.sh): not palette's.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const bool had_asan = asan != nullptr;
  const std::string asan_before = asan ? asan : "";
  ::setenv("ASAN_OPTIONS", (asan_before + ":detect_leaks=0").c_str(), 1);
  const auto r = extract(args(dir_.file("out.csv"), "csv"));
  auto a = args(dir_.file("out.csv"), "csv");
  a.insert(a.end(), {"--shard", "1/3"});
  const auto shard = extract(a);
  ::unsetenv("PMI_SIZE");
  if (had_asan) {
    ::setenv("ASAN_OPTIONS", asan_before.c_str(), 1);
  } else {
    ::unsetenv("ASAN_OPTIONS");
  }
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("one of 3 processes started by mpirun or srun"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("out.csv")));
  EXPECT_EQ(shard.exit_code, 0) << shard.err;
  EXPECT_TRUE(std::filesystem::exists(dir_.file("out.part-1-of-3.csv")));
}

// The node-local rank (a rank's GPU is its local rank modulo the node's GPUs): on one node, the
// ranks are 0 to N-1 there too (MPI's split by shared memory, whatever the launcher sets).
// With -v, rank 0 also says what each rank did, on which host: their images add up to the run's.
TEST_F(MpiTest, RanksOfOneNodeHaveTheirOwnLocalRanks) {
  auto a = args(dir_.file("out.csv"), "csv");
  a.erase(std::find(a.begin(), a.end(), "-q"));
  a.push_back("-v");
  const auto r = mpirun(3, a, {"PALETTE_TEST_WAIT_FOR_RANK=2:30"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  for (const std::string rank : {"1", "2"}) {
    EXPECT_NE(r.err.find("rank " + rank + " (local rank " + rank + "): the cpu backend"),
              std::string::npos)
        << r.err;
  }
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  std::size_t images = 0, failed = 0;
  for (const int rank : {0, 1, 2}) {
    const std::string line = "rank " + std::to_string(rank) + " on " + host + ": ";
    const auto at = r.err.find(line);
    ASSERT_NE(at, std::string::npos) << r.err;
    std::size_t n = 0, f = 0;
    ASSERT_EQ(std::sscanf(r.err.c_str() + at + line.size(), "%zu images, %zu failed", &n, &f), 2)
        << r.err;
    if (rank == 2) {
      EXPECT_GT(n, 30u) << r.err;  // the hook waited for it to hold as many
    }
    images += n;
    failed += f;
  }
  EXPECT_EQ(images, 240u);
  EXPECT_EQ(failed, 2u);
}

// mpirun binds a process to a core (2 processes or fewer) or a socket by default, whatever the
// node has: palette takes its share of the node's CPUs instead (here, the only process: all of
// them), unless the binding was asked for.
TEST_F(MpiTest, EachProcessTakesItsShareOfTheNodesCpus) {
  cpu_set_t mine;
  ASSERT_EQ(::sched_getaffinity(0, sizeof mine, &mine), 0);
  const int cpus = CPU_COUNT(&mine);
  if (cpus < 2) GTEST_SKIP() << "one CPU";
  // Where mpirun cannot bind (a container that forbids it), there is no default to replace.
  std::vector<std::string> env = launcher();
  env.insert(env.end(), {"-n", "1", "/usr/bin/env"});
  if (run(env).out.find("OMPI_MCA_orte_bound_at_launch=1") == std::string::npos) {
    GTEST_SKIP() << "mpirun does not bind here";
  }
  const std::vector<std::string> a = {"@" + dir_.file("list.txt"), "-o", dir_.file("out.csv"),
                                      "-v"};
  const auto by_default = mpirun(1, a);
  EXPECT_EQ(by_default.exit_code, 1) << by_default.err;
  const std::string said = "mpirun bound it to 1 CPU(s), its default; it runs on ";
  const auto at = by_default.err.find(said);
  ASSERT_NE(at, std::string::npos) << by_default.err;
  const int now = std::atoi(by_default.err.c_str() + at + said.size());
  EXPECT_GE(now, cpus) << by_default.err;  // every CPU its cpuset allows, as the only process
  EXPECT_NE(by_default.err.find("(" + std::to_string(now) + " threads)"), std::string::npos)
      << by_default.err;
  const auto asked = mpirun(1, a, {}, {"--bind-to", "core"});
  EXPECT_EQ(asked.exit_code, 1) << asked.err;
  EXPECT_EQ(asked.err.find("its default"), std::string::npos) << asked.err;
  EXPECT_NE(asked.err.find("(1 threads)"), std::string::npos) << asked.err;
}

// A rank that cannot open a file rank 0 can (its node does not mount the inputs' file system, or
// here: relative paths, and the rank started in another directory) would write error rows no
// single process writes. The job ends before any is written (exit 3), naming the rank and the
// file, and --resume, where the inputs are there, finishes the file one process writes.
TEST_F(MpiTest, ARankThatCannotOpenWhatRankZeroOpensEndsTheJob) {
  // The inputs by relative paths (the missing one too: an error row on every rank).
  std::string list;
  std::istringstream lines(read_text(dir_.file("list.txt")));
  for (std::string line; std::getline(lines, line);) {
    list += std::filesystem::path(line).filename().string() + "\n";
  }
  write_text(dir_.file("relative.txt"), list);
  const std::string here = dir_.path().string();
  const std::string elsewhere = make_dir("elsewhere");
  const auto in = [&](const std::string& cwd, const std::string& out) {
    std::vector<std::string> argv = {"/usr/bin/env", "-C", cwd, PALETTE_BINARY, "extract"};
    auto a = args(out, "csv");
    a[0] = "@relative.txt";
    argv.insert(argv.end(), a.begin(), a.end());
    return argv;
  };
  const std::string plain = dir_.file("plain.csv");
  ASSERT_EQ(run(in(here, plain)).exit_code, 1);
  const std::string want = read_text(plain);

  // mpirun -n 1 --wdir DIR palette ... : -n 1 --wdir ELSEWHERE palette ...
  const std::string out = dir_.file("out.csv");
  std::vector<std::string> argv = launcher();
  for (const std::string& cwd : {here, elsewhere}) {
    if (cwd != here) argv.push_back(":");
    argv.insert(argv.end(), {"-n", "1", "--wdir", cwd, "-x", "PALETTE_TEST_WAIT_FOR_RANK=1:3",
                             PALETTE_BINARY, "extract"});
    auto a = args(out, "csv");
    a[0] = "@relative.txt";
    argv.insert(argv.end(), a.begin(), a.end());
  }
  const auto r = run(argv);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("rank 1 on "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cannot open img"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("which rank 0 on "), std::string::npos) << r.err;
  const std::string part = read_text(out);
  ASSERT_LE(part.size(), want.size());
  EXPECT_EQ(want.compare(0, part.size(), part), 0) << "the rows written are a prefix of the file";
  EXPECT_EQ(part.find("cannot open: No such file or directory"), std::string::npos)
      << "rank 1's rows are none of them";

  auto resume = in(here, out);
  resume.push_back("--resume");
  EXPECT_EQ(run(resume).exit_code, 1);
  EXPECT_EQ(read_text(out), want);
}

// The MPI module (palette-mpi.so, beside the executable) missing, as the MPI library it loads
// may be on a node: one of several processes refuses (exit 2) and says what to do; the only
// process of `mpirun -n 1` runs as one process.
TEST_F(MpiTest, WithoutItsMpiLibraryOneOfSeveralProcessesRefuses) {
  const std::string alone = make_dir("alone");
  const std::string binary = alone + "/palette";
  std::filesystem::copy_file(PALETTE_BINARY, binary);
  std::filesystem::permissions(binary, std::filesystem::perms::owner_exec,
                               std::filesystem::perm_options::add);
  const auto with = [&](int n, const std::string& out) {
    return mpirun(n, args(out, "csv"), {}, {}, binary);
  };
  const auto r = with(2, dir_.file("two.csv"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("palette-mpi.so was not found"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--shard I/N"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("two.csv")));

  const std::string plain = dir_.file("plain.csv");
  ASSERT_EQ(extract(args(plain, "csv")).exit_code, 1);
  const auto one = with(1, dir_.file("one.csv"));
  EXPECT_EQ(one.exit_code, 1) << one.err;
  EXPECT_EQ(read_text(dir_.file("one.csv")), read_text(plain));
}

// --swatches under mpirun: every rank draws the strips of its own images, named by their
// places in the whole input, so the directory is the one a plain run fills.
TEST_F(MpiTest, RanksDrawTheStripsOneProcessDraws) {
  auto a = args(dir_.file("plain.csv"), "csv");
  a.insert(a.end(), {"--swatches", dir_.file("plain-strips")});
  ASSERT_EQ(extract(a).exit_code, 1);
  a = args(dir_.file("mpi.csv"), "csv");
  a.insert(a.end(), {"--swatches", dir_.file("mpi-strips")});
  const auto r = mpirun(2, a);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const auto plain = read_directory(dir_.file("plain-strips"));
  EXPECT_EQ(plain.size(), 238u);
  EXPECT_EQ(read_directory(dir_.file("mpi-strips")), plain);
  EXPECT_EQ(read_text(dir_.file("mpi.csv")), read_text(dir_.file("plain.csv")));
}

// --contact-sheet under mpirun: rank 0 hands out chunks of whole sheets (100 inputs unless
// --chunk says a multiple of 100), and every rank draws the sheets of its own chunks, so the
// sheets are those a plain run draws. Rank 2 surely draws two of the three (it is handed more
// than 150 inputs before rank 0 starts its own share). A job whose rank was killed is finished
// by --resume, sheets included. Shards of a job array, each an MPI job, number their strips and
// sheets by their places in the whole input too.
TEST_F(MpiTest, RanksDrawTheSheetsOneProcessDraws) {
  const auto sheet_args = [&](const std::string& name) {
    auto a = args(dir_.file(name + ".csv"), "csv");
    a.erase(std::find(a.begin(), a.end(), "--chunk"), std::find(a.begin(), a.end(), "-q"));
    std::filesystem::create_directory(dir_.file(name));
    a.insert(a.end(), {"--contact-sheet", dir_.file(name + "/sheet.png")});
    return a;
  };
  auto a = sheet_args("plain");
  a.insert(a.end(), {"--swatches", dir_.file("plain-strips")});
  ASSERT_EQ(extract(a).exit_code, 1);
  const auto plain = read_directory(dir_.file("plain"));
  EXPECT_EQ(plain.size(), 3u);  // 100, 100 and 40 images
  auto r = mpirun(3, sheet_args("ranks3"), {"PALETTE_TEST_WAIT_FOR_RANK=2:150"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  r = mpirun(2, sheet_args("ranks2"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  for (const std::string name : {"ranks3", "ranks2"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(read_directory(dir_.file(name)), plain);
    EXPECT_EQ(read_text(dir_.file(name + ".csv")), read_text(dir_.file("plain.csv")));
  }
  for (const std::string shard : {"0/2", "1/2"}) {
    a = sheet_args("sharded");
    a.insert(a.end(),
             {"--swatches", dir_.file("sharded-strips"), "--shard", shard, "--shard-block", "100"});
    r = mpirun(2, a);
    EXPECT_LE(r.exit_code, 1) << r.err;
  }
  EXPECT_EQ(read_directory(dir_.file("sharded")), plain);
  EXPECT_EQ(read_directory(dir_.file("sharded-strips")), read_directory(dir_.file("plain-strips")));
  // A rank killed mid-run (before it sends its 51st row): --resume keeps the rows of the
  // sheets drawn, up to the first one missing, and the job draws the rest.
  r = mpirun(3, sheet_args("killed"), {"PALETTE_TEST_KILL_RANK_AFTER=2:50"});
  EXPECT_NE(r.err.find("rank 2"), std::string::npos) << r.err;
  EXPECT_LT(read_text(dir_.file("killed.csv")).size(), read_text(dir_.file("plain.csv")).size());
  a = sheet_args("killed");
  a.push_back("--resume");
  r = mpirun(2, a);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(read_directory(dir_.file("killed")), plain);
  EXPECT_EQ(read_text(dir_.file("killed.csv")), read_text(dir_.file("plain.csv")));
  // A chunk that is not whole sheets is refused.
  a = sheet_args("refused");
  a.insert(a.end(), {"--chunk", "150"});
  r = mpirun(2, a);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs a --chunk that is a multiple of 100"), std::string::npos) << r.err;
}

// --combined under mpirun: every rank sends its colours to rank 0, which makes the one palette
// of the whole run: the last row (or the --combined-output file) a plain run writes, byte for
// byte. Ten 256x256 noise images among the inputs, so that ranks send their colours in several
// messages.
TEST_F(MpiTest, RanksGiveTheCombinedPaletteOneProcessGives) {
  std::string list = read_text(dir_.file("list.txt"));
  cv::RNG rng(5);
  for (int i = 0; i < 10; ++i) {
    cv::Mat noise(256, 256, CV_8UC3);
    rng.fill(noise, cv::RNG::UNIFORM, 0, 256);
    const std::string path = dir_.file("noise" + std::to_string(i) + ".png");
    write_image(path, noise, {cv::IMWRITE_PNG_COMPRESSION, 1});
    list += path + "\n";
  }
  write_text(dir_.file("list.txt"), list);
  for (const std::string format : {"csv", "jsonl"}) {
    auto a = args(dir_.file("plain." + format), format);
    a.insert(a.end(), {"--combined", "--stats"});
    ASSERT_EQ(extract(a).exit_code, 1);
    const std::string want = read_text(dir_.file("plain." + format));
    ASSERT_NE(want.find("*combined*"), std::string::npos);
    for (const int n : {2, 4}) {
      SCOPED_TRACE(format + ", " + std::to_string(n) + " ranks");
      const std::string out = dir_.file("mpi" + std::to_string(n) + "." + format);
      a = args(out, format);
      a.insert(a.end(), {"--combined", "--stats"});
      const auto r = mpirun(n, a);
      EXPECT_EQ(r.exit_code, 1) << r.err;
      EXPECT_EQ(read_text(out), want);
    }
  }
  auto a = args(dir_.file("rows.csv"), "csv");
  a.insert(a.end(), {"--combined-output", dir_.file("combined.csv")});
  ASSERT_EQ(extract(a).exit_code, 1);
  a = args(dir_.file("mpi-rows.csv"), "csv");
  a.insert(a.end(), {"--combined-output", dir_.file("mpi-combined.csv")});
  EXPECT_EQ(mpirun(3, a).exit_code, 1);
  EXPECT_EQ(read_text(dir_.file("mpi-rows.csv")), read_text(dir_.file("rows.csv")));
  EXPECT_EQ(read_text(dir_.file("mpi-combined.csv")), read_text(dir_.file("combined.csv")));
  // A finished run leaves every rank's colours beside its output: a --resume of it in one
  // process has nothing to do again (under mpirun, --resume --combined is refused).
  EXPECT_TRUE(std::filesystem::exists(dir_.file("mpi2.csv.palette-checkpoint")));
  a = args(dir_.file("mpi2.csv"), "csv");
  a.erase(std::find(a.begin(), a.end(), "-q"));  // its info lines tell what it did again
  a.insert(a.end(), {"--combined", "--stats", "--resume"});
  const auto refused = mpirun(2, a);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("cannot be resumed under mpirun"), std::string::npos) << refused.err;
  const auto resumed = extract(a);
  EXPECT_EQ(resumed.exit_code, 1) << resumed.err;
  EXPECT_NE(resumed.err.find("its last 1 rows are made again"), std::string::npos)
      << resumed.err;  // the combined row alone
  EXPECT_EQ(read_text(dir_.file("mpi2.csv")), read_text(dir_.file("plain.csv")));
  // Shards of a job array, each an MPI job: rank 0 writes the shard's colours for merge.
  for (const std::string shard : {"0/2", "1/2"}) {
    a = args(dir_.file("sharded.csv"), "csv");
    a.insert(a.end(), {"--combined", "--stats", "--shard", shard, "--shard-block", "50"});
    EXPECT_LE(mpirun(2, a).exit_code, 1);
  }
  const auto m = run({PALETTE_BINARY, "merge", dir_.file("sharded.part-0-of-2.csv"),
                      dir_.file("sharded.part-1-of-2.csv"), "-o", dir_.file("merged.csv")});
  EXPECT_EQ(m.exit_code, 0) << m.err;
  EXPECT_EQ(read_text(dir_.file("merged.csv")), read_text(dir_.file("plain.csv")));
}

TEST_F(MpiTest, AKilledRankEndsTheJobAndResumeFinishesTheFile) {
  const std::string plain = dir_.file("plain.csv");
  extract(args(plain, "csv"));
  const std::string want = read_text(plain);
  const std::string out = dir_.file("killed.csv");
  // Rank 1 dies (SIGKILL) once it has sent 3 rows, before it sends more; rank 0 hands it more
  // than 3 inputs before it starts its own share, so rows are surely lost however the two ranks
  // are scheduled (on a loaded machine rank 0 alone could otherwise be done first).
  const auto r = mpirun(2, args(out, "csv"), {"PALETTE_TEST_KILL_RANK_AFTER=1:3"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("rank 1"), std::string::npos) << r.err;
  const std::string part = read_text(out);
  EXPECT_LT(part.size(), want.size());
  EXPECT_EQ(want.compare(0, part.rfind('\n') + 1, part.substr(0, part.rfind('\n') + 1)), 0)
      << "the rows written are a prefix of the whole file";
  // Finished by a plain run, or by another MPI job.
  auto resume = args(out, "csv");
  resume.push_back("--resume");
  const std::string copy = dir_.file("killed-copy.csv");
  std::filesystem::copy_file(out, copy);
  std::filesystem::copy_file(out + ".palette-run.json", copy + ".palette-run.json");
  EXPECT_EQ(extract(resume).exit_code, 1);
  EXPECT_EQ(read_text(out), want);
  auto resume_mpi = args(copy, "csv");
  resume_mpi.push_back("--resume");
  EXPECT_EQ(mpirun(2, resume_mpi).exit_code, 1);
  EXPECT_EQ(read_text(copy), want);
}

}  // namespace
}  // namespace palette::test
