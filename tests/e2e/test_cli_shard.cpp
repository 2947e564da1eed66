// Job arrays without MPI: extract --shard I/N writes every N-th block of the inputs to a part
// file, and palette merge joins the parts into the file one run writes, byte for byte (CSV and
// JSON Lines, error rows included, parts without rows included), --combined too; what merge
// refuses; strips and contact sheets; the shard of a Slurm array task; bad --shard values.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_helpers.hpp"

namespace palette::test {
namespace {

class ShardTest : public ExtractTest {
 protected:
  void SetUp() override {
    // Eleven inputs: images of a few colours, a corrupt one and a missing one among them.
    for (int i = 0; i < 9; ++i) {
      const auto a = static_cast<std::uint32_t>(i * 2654435761u) & 0xFFFFFF;
      list_ += png("img" + std::to_string(i) + (i == 4 ? ", odd\".png" : ".png"),
                   {a, a ^ 0x808080, kRed}, {3 + i % 4, 4, 2}, 6) +
               "\n";
    }
    const std::string bad = dir_.file("bad.jpg");
    write_text(bad, "not a jpeg");
    list_ += bad + "\n" + dir_.file("missing.png") + "\n";
    write_text(dir_.file("list.txt"), list_);
  }
  std::vector<std::string> args(const std::string& out, const std::string& format) {
    return {"@" + dir_.file("list.txt"), "-o", out, "--format", format, "-q", "--threads", "2"};
  }
  // extract ARGS(out, csv) EXTRA in the environment `env` ("NAME=VALUE", or "-u", "NAME" to
  // unset one), as a Slurm task or an MPI launcher would start it.
  RunResult extract_in(const std::vector<std::string>& env, const std::string& out,
                       const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {"/usr/bin/env"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.insert(argv.end(), {PALETTE_BINARY, "extract"});
    const auto a = args(out, "csv");
    argv.insert(argv.end(), a.begin(), a.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv);
  }
  RunResult merge(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {PALETTE_BINARY, "merge"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }
  // Runs every shard of N (blocks of `block`) to OUT, and returns the part files.
  std::vector<std::string> shards(const std::string& out, const std::string& format, int n,
                                  int block, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> parts;
    for (int i = 0; i < n; ++i) {
      auto a = args(out, format);
      a.insert(a.end(), {"--shard", std::to_string(i) + "/" + std::to_string(n), "--shard-block",
                         std::to_string(block)});
      a.insert(a.end(), extra.begin(), extra.end());
      const auto r = extract(a);
      EXPECT_LE(r.exit_code, 1) << r.err;  // 1: this part holds a failed image
      const std::filesystem::path p(out);
      parts.push_back((p.parent_path() / (p.stem().string() + ".part-" + std::to_string(i) +
                                          "-of-" + std::to_string(n) + p.extension().string()))
                          .string());
      EXPECT_TRUE(std::filesystem::exists(parts.back())) << parts.back();
    }
    return parts;
  }
  std::string list_;
};

TEST_F(ShardTest, MergedPartsAreTheFileOneRunWrites) {
  for (const std::string format : {"csv", "jsonl"}) {
    const std::string plain = dir_.file("plain." + format);
    ASSERT_EQ(extract(args(plain, format)).exit_code, 1);  // two failed inputs
    const std::string want = read_text(plain);
    ASSERT_FALSE(want.empty());
    // Shard counts and block sizes that leave short last blocks and parts without a row.
    for (const auto& [n, block] :
         std::vector<std::pair<int, int>>{{1, 1000}, {2, 1}, {3, 2}, {4, 3}, {5, 4}, {8, 1}}) {
      SCOPED_TRACE(format + " " + std::to_string(n) + "/" + std::to_string(block));
      const std::string out = dir_.file("out-" + std::to_string(n) + "." + format);
      if (n == 1) {
        // 0/1 is the whole run, no part file.
        auto a = args(out, format);
        a.insert(a.end(), {"--shard", "0/1"});
        EXPECT_EQ(extract(a).exit_code, 1);
        EXPECT_EQ(read_text(out), want);
        continue;
      }
      // Each part holds only its own blocks' rows, in input order.
      const auto parts = shards(out, format, n, block);
      std::size_t rows = 0;
      for (const auto& p : parts) rows += count_lines(read_text(p)) - (format == "csv" ? 1 : 0);
      EXPECT_EQ(rows, 11u);
      // Given in any order.
      std::vector<std::string> reversed(parts.rbegin(), parts.rend());
      const std::string merged = dir_.file("merged-" + std::to_string(n) + "." + format);
      reversed.insert(reversed.end(), {"-o", merged});
      const auto r = merge(reversed);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(read_text(merged), want);
      // The merged file is complete as far as --resume can tell: it leaves it as it is.
      auto a = args(merged, format);
      a.push_back("--resume");
      const auto again = extract(a);
      EXPECT_EQ(again.exit_code, 1) << again.err;
      EXPECT_EQ(read_text(merged), want);
    }
  }
}

// A task whose node did not see the inputs (here: relative paths, and the task started in
// another directory) wrote "cannot open" rows for files that open where merge runs: merge
// joins the parts, and says which part and how to make its rows again.
TEST_F(ShardTest, MergeSaysWhichPartCouldNotOpenFilesThatOpenHere) {
  std::string list;
  std::istringstream lines(list_);
  for (std::string line; std::getline(lines, line);) {
    list += std::filesystem::path(line).filename().string() + "\n";
  }
  write_text(dir_.file("relative.txt"), list);
  const std::string here = dir_.path().string();
  const std::string elsewhere = make_dir("elsewhere");
  const auto in = [&](const std::string& cwd, const std::string& command,
                      const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/env", "-C", cwd, PALETTE_BINARY, command};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  for (const std::string format : {"csv", "jsonl"}) {
    SCOPED_TRACE(format);
    const std::string plain = dir_.file("plain." + format);
    const std::vector<std::string> common = {"@" + dir_.file("relative.txt"), "--format", format,
                                             "-q"};
    auto a = common;
    a.insert(a.end(), {"-o", plain});
    ASSERT_EQ(in(here, "extract", a).exit_code, 1);
    const std::string out = dir_.file("out." + format);
    std::vector<std::string> parts;
    for (const int i : {0, 1}) {
      a = common;
      a.insert(a.end(), {"-o", out, "--shard", std::to_string(i) + "/2", "--shard-block", "3"});
      EXPECT_EQ(in(i == 0 ? here : elsewhere, "extract", a).exit_code, i);  // 1: failed images
      parts.push_back(dir_.file("out.part-" + std::to_string(i) + "-of-2." + format));
    }
    const std::string merged = dir_.file("merged." + format);
    auto r = in(here, "merge", {parts[0], parts[1], "-o", merged});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // Shard 1 holds inputs 3-5 and 9-10: img3-5 and bad.jpg open here, missing.png nowhere.
    EXPECT_NE(r.err.find(parts[1] + " (shard 1 of 2): 4 of its rows say their file could not be "
                                    "opened, but it opens here (the first: img3.png (No such "
                                    "file or directory))"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("extract --shard 1/2 again"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(parts[0]), std::string::npos) << r.err;
    EXPECT_NE(read_text(merged), read_text(plain));

    // As it says: that part again, where the inputs are.
    std::filesystem::remove(parts[1]);
    std::filesystem::remove(parts[1] + ".palette-run.json");
    a = common;
    a.insert(a.end(), {"-o", out, "--shard", "1/2", "--shard-block", "3"});
    EXPECT_EQ(in(here, "extract", a).exit_code, 1);
    r = in(here, "merge", {parts[0], parts[1], "-o", merged});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err.find("could not be opened"), std::string::npos) << r.err;
    EXPECT_EQ(read_text(merged), read_text(plain));
  }
}

TEST_F(ShardTest, MergeRefusesWhatIsNotOneRun) {
  const std::string out = dir_.file("out.csv");
  const auto parts = shards(out, "csv", 3, 2);
  const std::string merged = dir_.file("merged.csv");
  const auto refused = [&](const std::vector<std::string>& given, const std::string& why) {
    auto a = given;
    a.insert(a.end(), {"-o", merged});
    const auto r = merge(a);
    EXPECT_EQ(r.exit_code, 2) << why << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(merged));
    EXPECT_FALSE(std::filesystem::exists(merged + ".merge-tmp")) << why;
  };
  refused({parts[0], parts[1]}, "shard 2 of 3 is missing");
  refused({parts[0], parts[1], parts[2], parts[1]}, "are both shard 1");
  // A part of another run: other options, or another shard count.
  const auto other_k = shards(dir_.file("k.csv"), "csv", 3, 2, {"-k", "3"});
  refused({parts[0], parts[1], other_k[2]}, "-k is 5 in one and 3 in the other");
  const auto other_n = shards(dir_.file("n.csv"), "csv", 2, 2);
  refused({parts[0], parts[1], other_n[1]}, "parts of different runs");
  // A part whose run did not finish, or whose rows were cut short.
  const std::string record = parts[1] + ".palette-run.json";
  const std::string text = read_text(record);
  write_text(record, text.substr(0, text.find(",\n  \"rows\"")) + "\n}\n");
  refused(parts, "did not finish");
  write_text(record, text);
  const std::string rows = read_text(parts[2]);
  write_text(parts[2], rows.substr(0, rows.rfind('\n', rows.size() - 2) + 1));
  refused(parts, "ends before its rows do");
  write_text(parts[2], rows + rows.substr(rows.find('\n') + 1));
  refused(parts, "more than its rows");
  write_text(parts[2], rows);
  // Not a part at all.
  const std::string plain = dir_.file("plain.csv");
  extract(args(plain, "csv"));
  refused({plain}, "not a part of a sharded run");
  refused({dir_.file("nothing.csv")}, "nothing.csv: no such file");
  write_text(dir_.file("no-record.csv"), "file,color_1\n");
  refused({dir_.file("no-record.csv")}, "no readable run record");
  // And the parts as they are merge.
  EXPECT_EQ(merge({parts[0], parts[1], parts[2], "-o", merged}).exit_code, 0);
}

// --combined: each shard writes its colours beside its part (no combined row in it); merge adds
// them up and clusters the palette of the whole run: the last row one run writes, byte for
// byte (CSV and JSON Lines, with --stats and --names), with that run's record; or, with merge
// --combined-output, the file of a run with --combined-output; with merge --swatches, its strip.
// Parts without images, missing or damaged colours.
TEST_F(ShardTest, MergedPartsGiveTheCombinedPaletteOneRunGives) {
  const std::vector<std::string> extra = {"--combined", "--stats", "--names", "-k", "4"};
  for (const std::string format : {"csv", "jsonl"}) {
    SCOPED_TRACE(format);
    auto a = args(dir_.file("plain." + format), format);
    a.insert(a.end(), extra.begin(), extra.end());
    ASSERT_EQ(extract(a).exit_code, 1);
    const std::string want = read_text(dir_.file("plain." + format));
    ASSERT_NE(want.find("*combined*"), std::string::npos);
    const std::string out = dir_.file("out." + format);
    // Part 5 holds only missing.png: no colours at all.
    const auto parts = shards(out, format, 6, 2, extra);
    for (const auto& p : parts) {
      EXPECT_EQ(read_text(p).find("*combined*"), std::string::npos) << p;
      EXPECT_TRUE(std::filesystem::exists(p + ".palette-colours")) << p;
    }
    const std::string merged = dir_.file("merged." + format);
    auto m = parts;
    m.insert(m.end(), {"-o", merged});
    const auto r = merge(m);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_text(merged), want);
    EXPECT_EQ(read_text(merged + ".palette-run.json"),
              read_text(dir_.file("plain." + format) + ".palette-run.json"));
  }
  // --combined-output, in extract and in merge.
  auto a = args(dir_.file("rows.csv"), "csv");
  a.insert(a.end(), {"--stats", "--names", "-k", "4", "--combined-output", dir_.file("c.csv")});
  ASSERT_EQ(extract(a).exit_code, 1);
  const auto parts = shards(dir_.file("out.csv"), "csv", 6, 2, extra);
  auto m = parts;
  m.insert(m.end(), {"-o", dir_.file("m-rows.csv"), "--combined-output", dir_.file("m-c.csv")});
  const auto r = merge(m);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(dir_.file("m-rows.csv")), read_text(dir_.file("rows.csv")));
  EXPECT_EQ(read_text(dir_.file("m-c.csv")), read_text(dir_.file("c.csv")));
  EXPECT_EQ(read_text(dir_.file("m-rows.csv.palette-run.json")),
            read_text(dir_.file("rows.csv.palette-run.json")));
  // --swatches: the tasks draw their images' strips, merge the combined one.
  a = args(dir_.file("strips.csv"), "csv");
  a.insert(a.end(), {"--combined", "--swatches", dir_.file("plain-strips")});
  ASSERT_EQ(extract(a).exit_code, 1);
  auto strip_parts = shards(dir_.file("strips.csv"), "csv", 3, 2,
                            {"--combined", "--swatches", dir_.file("strips")});
  strip_parts.insert(strip_parts.end(),
                     {"-o", dir_.file("m-strips.csv"), "--swatches", dir_.file("strips")});
  ASSERT_EQ(merge(strip_parts).exit_code, 0);
  const auto strips = read_directory(dir_.file("plain-strips"));
  EXPECT_EQ(strips.count("combined.png"), 1u);
  EXPECT_EQ(read_directory(dir_.file("strips")), strips);
  // What merge and extract refuse.
  const auto refused = [&](const RunResult& r, const std::string& why) {
    EXPECT_EQ(r.exit_code, 2) << why << ": " << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
  };
  const std::string bad = dir_.file("bad-merge.csv");
  const std::string colours = parts[1] + ".palette-colours";
  const std::string bytes = read_text(colours);
  write_text(colours, bytes.substr(0, bytes.size() - 1));
  auto all = parts;
  all.insert(all.end(), {"-o", bad});
  refused(merge(all), "a damaged or cut off palette colours file");
  std::filesystem::remove(colours);
  refused(merge(all), "its colours, which --combined needs, are not readable");
  EXPECT_FALSE(std::filesystem::exists(bad));
  EXPECT_FALSE(std::filesystem::exists(bad + ".merge-tmp"));
  write_text(colours, bytes);
  auto elsewhere = parts;
  elsewhere.insert(elsewhere.end(), {"-o", dir_.file("no-such-dir/merged.csv")});
  refused(merge(elsewhere), dir_.file("no-such-dir") + " does not exist");
  // A shell pattern that matched nothing reaches merge as it is.
  refused(merge({dir_.file("none.part-*-of-2.csv"), "-o", bad}),
          "none.part-*-of-2.csv: no such file (a pattern that matched no part?)");
  const auto plain_parts = shards(dir_.file("plain-parts.csv"), "csv", 2, 3);
  refused(merge({plain_parts[0], plain_parts[1], "-o", bad, "--combined-output", dir_.file("x")}),
          "not made with --combined");
  a = args(dir_.file("y.csv"), "csv");
  a.insert(a.end(), {"--shard", "0/2", "--combined-output", dir_.file("y-c.csv")});
  refused(extract(a), "--combined-output does not go with --shard");
}

TEST_F(ShardTest, SlurmArrayTaskPicksTheShard) {
  const std::string out = dir_.file("out.csv");
  const auto with_env = [&](const std::vector<std::string>& env,
                            const std::vector<std::string>& extra = {}) {
    return extract_in(env, out, extra);
  };
  // --array=1-5:2 (tasks 1, 3, 5): task 3 is the second of three.
  auto r = with_env({"SLURM_ARRAY_TASK_ID=3", "SLURM_ARRAY_TASK_MIN=1", "SLURM_ARRAY_TASK_STEP=2",
                     "SLURM_ARRAY_TASK_MAX=5", "SLURM_ARRAY_TASK_COUNT=3"});
  EXPECT_LE(r.exit_code, 1) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir_.file("out.part-1-of-3.csv")));
  EXPECT_FALSE(std::filesystem::exists(out));
  r = with_env({"SLURM_ARRAY_TASK_ID=0", "SLURM_ARRAY_TASK_COUNT=2"});
  EXPECT_TRUE(std::filesystem::exists(dir_.file("out.part-0-of-2.csv")));
  // --shard wins over the environment; 0/1 runs everything.
  r = with_env({"SLURM_ARRAY_TASK_ID=0", "SLURM_ARRAY_TASK_COUNT=2"}, {"--shard", "1/4"});
  EXPECT_TRUE(std::filesystem::exists(dir_.file("out.part-1-of-4.csv")));
  r = with_env({"SLURM_ARRAY_TASK_ID=0", "SLURM_ARRAY_TASK_COUNT=2"}, {"--shard", "0/1"});
  EXPECT_TRUE(std::filesystem::exists(out));
  r = with_env({"SLURM_ARRAY_TASK_ID=7", "SLURM_ARRAY_TASK_COUNT=2"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("give --shard I/N"), std::string::npos) << r.err;
  // --array=0,2,5: what Slurm sets (step 1, three tasks, 0 to 5). Task 2 is not shard 2 of 3.
  std::filesystem::remove(dir_.file("out.part-2-of-3.csv"));
  r = with_env({"SLURM_ARRAY_TASK_ID=2", "SLURM_ARRAY_TASK_MIN=0", "SLURM_ARRAY_TASK_MAX=5",
                "SLURM_ARRAY_TASK_STEP=1", "SLURM_ARRAY_TASK_COUNT=3"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("tasks are not a range"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("out.part-2-of-3.csv")));
}

// `srun -n 2 palette extract ...` without --mpi=pmix starts two processes that know nothing of
// each other (srun sets SLURM_STEP_NUM_TASKS in each, and no MPI variable): each would write the
// whole run into the same output, so each refuses, unless it has a shard of its own. A batch
// script's shell (no SLURM_STEP_NUM_TASKS) or a one-task step runs as usual.
TEST_F(ShardTest, SrunTasksWithoutMpiRefuse) {
  const std::string out = dir_.file("out.csv");
  const auto with_env = [&](const std::vector<std::string>& env,
                            const std::vector<std::string>& extra = {}) {
    std::vector<std::string> all = {"-u",       "OMPI_COMM_WORLD_SIZE", "-u", "PMI_SIZE", "-u",
                                    "PMIX_RANK"};
    all.insert(all.end(), env.begin(), env.end());
    return extract_in(all, out, extra);
  };
  auto r = with_env({"SLURM_STEP_NUM_TASKS=2", "SLURM_PROCID=1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("one of 2 processes started by mpirun or srun"), std::string::npos) << r.err;
  // Built with MPI: it names the missing plugin; without: that.
  EXPECT_TRUE(r.err.find("srun --mpi=pmix") != std::string::npos ||
              r.err.find("built without MPI") != std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  r = with_env({"SLURM_STEP_NUM_TASKS=2", "SLURM_PROCID=1"}, {"--shard", "1/2"});
  EXPECT_LE(r.exit_code, 1) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir_.file("out.part-1-of-2.csv")));
  r = with_env({"SLURM_STEP_NUM_TASKS=1", "SLURM_PROCID=0"});
  EXPECT_LE(r.exit_code, 1) << r.err;
  EXPECT_TRUE(std::filesystem::exists(out));
}

// Every shard draws the strips of its own images, named by their places in the whole input:
// the strips of all shards are those one run draws.
TEST_F(ShardTest, ShardsDrawTheStripsOneRunDraws) {
  const std::string plain_dir = dir_.file("plain-strips"), shard_dir = dir_.file("shard-strips");
  auto a = args(dir_.file("plain.csv"), "csv");
  a.insert(a.end(), {"--swatches", plain_dir});
  EXPECT_EQ(extract(a).exit_code, 1);
  shards(dir_.file("out.csv"), "csv", 3, 2, {"--swatches", shard_dir});
  const auto plain = read_directory(plain_dir);
  EXPECT_EQ(plain.size(), 9u);  // the corrupt and the missing input have none
  EXPECT_EQ(plain.count("000011-missing.png"), 0u);
  EXPECT_EQ(read_directory(shard_dir), plain);
}

// With blocks of whole sheets (a multiple of 100 inputs), every shard draws the contact sheets
// of its own blocks, named by their places in the whole input: the sheets of all shards are
// those one run draws. Other blocks are refused.
TEST_F(ShardTest, ShardsDrawTheSheetsOneRunDraws) {
  std::string list;
  for (int i = 0; i < 23; ++i) list += list_;  // 253 inputs: sheets of 100, 100 and 53
  write_text(dir_.file("list.txt"), list);
  for (const std::string d : {"plain", "shards"}) std::filesystem::create_directory(dir_.file(d));
  auto a = args(dir_.file("plain.csv"), "csv");
  a.insert(a.end(), {"--contact-sheet", dir_.file("plain/sheet.png")});
  EXPECT_EQ(extract(a).exit_code, 1);
  const auto plain = read_directory(dir_.file("plain"));
  EXPECT_EQ(plain.size(), 3u);
  shards(dir_.file("out.csv"), "csv", 2, 100, {"--contact-sheet", dir_.file("shards/sheet.png")});
  EXPECT_EQ(read_directory(dir_.file("shards")), plain);
  a = args(dir_.file("out.csv"), "csv");
  a.insert(a.end(), {"--contact-sheet", dir_.file("shards/sheet.png"), "--shard", "0/2",
                     "--shard-block", "150"});
  const auto r = extract(a);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs a --shard-block that is a multiple of 100"), std::string::npos)
      << r.err;
}

TEST_F(ShardTest, BadShardsAreUsageErrors) {
  for (const std::string bad : {"3/3", "1", "a/b", "0/0", "-1/2", "1/2/3", "0/1000001"}) {
    auto a = args(dir_.file("out.csv"), "csv");
    a.insert(a.end(), {"--shard", bad});
    const auto r = extract(a);
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  }
  const auto r = extract({"@" + dir_.file("list.txt"), "--shard", "0/2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--shard needs an output file"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace palette::test
