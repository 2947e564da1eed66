// End-to-end tests of `palette bench`: the options it shares with `palette extract` (defined once,
// in src/cli/options.cpp) have the same help, the same validation and reach the run. Helpers in
// cli_helpers.hpp.

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "cli_helpers.hpp"

namespace palette::test {
namespace {

// The help of option `name` in `help` (CLI11's layout: "  NAME..." then, when it does not fit,
// the description on lines indented further): its first line and its description lines.
std::string option_help(const std::string& help, const std::string& name) {
  std::istringstream lines(help);
  std::string out;
  bool inside = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  -", 0) == 0) {
      inside = line.rfind("  " + name + " ", 0) == 0;
    } else if (line.rfind("   ", 0) != 0) {
      inside = false;
    }
    if (inside) out += line + "\n";
  }
  return out;
}

TEST(BenchTest, SharedOptionsHaveExtractsHelp) {
  const auto bench = run({PALETTE_BINARY, "bench", "--help"});
  const auto extract = run({PALETTE_BINARY, "extract", "--help"});
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  ASSERT_EQ(extract.exit_code, 0) << extract.err;
  for (const std::string name : {"-k,--colors", "--size", "--seed", "--max-iter", "--tol",
                                 "--space", "--threads", "--device", "--batch"}) {
    SCOPED_TRACE(name);
    const std::string help = option_help(bench.out, name);
    EXPECT_NE(help, "");
    EXPECT_EQ(help, option_help(extract.out, name));
  }
}

TEST(BenchTest, BadOptionValueExitsTwoWithOneLineOnStderrAndNothingOnStdout) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"-k", "0"},
                                                                {"--colors", "65"},
                                                                {"--size", "big"},
                                                                {"--seed", "-1"},
                                                                {"--max-iter", "0"},
                                                                {"--tol", "-0.5"},
                                                                {"--space", "xyz"},
                                                                {"--threads", "two"},
                                                                {"--device", "-1"},
                                                                {"--batch", "0"},
                                                                {"--devices", "0,x"},
                                                                {"--images", "0"},
                                                                {"--no-such-option"}}) {
    SCOPED_TRACE(args[0]);
    std::vector<std::string> argv = {PALETTE_BINARY, "bench"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run(argv);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.out, "");
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.back(), '\n');
  }
}

TEST(BenchTest, SharedOptionsReachTheRun) {
  const auto r =
      run({PALETTE_BINARY, "bench", "--images", "3", "--width", "32", "--height", "16", "-k", "2",
           "--size", "8", "--space", "oklab", "--threads", "1", "--batch", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')),
            "palette bench: 3 generated 32x16 JPEGs, --size 8, k=2, --space oklab, 1 threads");
  EXPECT_NE(r.out.find("\ndecode only "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\ncpu "), std::string::npos) << r.out;
  // The k-means options, named on the first line where not the defaults.
  const auto k = run({PALETTE_BINARY, "bench", "--images", "2", "--width", "32", "--height", "16",
                      "--threads", "1", "--seed", "7", "--max-iter", "3", "--tol", "0.25"});
  ASSERT_EQ(k.exit_code, 0) << k.err;
  EXPECT_EQ(k.out.substr(0, k.out.find('\n')),
            "palette bench: 2 generated 32x16 JPEGs, --size 256, k=5, --space lab, 1 threads, "
            "--seed 7, --max-iter 3, --tol 0.25");
}

}  // namespace
}  // namespace palette::test
