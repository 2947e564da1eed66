#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "palette/emd.hpp"

namespace palette {
namespace {

using Lab = std::array<double, 3>;

// A signature that owns its colours and weights.
struct Sig {
  std::vector<Lab> lab;
  std::vector<double> weight;
  LabSignature view() const { return {lab, weight}; }
  double total() const { return std::accumulate(weight.begin(), weight.end(), 0.0); }
};

double emd(const Sig& a, const Sig& b) {
  EmdSolver solver;
  return solver(a.view(), b.view());
}

// |x - y| within tol, absolutely or relatively.
bool close(double x, double y, double tol = 1e-9) {
  return std::abs(x - y) <= tol * std::max(1.0, std::abs(y));
}

// ---- The reference: a dense tableau simplex (Bland's rule) on the transportation LP, written
// independently of the solver under test. Variables x_ij >= 0; constraints Σ_j x_ij <= a_i,
// Σ_i x_ij <= b_j; maximise Σ (M - c_ij) x_ij with M above every cost. Any flow short of
// F = min(Σa, Σb) leaves a row and a column with room, and one more unit through them gains
// M - c_ij > 0, so the optimum ships F, and among such flows it is the cheapest: exactly the
// EMD's flow. The slack basis is feasible (the right-hand sides are >= 0), so no phase 1.
double reference_emd(const Sig& a, const Sig& b) {
  const int m = static_cast<int>(a.lab.size()), n = static_cast<int>(b.lab.size());
  const double ta = a.total(), tb = b.total();
  if (!(ta > 0) || !(tb > 0)) return 0.0;
  std::vector<double> cost(m * n);
  double big = 1.0;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      cost[i * n + j] = delta_e76(a.lab[i], b.lab[j]);
      big = std::max(big, 2.0 * cost[i * n + j]);
    }
  }
  // Tableau: rows 0..m+n-1 constraints, columns 0..mn-1 x, mn.. slacks, last: right-hand side.
  const int vars = m * n + m + n, rows = m + n, width = vars + 1;
  std::vector<double> t(rows * width, 0.0);
  std::vector<int> basis(rows);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      t[i * width + i * n + j] = 1.0;
      t[(m + j) * width + i * n + j] = 1.0;
    }
  }
  for (int r = 0; r < rows; ++r) {
    t[r * width + m * n + r] = 1.0;
    t[r * width + vars] = r < m ? a.weight[r] : b.weight[r - m];
    basis[r] = m * n + r;
  }
  // Reduced profits: profit_k - Σ_r profit_basis(r) t_rk (slack profits are 0).
  std::vector<double> profit(vars, 0.0);
  for (int c = 0; c < m * n; ++c) profit[c] = big - cost[c];
  std::vector<double> reduced(vars);
  for (int iter = 0;; ++iter) {
    if (iter > 100000) {
      ADD_FAILURE() << "reference simplex did not end";
      return NAN;
    }
    for (int k = 0; k < vars; ++k) {
      double r = profit[k];
      for (int row = 0; row < rows; ++row) r -= profit[basis[row]] * t[row * width + k];
      reduced[k] = r;
    }
    int enter = -1;
    for (int k = 0; k < vars && enter < 0; ++k) {
      if (reduced[k] > 1e-10) enter = k;
    }
    if (enter < 0) break;
    int leave = -1;
    double best = 0.0;
    for (int row = 0; row < rows; ++row) {
      const double p = t[row * width + enter];
      if (p <= 1e-12) continue;
      const double ratio = t[row * width + vars] / p;
      if (leave < 0 || ratio < best - 1e-15 ||
          (ratio <= best + 1e-15 && basis[row] < basis[leave])) {
        leave = row;
        best = ratio;
      }
    }
    if (leave < 0) {
      ADD_FAILURE() << "reference simplex unbounded";
      return NAN;
    }
    const double p = t[leave * width + enter];
    for (int k = 0; k < width; ++k) t[leave * width + k] /= p;
    for (int row = 0; row < rows; ++row) {
      if (row == leave) continue;
      const double f = t[row * width + enter];
      if (f == 0.0) continue;
      for (int k = 0; k < width; ++k) t[row * width + k] -= f * t[leave * width + k];
    }
    basis[leave] = enter;
  }
  double total = 0.0;
  for (int row = 0; row < rows; ++row) {
    if (basis[row] < m * n) total += std::max(0.0, t[row * width + vars]) * cost[basis[row]];
  }
  return total / std::min(ta, tb);
}

// ---- Random signatures.
enum class Kind {
  kNormalised,  // weights summing to 1 (up to rounding)
  kAnyTotal,    // weights summing to anything in (0.2, 1.5)
  kCoarse,      // weights from a few values, colours from a small palette: ties, degeneracy
};

Lab random_lab(std::mt19937& rng) {
  std::uniform_real_distribution<double> l(0.0, 100.0), ab(-100.0, 100.0);
  return {l(rng), ab(rng), ab(rng)};
}

Sig random_sig(std::mt19937& rng, int size, Kind kind) {
  static const std::array<Lab, 4> palette_colours = {Lab{50, 0, 0}, Lab{60, 20, -10},
                                                     Lab{20, -40, 30}, Lab{90, 5, 80}};
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Sig s;
  for (int i = 0; i < size; ++i) {
    if (kind == Kind::kCoarse) {
      s.lab.push_back(palette_colours[rng() % palette_colours.size()]);
      s.weight.push_back(std::array{0.1, 0.2, 0.25, 0.5}[rng() % 4]);
    } else {
      s.lab.push_back(random_lab(rng));
      s.weight.push_back(0.01 + u(rng));
    }
  }
  double scale = 1.0 / s.total();
  if (kind == Kind::kAnyTotal) scale *= 0.2 + 1.3 * u(rng);
  if (kind != Kind::kCoarse || rng() % 2 == 0) {
    for (double& w : s.weight) w *= scale;
  }
  return s;
}

int random_size(std::mt19937& rng, int max = 8) { return 1 + static_cast<int>(rng() % max); }

TEST(Emd, DeltaE76) {
  EXPECT_EQ(delta_e76({50, 10, -20}, {50, 10, -20}), 0.0);
  EXPECT_DOUBLE_EQ(delta_e76({0, 0, 0}, {3, 4, 0}), 5.0);
  EXPECT_DOUBLE_EQ(delta_e76({10, 3, 0}, {10, 0, -4}), 5.0);
  EXPECT_DOUBLE_EQ(delta_e76({1, 2, 3}, {4, 6, 15}), 13.0);
  EXPECT_EQ(delta_e76({1, 2, 3}, {-7, 9, 0.5}), delta_e76({-7, 9, 0.5}, {1, 2, 3}));
}

TEST(Emd, KnownValues) {
  const Sig one{{{50, 10, 10}}, {1.0}};
  const Sig other{{{50, 13, 14}}, {1.0}};
  EXPECT_EQ(emd(one, one), 0.0);
  EXPECT_DOUBLE_EQ(emd(one, other), 5.0);

  // Two colours against one: each moves all its weight.
  const Sig two{{{0, 0, 0}, {0, 6, 8}}, {0.25, 0.75}};
  const Sig origin{{{0, 0, 0}}, {1.0}};
  EXPECT_NEAR(emd(two, origin), 0.75 * 10.0, 1e-12);
  EXPECT_NEAR(emd(origin, two), 0.75 * 10.0, 1e-12);

  // 2x2 by hand: 0.1 of the weight at L=0 must move to L=10.
  const Sig p{{{0, 0, 0}, {10, 0, 0}}, {0.6, 0.4}};
  const Sig q{{{0, 0, 0}, {10, 0, 0}}, {0.5, 0.5}};
  EXPECT_NEAR(emd(p, q), 0.1 * 10.0, 1e-12);

  // 2x2 on a line: the parallel matching (0->1, 10->11) beats the crossed one.
  const Sig x{{{0, 0, 0}, {10, 0, 0}}, {0.5, 0.5}};
  const Sig y{{{11, 0, 0}, {1, 0, 0}}, {0.5, 0.5}};
  EXPECT_NEAR(emd(x, y), 1.0, 1e-12);

  // 3x3 with a transshipment-like optimum: a = {0:1/3, 10:1/3, 20:1/3}, b shifted by 5 on L:
  // every unit moves 5.
  const Sig r{{{0, 0, 0}, {10, 0, 0}, {20, 0, 0}}, {1.0 / 3, 1.0 / 3, 1.0 / 3}};
  const Sig s{{{25, 0, 0}, {5, 0, 0}, {15, 0, 0}}, {1.0 / 3, 1.0 / 3, 1.0 / 3}};
  EXPECT_NEAR(emd(r, s), 5.0, 1e-12);
}

TEST(Emd, PartialMatch) {
  // The lighter side moves all its weight, the heavier side's rest costs nothing.
  const Sig light{{{0, 0, 0}}, {0.5}};
  const Sig heavy{{{0, 0, 0}, {20, 0, 0}}, {0.3, 0.7}};
  EXPECT_NEAR(emd(light, heavy), (0.3 * 0 + 0.2 * 20) / 0.5, 1e-12);
  EXPECT_NEAR(emd(heavy, light), (0.3 * 0 + 0.2 * 20) / 0.5, 1e-12);
  // Contained in the other: 0.
  const Sig part{{{20, 0, 0}}, {0.7}};
  EXPECT_EQ(emd(part, heavy), 0.0);
  // Totals equal but for a tiny difference behave as equal.
  const Sig a{{{0, 0, 0}, {10, 0, 0}}, {0.6, 0.4}};
  const Sig b{{{0, 0, 0}, {10, 0, 0}}, {0.5, 0.4999999}};
  EXPECT_NEAR(emd(a, b), 1.0, 1e-5);
  EXPECT_NEAR(emd(b, a), 1.0, 1e-5);
}

TEST(Emd, ZeroTotalsGiveZero) {
  const Sig empty;
  const Sig zeros{{{10, 0, 0}, {20, 0, 0}}, {0.0, 0.0}};
  const Sig one{{{50, 10, 10}}, {1.0}};
  EXPECT_EQ(emd(empty, empty), 0.0);
  EXPECT_EQ(emd(empty, one), 0.0);
  EXPECT_EQ(emd(one, empty), 0.0);
  EXPECT_EQ(emd(zeros, one), 0.0);
  EXPECT_EQ(emd(one, zeros), 0.0);
  EXPECT_EQ(emd_lower_bound(empty.view(), one.view()), 0.0);
  EXPECT_EQ(emd_lower_bound(one.view(), zeros.view()), 0.0);
}

TEST(Emd, MatchesReferenceSimplex) {
  std::mt19937 rng(12345);
  EmdSolver solver;
  int cases = 0;
  for (const Kind kind : {Kind::kNormalised, Kind::kAnyTotal, Kind::kCoarse}) {
    for (int t = 0; t < 1500; ++t) {
      const Sig a = random_sig(rng, random_size(rng), kind);
      const Sig b = random_sig(rng, random_size(rng), kind);
      const double want = reference_emd(a, b);
      const double got = solver(a.view(), b.view());
      ASSERT_TRUE(close(got, want))
          << "case " << t << " kind " << static_cast<int>(kind) << ": " << a.lab.size() << "x"
          << b.lab.size() << " got " << got << " want " << want;
      ++cases;
    }
  }
  EXPECT_EQ(cases, 4500);
}

TEST(Emd, IdenticalSignaturesGiveZero) {
  // The most degenerate case: the optimum is the diagonal, every other basic cell carries 0.
  std::mt19937 rng(7);
  EmdSolver solver;
  for (int t = 0; t < 300; ++t) {
    const Sig a = random_sig(rng, random_size(rng, 10), t % 2 ? Kind::kCoarse : Kind::kNormalised);
    EXPECT_NEAR(solver(a.view(), a.view()), 0.0, 1e-9);
    // Equal weights everywhere: ties in every flow.
    Sig e = a;
    std::fill(e.weight.begin(), e.weight.end(), 1.0 / static_cast<double>(e.weight.size()));
    EXPECT_NEAR(solver(e.view(), e.view()), 0.0, 1e-9);
  }
}

TEST(Emd, Symmetric) {
  std::mt19937 rng(99);
  EmdSolver solver;
  for (const Kind kind : {Kind::kNormalised, Kind::kAnyTotal, Kind::kCoarse}) {
    for (int t = 0; t < 1000; ++t) {
      const Sig a = random_sig(rng, random_size(rng, 10), kind);
      const Sig b = random_sig(rng, random_size(rng, 10), kind);
      const double ab = solver(a.view(), b.view()), ba = solver(b.view(), a.view());
      ASSERT_TRUE(close(ab, ba)) << ab << " vs " << ba;
    }
  }
}

TEST(Emd, TriangleInequality) {
  std::mt19937 rng(2024);
  EmdSolver solver;
  for (int t = 0; t < 2000; ++t) {
    const Kind kind = t % 3 == 0 ? Kind::kCoarse : Kind::kNormalised;
    Sig s[3];
    for (Sig& x : s) {
      x = random_sig(rng, random_size(rng, 10), kind);
      const double total = x.total();
      for (double& w : x.weight) w /= total;  // equal totals
    }
    const double ac = solver(s[0].view(), s[2].view());
    const double ab = solver(s[0].view(), s[1].view());
    const double bc = solver(s[1].view(), s[2].view());
    ASSERT_LE(ac, ab + bc + 1e-9) << t;
  }
}

TEST(Emd, ScaleInvariant) {
  std::mt19937 rng(5);
  EmdSolver solver;
  for (int t = 0; t < 500; ++t) {
    const Sig a = random_sig(rng, random_size(rng), Kind::kAnyTotal);
    const Sig b = random_sig(rng, random_size(rng), Kind::kAnyTotal);
    Sig a2 = a, b2 = b;
    for (double& w : a2.weight) w *= 3.0;
    for (double& w : b2.weight) w *= 3.0;
    ASSERT_TRUE(close(solver(a2.view(), b2.view()), solver(a.view(), b.view())));
  }
}

TEST(Emd, ZeroWeightColoursIgnored) {
  std::mt19937 rng(31);
  EmdSolver solver;
  for (int t = 0; t < 1000; ++t) {
    const Kind kind = static_cast<Kind>(t % 3);
    const Sig a = random_sig(rng, random_size(rng), kind);
    const Sig b = random_sig(rng, random_size(rng), kind);
    const double want = solver(a.view(), b.view());
    Sig a2 = a, b2 = b;
    for (Sig* s : {&a2, &b2}) {
      for (int k = static_cast<int>(rng() % 3); k > 0; --k) {
        const auto at = static_cast<std::ptrdiff_t>(rng() % (s->lab.size() + 1));
        s->lab.insert(s->lab.begin() + at, random_lab(rng));
        s->weight.insert(s->weight.begin() + at, 0.0);
      }
    }
    ASSERT_TRUE(close(solver(a2.view(), b2.view()), want)) << t;
    ASSERT_LE(emd_lower_bound(a2.view(), b2.view()), want + 1e-12);
  }
}

TEST(Emd, PermutationInvariant) {
  std::mt19937 rng(77);
  EmdSolver solver;
  for (int t = 0; t < 1000; ++t) {
    const Kind kind = static_cast<Kind>(t % 3);
    const Sig a = random_sig(rng, random_size(rng, 10), kind);
    const Sig b = random_sig(rng, random_size(rng, 10), kind);
    const double want = solver(a.view(), b.view());
    Sig a2 = a, b2 = b;
    for (Sig* s : {&a2, &b2}) {
      std::vector<std::size_t> perm(s->lab.size());
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      Sig p;
      for (std::size_t i : perm) {
        p.lab.push_back(s->lab[i]);
        p.weight.push_back(s->weight[i]);
      }
      *s = p;
    }
    ASSERT_TRUE(close(solver(a2.view(), b2.view()), want)) << t;
  }
}

TEST(Emd, LowerBoundNeverAboveEmd) {
  std::mt19937 rng(4242);
  EmdSolver solver;
  double sum_ratio = 0.0;
  int counted = 0;
  for (const Kind kind : {Kind::kNormalised, Kind::kAnyTotal, Kind::kCoarse}) {
    for (int t = 0; t < 3000; ++t) {
      const Sig a = random_sig(rng, random_size(rng, 10), kind);
      Sig b = random_sig(rng, random_size(rng, 10), kind);
      if (t % 4 == 1) {
        // Nearly equal totals, either way round: the bounds' slack terms matter here.
        const double target = a.total() * (t % 8 == 1 ? 1.0 + 1e-9 : 1.0 - 1e-7);
        const double total = b.total();
        for (double& w : b.weight) w *= target / total;
      }
      if (t % 4 == 2) b = a;  // identical: the EMD is 0
      const double e = solver(a.view(), b.view());
      const double lb = emd_lower_bound(a.view(), b.view());
      ASSERT_GE(lb, 0.0);
      ASSERT_LE(lb, e) << "case " << t << " kind " << static_cast<int>(kind) << " totals "
                       << a.total() << " " << b.total();
      ASSERT_TRUE(close(lb, emd_lower_bound(b.view(), a.view()), 1e-12)) << "symmetric";
      if (e > 0) {
        sum_ratio += lb / e;
        ++counted;
      }
    }
  }
  // Not a requirement, only that the bound is of some use: on average well above 0.
  EXPECT_GT(sum_ratio / counted, 0.3);
}

TEST(Emd, LowerBoundKnownValues) {
  // Equal totals: the centroids are 10 apart; nearest colours give the same here.
  const Sig a{{{0, 0, 0}, {20, 0, 0}}, {0.5, 0.5}};
  const Sig b{{{30, 0, 0}}, {1.0}};
  EXPECT_NEAR(emd(a, b), 20.0, 1e-12);
  EXPECT_NEAR(emd_lower_bound(a.view(), b.view()), 20.0, 1e-8);
  // Same centroid, different spread: the centroid bound is 0, the nearest-colour one is not.
  const Sig c{{{10, 0, 0}}, {1.0}};
  EXPECT_NEAR(emd(a, c), 10.0, 1e-12);
  EXPECT_NEAR(emd_lower_bound(a.view(), c.view()), 10.0, 1e-8);
  // Unequal totals: only the lighter side's nearest colours count.
  const Sig light{{{0, 0, 0}}, {0.2}};
  const Sig heavy{{{5, 0, 0}, {100, 0, 0}}, {0.5, 0.5}};
  EXPECT_NEAR(emd(light, heavy), 5.0, 1e-12);
  EXPECT_LE(emd_lower_bound(light.view(), heavy.view()), 5.0);
  EXPECT_NEAR(emd_lower_bound(light.view(), heavy.view()), 5.0, 1e-8);
}

TEST(Emd, SolverReuseMatchesFreshSolver) {
  std::mt19937 rng(8);
  EmdSolver reused;
  for (int t = 0; t < 1000; ++t) {
    // Sizes going up and down, so the buffers hold leftovers of larger problems.
    const Kind kind = static_cast<Kind>(t % 3);
    const Sig a = random_sig(rng, random_size(rng, 12), kind);
    const Sig b = random_sig(rng, random_size(rng, 12), kind);
    EmdSolver fresh;
    ASSERT_EQ(reused(a.view(), b.view()), fresh(a.view(), b.view())) << t;
  }
}

TEST(Emd, LargerSignatures) {
  // Past the sizes palettes give: still exact against the reference.
  std::mt19937 rng(11);
  EmdSolver solver;
  for (int t = 0; t < 20; ++t) {
    const Kind kind = static_cast<Kind>(t % 3);
    const Sig a = random_sig(rng, 10 + static_cast<int>(rng() % 15), kind);
    const Sig b = random_sig(rng, 10 + static_cast<int>(rng() % 15), kind);
    const double want = reference_emd(a, b);
    ASSERT_TRUE(close(solver(a.view(), b.view()), want)) << t;
    ASSERT_LE(emd_lower_bound(a.view(), b.view()), want + 1e-9);
  }
}

TEST(Emd, LargeDegenerateSignatures) {
  // Equal weights on both sides (every partial sum of one side meets one of the other), and
  // some colours shared: long runs of pivots that move nothing, where the solver turns to
  // Bland's rule. Still exact.
  std::mt19937 rng(13);
  EmdSolver solver;
  for (int t = 0; t < 16; ++t) {
    const int size = 16 + static_cast<int>(rng() % 5);
    Sig s[2];
    for (Sig& x : s) {
      for (int i = 0; i < size; ++i) {
        x.lab.push_back(t % 2 ? random_lab(rng) : Lab{10.0 * static_cast<double>(rng() % 8), 0, 0});
        x.weight.push_back(1.0 / size);
      }
    }
    if (t % 4 == 3) {  // unequal totals
      s[1].weight.pop_back();
      s[1].lab.pop_back();
    }
    const double want = reference_emd(s[0], s[1]);
    ASSERT_TRUE(close(solver(s[0].view(), s[1].view()), want)) << t;
    ASSERT_TRUE(close(solver(s[1].view(), s[0].view()), want)) << t;
  }
}

}  // namespace
}  // namespace palette
