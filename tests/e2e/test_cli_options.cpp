// End-to-end tests of `palette extract`: usage errors (exit 2, one line on stderr, nothing on
// stdout) and the options it accepts. Helpers in cli_helpers.hpp.

#include <gtest/gtest.h>

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "cli_helpers.hpp"

namespace palette::test {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Usage errors: exit 2, one line on stderr, nothing on stdout.

struct UsageCase {
  std::string name;
  std::vector<std::string> args;  // after `palette extract`; "IMG" is replaced by a valid image
};

void PrintTo(const UsageCase& c, std::ostream* os) { *os << c.name; }

class UsageErrorTest : public ExtractTest, public ::testing::WithParamInterface<UsageCase> {};

TEST_P(UsageErrorTest, ExitsTwoWithOneLineOnStderrAndNothingOnStdout) {
  const std::string img = solid_png("ok.png", kRed);
  std::vector<std::string> args = GetParam().args;
  for (auto& a : args) {
    if (a == "IMG") a = img;
  }
  const auto r = extract(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_EQ(r.err.back(), '\n');
}

INSTANTIATE_TEST_SUITE_P(
    Cli, UsageErrorTest,
    ::testing::Values(UsageCase{"NoInputs", {}}, UsageCase{"NoInputsButOptions", {"-k", "3"}},
                      UsageCase{"UnknownOption", {"IMG", "--no-such-option"}},
                      UsageCase{"ColorsZero", {"IMG", "-k", "0"}},
                      UsageCase{"Colors65", {"IMG", "-k", "65"}},
                      UsageCase{"ColorsLong65", {"IMG", "--colors", "65"}},
                      UsageCase{"ColorsNotANumber", {"IMG", "-k", "many"}},
                      UsageCase{"ColorsNegative", {"IMG", "-k", "-3"}},
                      UsageCase{"SpaceUnknown", {"IMG", "--space", "xyz"}},
                      UsageCase{"SizeNotANumber", {"IMG", "--size", "big"}},
                      UsageCase{"ThreadsNotANumber", {"IMG", "--threads", "two"}},
                      UsageCase{"FormatUnknown", {"IMG", "--format", "xml"}},
                      UsageCase{"ProgressUnknown", {"IMG", "--progress", "sometimes"}},
                      UsageCase{"BackendUnknown", {"IMG", "--backend", "opencl"}},
                      UsageCase{"AlphaThresholdNotANumber", {"IMG", "--alpha-threshold", "x"}},
                      UsageCase{"MaxPixelsNotANumber", {"IMG", "--max-pixels", "lots"}},
                      UsageCase{"SeedNegative", {"IMG", "--seed", "-1"}},
                      UsageCase{"SeedOver64Bits", {"IMG", "--seed", "18446744073709551616"}},
                      UsageCase{"SeedNotWhole", {"IMG", "--seed", "1e3"}},
                      UsageCase{"OptionMissingValue", {"IMG", "-k"}}),
    [](const ::testing::TestParamInfo<UsageCase>& info) { return info.param.name; });

// A word that is not a command is named, with the commands there are; no command at all too.
TEST(Cli, UnknownCommandIsNamed) {
  const auto r = run({PALETTE_BINARY, "extrct", "photos"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("unknown command 'extrct'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("extract, info, bench, serve"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("decode-worker"), std::string::npos) << r.err;  // hidden
  const auto none = run({PALETTE_BINARY});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(count_lines(none.err), 1u) << none.err;
}

TEST_F(ExtractTest, DirectoryWithoutImagesIsUsageError) {
  const std::string empty = make_dir("nothing-here");
  write_text(dir_.file("nothing-here/readme.txt"), "not an image\n");
  make_dir("nothing-here/sub");
  const auto r = extract({empty});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

TEST_F(ExtractTest, EmptyListFileIsUsageError) {
  const std::string list = dir_.file("empty.txt");
  write_text(list, "\n\r\n\n");
  const auto r = extract({"@" + list});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

TEST_F(ExtractTest, UnwritableOutputPathIsUsageError) {
  const std::string img = solid_png("ok.png", kRed);
  const auto r = extract({img, "-o", dir_.file("no-such-dir/out.csv")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  // Said of the output asked for (not of its run record beside it).
  EXPECT_NE(r.err.find("cannot write " + dir_.file("no-such-dir/out.csv") + ": " +
                       dir_.file("no-such-dir") + " does not exist"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir_.file("no-such-dir")));
}

TEST_F(ExtractTest, CudaBackendInBuildWithoutCudaIsUsageError) {
#ifdef PALETTE_WITH_CUDA
  GTEST_SKIP() << "this build has the CUDA backend";
#endif
  const std::string img = solid_png("ok.png", kRed);
  const auto r = extract({img, "--backend", "cuda"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

// --devices: lists that cannot be (on any machine), and what it cannot go with. (Several GPUs
// at work: Parity.TwoDevicesShareTheBatches, and the host tests of with_devices().)
TEST_F(ExtractTest, BadDeviceListsAreUsageErrors) {
  const std::string img = solid_png("ok.png", kRed);
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{{"--devices", "x"},
                                             {"--devices", "0,"},
                                             {"--devices", "-1"},
                                             {"--devices", "0,0"},
                                             {"--devices", "4096"},
                                             {"--devices", "0", "--backend", "cpu"},
                                             {"--devices", "0", "--device", "1"}}) {
    std::vector<std::string> args = {img};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = extract(args);
    EXPECT_EQ(r.exit_code, 2) << extra[1] << ": " << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  }
}

TEST_F(ExtractTest, CpuAndAutoBackendsWork) {
  const std::string img = png("two.png", {kRed, kBlue}, {10, 10});
  const auto cpu = extract({img, "--backend", "cpu", "-k", "2"});
  const auto automatic = extract({img, "--backend", "auto", "-k", "2"});
  EXPECT_EQ(cpu.exit_code, 0) << cpu.err;
  EXPECT_EQ(automatic.exit_code, 0) << automatic.err;
  EXPECT_EQ(cpu.out, automatic.out);
}

TEST_F(ExtractTest, BoundaryColourCountsAreAccepted) {
  const std::string img = png("two.png", {kRed, kBlue}, {10, 10});
  for (const int k : {1, 64}) {
    SCOPED_TRACE("k=" + std::to_string(k));
    const auto r = extract_rows({img, "-k", std::to_string(k)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.rows.size(), 1u);
    expect_well_formed(r.rows[0], k);
  }
}

TEST_F(ExtractTest, TuningOptionsAreAccepted) {
  const std::string img = png("three.png", {kRed, kGreen, kBlue}, {10, 6, 4});
  const auto r =
      extract_rows({img,        "-k",           "3",    "--seed",     "42",    "--max-iter",
                    "1",        "--tol",        "0",    "--size",     "64",    "--threads",
                    "1",        "--batch",      "1",    "--space",    "oklab", "--alpha-threshold",
                    "0",        "--max-pixels", "1000", "--progress", "never", "--hidden",
                    "--format", "csv"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.rows.size(), 1u);
  expect_well_formed(r.rows[0], 3);
}

TEST_F(ExtractTest, LargestSeedIsAccepted) {
  const auto r = extract({solid_png("a.png", kRed), "--seed", "18446744073709551615"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace palette::test
