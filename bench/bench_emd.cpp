// Micro benchmarks of the Earth Mover's Distance: one exact solve per pair of signatures, and
// the lower bound that lets `palette find --like` skip most solves. Pairs cycle through pools of
// 1024 random signatures (so that no single case sits warm in the branch predictor). Not a
// test: it measures and prints.
//
//   build/bench/bench_emd [--benchmark_filter=...]

#include <benchmark/benchmark.h>

#include <array>
#include <random>
#include <vector>

#include "palette/emd.hpp"

namespace palette {
namespace {

struct Sig {
  std::vector<std::array<double, 3>> lab;
  std::vector<double> weight;
  LabSignature view() const { return {lab, weight}; }
};

// Palette-like signatures: k colours in the Lab gamut's box, shares summing to 1 (random,
// not equal, as k-means gives).
std::vector<Sig> pool(int k, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> l(0.0, 100.0), ab(-80.0, 80.0), share(0.05, 1.0);
  std::vector<Sig> out(1024);
  for (Sig& s : out) {
    double total = 0.0;
    for (int i = 0; i < k; ++i) {
      s.lab.push_back({l(rng), ab(rng), ab(rng)});
      s.weight.push_back(share(rng));
      total += s.weight.back();
    }
    for (double& w : s.weight) w /= total;
  }
  return out;
}

// EmdSolver on pairs k_a x k_b (args), reusing one solver as `find --like` does.
void BM_Emd(benchmark::State& state) {
  const auto as = pool(static_cast<int>(state.range(0)), 1);
  const auto bs = pool(static_cast<int>(state.range(1)), 2);
  EmdSolver solver;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t a = i % as.size(), b = (i * 7 + i / as.size()) % bs.size();
    benchmark::DoNotOptimize(solver(as[a].view(), bs[b].view()));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Emd)->Args({5, 5})->Args({10, 10})->Args({3, 5});

// Partial matches: a query of total 0.6 (only some of the colours asked for) against full
// signatures: the solver adds a dummy row for the excess.
void BM_EmdPartial(benchmark::State& state) {
  auto as = pool(static_cast<int>(state.range(0)), 3);
  for (auto& s : as) {
    for (double& w : s.weight) w *= 0.6;
  }
  const auto bs = pool(static_cast<int>(state.range(1)), 4);
  EmdSolver solver;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t a = i % as.size(), b = (i * 7 + i / as.size()) % bs.size();
    benchmark::DoNotOptimize(solver(as[a].view(), bs[b].view()));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EmdPartial)->Args({3, 5})->Args({5, 5});

// The lower bound on the same pairs.
void BM_EmdLowerBound(benchmark::State& state) {
  const auto as = pool(static_cast<int>(state.range(0)), 1);
  const auto bs = pool(static_cast<int>(state.range(1)), 2);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t a = i % as.size(), b = (i * 7 + i / as.size()) % bs.size();
    benchmark::DoNotOptimize(emd_lower_bound(as[a].view(), bs[b].view()));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EmdLowerBound)->Args({5, 5})->Args({10, 10})->Args({3, 5});

}  // namespace
}  // namespace palette

BENCHMARK_MAIN();
