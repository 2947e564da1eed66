#pragma once
// The Earth Mover's Distance (Rubner, Tomasi and Guibas 2000) between colour signatures:
// weighted sets of CIELAB colours such as the hex + share rows `palette extract` writes.

#include <array>
#include <span>
#include <vector>

namespace palette {

/// A signature: colours in CIELAB (D65, L in [0,100]) with non-negative weights.
struct LabSignature {
  std::span<const std::array<double, 3>> lab;
  std::span<const double> weight;
};

/// Ground distance: Euclidean distance in CIELAB (ΔE*ab, CIE 1976). A metric, so the EMD of
/// signatures of equal total weight is a metric too.
double delta_e76(const std::array<double, 3>& a, const std::array<double, 3>& b);

/// Solves EMD problems exactly (transportation simplex, see emd.cpp), reusing its buffers
/// between calls: once warm it does not allocate. Not thread-safe: one per thread.
class EmdSolver {
 public:
  /// The EMD: the least total cost of moving min(total a, total b) of weight from a to b
  /// (each colour of a gives at most its weight, each colour of b takes at most its weight),
  /// divided by that flow. With equal totals every weight moves; with a lighter `a` the rest
  /// of b costs nothing (a partial match), and the other way round. Symmetric. Colours of
  /// weight 0 (or negative, or NaN) are ignored; 0 when either total is 0. Exact up to
  /// rounding: within about 1e-12 times the largest ground distance of the optimum.
  double operator()(const LabSignature& a, const LabSignature& b);

 private:
  // Per call: r rows (a's colours of positive weight, maybe a dummy), c columns (b's, maybe a
  // dummy), r + c - 1 basic cells. Sizes only grow.
  std::vector<double> cost_;          // ground distances, r x c, row-major; keys
  std::vector<double> supply_;        // row weights (what is left, while building the basis)
  std::vector<double> demand_;        // column weights (likewise)
  std::vector<double> pot_;           // potentials: u (rows), then v (columns)
  std::vector<double> flow_;          // flow of each basic cell
  std::vector<int> src_;              // index in a of each row, then in b of each column
  std::vector<int> tree_;             // basic cells, the tree, the cycle (see emd.cpp)
  std::vector<unsigned char> basic_;  // per cell: 1 when basic
};

/// A lower bound of EmdSolver()(a, b), far cheaper than solving it (O(|a|·|b|) squared
/// distances, |a| + |b| + 3 square roots): used to skip candidates that cannot enter a top-N
/// list. The largest of the centroid bound and the nearest-colour bounds (see emd.cpp); valid
/// for any totals, equal or not. 0 when either total is 0.
double emd_lower_bound(const LabSignature& a, const LabSignature& b);

}  // namespace palette
