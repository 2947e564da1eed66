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

/// Solves EMD problems, reusing its buffers between calls (one per thread).
class EmdSolver {
 public:
  /// The EMD: the least total cost of moving min(total a, total b) of weight from a to b
  /// (each colour of a gives at most its weight, each colour of b takes at most its weight),
  /// divided by that flow. With equal totals every weight moves; with a lighter `a` the rest
  /// of b costs nothing (a partial match). 0 when either total is 0.
  double operator()(const LabSignature& a, const LabSignature& b);

 private:
  std::vector<double> scratch_;
};

/// A lower bound of EmdSolver()(a, b), far cheaper than solving it: used to skip candidates
/// that cannot enter a top-N list.
double emd_lower_bound(const LabSignature& a, const LabSignature& b);

}  // namespace palette
