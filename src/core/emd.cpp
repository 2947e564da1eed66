// The Earth Mover's Distance between colour signatures, solved exactly as a transportation
// problem with the transportation simplex (MODI / stepping-stone method), sized for the small
// signatures palettes give (k <= 10 a side), with every buffer kept in the solver between calls.
//
// The problem. Supplies s_i (the weights of a), demands d_j (the weights of b), costs c_ij =
// ΔE76. Ship F = min(sum s, sum d) at least cost. When the totals differ, a dummy row (or column)
// with cost 0 takes the heavier side's excess, which balances the problem: every unit of supply
// goes to some demand. The answer is the least cost over F.
//
// The method. A basic solution is a spanning tree of the bipartite graph rows + columns with
// rows + columns - 1 "basic" cells; their flows are fixed by the supplies and demands, every
// other cell carries 0. Potentials u_i (rows), v_j (columns) with u_i + v_j = c_ij on the tree
// price the other cells: the reduced cost r_ij = c_ij - u_i - v_j is what shipping one unit
// through (i, j), and back around the tree, saves or costs. When no r_ij is negative the
// solution is optimal (LP duality: u, v are a feasible dual whose value equals the cost).
// Otherwise the entering cell and the tree path between its row and column close a cycle with
// alternately + and - cells; θ = the least flow on the - cells moves around the cycle, one of
// those cells (now at 0) leaves the tree, and the cost falls by θ·|r_ij|.
//
// The initial basis comes from the least-cost method, which is often optimal already or a
// pivot or two away: on random palettes, 2.5 pivots on average (at most 11) for 5 x 5, 8 (at
// most 25) for 10 x 10. The tree is kept as parent links; each pivot finds the cycle through
// the entering cell's row and column's common ancestor, turns the links round on one side,
// and recomputes the potentials from the root.
//
// Degeneracy. A pivot with θ = 0 (a basic cell already at 0: common with equal weights) changes
// the tree but not the cost, and a sequence of such pivots could in principle come back to a
// tree seen before (cycling) and go round for ever. Pivots choose the most negative r_ij
// (Dantzig's rule: few pivots), but after kDantzigDegenerate degenerate pivots in a row, Bland's
// smallest-index rule (entering: the first cell with r_ij < 0; leaving: the first of the tied
// - cells) until a pivot lowers the cost again. This ends: the trees are finitely many and the
// cost never rises, so going on for ever means, from some pivot on, only degenerate pivots,
// hence only Bland's, and those never cycle (Bland's theorem). The cap on the pivots
// (kMaxPivots + 4 per cell; then the flow found so far, feasible, is returned) only guards
// against floating-point surprises: in some 800,000 random problems, many degenerate on
// purpose, the most pivots seen were about 200, at 40 x 40 (cap 7400).
//
// Rounding. Flows only ever change by x + θ and x - θ with θ the least of the x on - cells, so
// they stay >= 0 exactly. Reduced costs above -kCostTol·max(c) count as >= 0; by duality (any
// flow y costs Σ y_ij c_ij >= Σ y_ij (u_i + v_j - tol) = cost found - tol·Σ y_ij) the result is
// then within kCostTol·max(c)·max(ta, tb)/F of the optimum: 4e-10 ΔE for Lab distances and
// equal totals, far below any difference that matters. Totals within kBalanceTol of each other
// are treated as equal (no dummy): the result moves by at most kBalanceTol·max(c).

#include "palette/emd.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace palette {
namespace {

// Reduced costs above -kCostTol * (largest cost) count as non-negative (optimal).
constexpr double kCostTol = 1e-12;
// Totals that differ by at most this, relatively, are treated as equal (no dummy row or column).
constexpr double kBalanceTol = 1e-13;
// A pivot moving at most kTinyFlow * F counts as degenerate.
constexpr double kTinyFlow = 1e-14;
// Degenerate pivots in a row allowed to Dantzig's rule before Bland's takes over.
constexpr int kDantzigDegenerate = 8;
// The pivot cap is kMaxPivots + 4 per cell: a guard only (see above).
constexpr int kMaxPivots = 1000;

// Σ w_i·p_i / Σ w_i over colours of positive weight (skipping the rest), and that total.
struct Centroid {
  std::array<double, 3> c{0.0, 0.0, 0.0};
  double total = 0.0;
};
Centroid centroid(const LabSignature& s) {
  Centroid r;
  const std::size_t n = std::min(s.lab.size(), s.weight.size());
  for (std::size_t i = 0; i < n; ++i) {
    const double w = s.weight[i];
    if (!(w > 0.0)) continue;
    r.total += w;
    for (int k = 0; k < 3; ++k) r.c[k] += w * s.lab[i][k];
  }
  if (r.total > 0.0) {
    for (double& v : r.c) v /= r.total;
  }
  return r;
}

double dist2(const std::array<double, 3>& p, const std::array<double, 3>& q) {
  const double dl = p[0] - q[0], da = p[1] - q[1], db = p[2] - q[2];
  return dl * dl + da * da + db * db;
}

}  // namespace

double delta_e76(const std::array<double, 3>& a, const std::array<double, 3>& b) {
  return std::sqrt(dist2(a, b));
}

double EmdSolver::operator()(const LabSignature& a, const LabSignature& b) {
  // ---- The colours of positive weight (rows: a, columns: b) and their totals.
  const std::size_t na = std::min(a.lab.size(), a.weight.size());
  const std::size_t nb = std::min(b.lab.size(), b.weight.size());
  src_.resize(na + nb);
  supply_.resize(na + 1);
  demand_.resize(nb + 1);
  int* const row_src = src_.data();
  int* const col_src = src_.data() + na;
  int rows = 0, cols = 0;
  double ta = 0.0, tb = 0.0;
  for (std::size_t i = 0; i < na; ++i) {
    if (!(a.weight[i] > 0.0)) continue;
    supply_[rows] = a.weight[i];
    row_src[rows++] = static_cast<int>(i);
    ta += a.weight[i];
  }
  for (std::size_t j = 0; j < nb; ++j) {
    if (!(b.weight[j] > 0.0)) continue;
    demand_[cols] = b.weight[j];
    col_src[cols++] = static_cast<int>(j);
    tb += b.weight[j];
  }
  if (rows == 0 || cols == 0) return 0.0;
  const double flow_total = std::min(ta, tb);

  // ---- A dummy row or column (cost 0) takes the heavier side's excess: the problem is then
  // balanced. Totals equal but for rounding in the shares are left as they are.
  const int real_rows = rows, real_cols = cols;
  const double excess = ta - tb, balance_tol = kBalanceTol * std::max(ta, tb);
  if (excess > balance_tol) demand_[cols++] = excess;
  if (-excess > balance_tol) supply_[rows++] = -excess;

  // ---- Costs, rows x columns, row-major; the dummy's are 0. Keys for the initial basis: the
  // costs, but +inf for the dummy's cells.
  const int m = rows, n = cols, cells = m * n;
  cost_.resize(2 * cells);
  double* const cost = cost_.data();
  double* const key = cost + cells;
  double cmax = 0.0;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      const bool real = i < real_rows && j < real_cols;
      const double c = real ? delta_e76(a.lab[row_src[i]], b.lab[col_src[j]]) : 0.0;
      cost[i * n + j] = c;
      key[i * n + j] = real ? c : std::numeric_limits<double>::infinity();
      cmax = std::max(cmax, c);
    }
  }
  if (!(cmax > 0.0)) return 0.0;  // every colour of a is every colour of b

  // ---- Buffers. Nodes: rows 0..m-1, then columns m..m+n-1. Basic cell k: row brow[k], column
  // bcol[k], flow[k]. The tree, rooted anywhere: parent[x] (-1 at the root) and the basic cell
  // joining x to it, parent_cell[x]; potentials pot[x] (u_i, then v_j).
  const int nodes = m + n, nbasic = nodes - 1;
  tree_.resize(2 * nbasic + 9 * nodes);
  int* const brow = tree_.data();
  int* const bcol = brow + nbasic;
  int* const parent = bcol + nbasic;
  int* const parent_cell = parent + nodes;
  int* const mark = parent_cell + nodes;  // stamps: ancestors of a node; potentials done
  int* const stack = mark + nodes;        // elimination order, then a walk's nodes
  int* const minus = stack + nodes;       // the cycle's - cells ...
  int* const minus_node = minus + nodes;  // ... and the node each hangs from
  int* const plus = minus_node + nodes;   // the cycle's + cells
  int* const active_rows = plus + nodes;  // rows and columns still in the table (initial basis)
  int* const active_cols = active_rows + m;
  flow_.resize(nbasic);
  double* const flow = flow_.data();
  pot_.resize(nodes);
  double* const pot = pot_.data();
  basic_.assign(cells, 0);
  unsigned char* const basic = basic_.data();
  std::fill(mark, mark + nodes, 0);

  // ---- Initial basis: the least-cost method. Repeatedly the cheapest cell of the rows and
  // columns still in the table (the dummy's last, so that the real colours are matched first
  // and the dummy gets what is left over) takes min(supply left, demand left), then its row or
  // its column (exactly one of them) leaves the table. Each line leaves once, joined by its
  // cell to a line still in the table, its parent: the rows + columns - 1 cells form a spanning
  // tree, rooted at the last line standing. A cell may carry 0 (a row and a column running out
  // together): it stays in the tree all the same.
  for (int i = 0; i < m; ++i) active_rows[i] = i;
  for (int j = 0; j < n; ++j) active_cols[j] = j;
  int rows_left = m, cols_left = n;
  for (int k = 0; k < nbasic; ++k) {
    int bi = 0, bj = 0;
    double best = key[active_rows[0] * n + active_cols[0]];
    for (int ri = 0; ri < rows_left; ++ri) {
      const double* const krow = key + active_rows[ri] * n;
      for (int cj = 0; cj < cols_left; ++cj) {
        if (krow[active_cols[cj]] < best) {
          best = krow[active_cols[cj]];
          bi = ri;
          bj = cj;
        }
      }
    }
    const int i = active_rows[bi], j = active_cols[bj];
    const double f = std::min(supply_[i], demand_[j]);
    supply_[i] -= f;
    demand_[j] -= f;
    brow[k] = i;
    bcol[k] = j;
    flow[k] = f;
    basic[i * n + j] = 1;
    // The row leaves when it ran out first (or together with the column), unless it is the
    // last row; otherwise the column. (At the last cell, one row and one column are left and
    // the row leaves.)
    int gone, stays;
    if ((supply_[i] <= demand_[j] && rows_left > 1) || cols_left == 1) {
      gone = i;
      stays = m + j;
      active_rows[bi] = active_rows[--rows_left];
    } else {
      gone = m + j;
      stays = i;
      active_cols[bj] = active_cols[--cols_left];
    }
    parent[gone] = stays;
    parent_cell[gone] = k;
    stack[k] = gone;
  }
  // Nothing moves any distance (identical signatures, say): optimal as it is (costs are >= 0).
  double init_cost = 0.0;
  for (int k = 0; k < nbasic; ++k) init_cost += flow[k] * cost[brow[k] * n + bcol[k]];
  if (init_cost == 0.0) return 0.0;

  // Potentials from the root (potential 0) down: a line's parent leaves the table after the
  // line, so going through the cells backwards meets each parent first.
  const int root = m + active_cols[0];
  parent[root] = -1;
  pot[root] = 0.0;
  for (int k = nbasic - 1; k >= 0; --k) {
    const int x = stack[k];
    pot[x] = cost[brow[k] * n + bcol[k]] - pot[parent[x]];
  }

  // ---- Simplex pivots.
  const double cost_tol = kCostTol * cmax;
  const double tiny_flow = kTinyFlow * flow_total;
  const int max_pivots = kMaxPivots + 4 * cells;
  int degenerate_run = 0;  // pivots in a row that did not lower the cost
  for (int pivot = 0, stamp = 0; pivot < max_pivots; ++pivot) {
    const bool bland = degenerate_run >= kDantzigDegenerate;
    // Pricing: the entering cell. Dantzig: the most negative reduced cost; Bland: the first
    // negative one. (Basic cells price at 0 up to rounding, far inside cost_tol; skipped anyway.)
    int enter = -1;
    double best = -cost_tol;
    for (int i = 0; i < m && !(bland && enter >= 0); ++i) {
      const double u = pot[i];
      const double* const v = pot + m;
      for (int j = 0; j < n; ++j) {
        const double r = cost[i * n + j] - u - v[j];
        if (r < best && !basic[i * n + j]) {
          best = r;
          enter = i * n + j;
          if (bland) break;
        }
      }
    }
    if (enter < 0) break;  // optimal

    // The cycle: the entering cell (+), then the tree path from its column q to its row p
    // through their nearest common ancestor w. Counting from either end, the path's odd cells
    // are - and its even ones + (it has odd length: it joins a column to a row).
    const int ei = enter / n, ej = enter % n, p = ei, q = m + ej;
    ++stamp;
    for (int x = q; x >= 0; x = parent[x]) mark[x] = stamp;
    int w = p;
    while (mark[w] != stamp) w = parent[w];
    int nminus = 0, nplus = 0;
    for (int x = q, count = 1; x != w; x = parent[x], ++count) {
      if (count % 2 == 1) {
        minus_node[nminus] = x;
        minus[nminus++] = parent_cell[x];
      } else {
        plus[nplus++] = parent_cell[x];
      }
    }
    const int nminus_q = nminus;  // - cells below q's side of w
    for (int x = p, count = 1; x != w; x = parent[x], ++count) {
      if (count % 2 == 1) {
        minus_node[nminus] = x;
        minus[nminus++] = parent_cell[x];
      } else {
        plus[nplus++] = parent_cell[x];
      }
    }

    // θ, and the leaving cell: a - cell of least flow; among ties, the one of smallest cell
    // number (Bland's rule; Dantzig's takes any).
    int out = 0;
    for (int t = 1; t < nminus; ++t) {
      const int k = minus[t], kout = minus[out];
      if (flow[k] < flow[kout] ||
          (flow[k] == flow[kout] && brow[k] * n + bcol[k] < brow[kout] * n + bcol[kout])) {
        out = t;
      }
    }
    const int leave = minus[out];
    const double theta = flow[leave];
    for (int t = 0; t < nminus; ++t) flow[minus[t]] -= theta;
    for (int t = 0; t < nplus; ++t) flow[plus[t]] += theta;
    basic[brow[leave] * n + bcol[leave]] = 0;
    basic[enter] = 1;
    brow[leave] = ei;  // the entering cell takes the leaving cell's number
    bcol[leave] = ej;
    flow[leave] = theta;
    degenerate_run = theta <= tiny_flow ? degenerate_run + 1 : 0;

    // The new tree. The leaving cell hung node `cut` (and its subtree, which holds p or q) from
    // the rest; the entering cell hangs that subtree again by p or q: the parent links on the
    // path from there up to `cut` turn round.
    const int cut = minus_node[out];
    int x = out < nminus_q ? q : p;
    int new_parent = x == q ? p : q, new_cell = leave;
    for (;;) {
      const int old_parent = parent[x], old_cell = parent_cell[x];
      parent[x] = new_parent;
      parent_cell[x] = new_cell;
      if (x == cut) break;
      new_parent = x;
      new_cell = old_cell;
      x = old_parent;
    }
    // Potentials again, from the root down, each node after its parent (walks up to a node
    // already done, then down again).
    ++stamp;
    mark[root] = stamp;
    for (int y = 0; y < nodes; ++y) {
      int depth = 0;
      for (int z = y; mark[z] != stamp; z = parent[z]) stack[depth++] = z;
      while (depth > 0) {
        const int z = stack[--depth], k = parent_cell[z];
        pot[z] = cost[brow[k] * n + bcol[k]] - pot[parent[z]];
        mark[z] = stamp;
      }
    }
  }

  double total = 0.0;
  for (int k = 0; k < nbasic; ++k) total += flow[k] * cost[brow[k] * n + bcol[k]];
  return std::max(0.0, total / flow_total);
}

// The lower bound: the largest of three bounds, each valid for any totals. Let F = min(ta, tb)
// and let a' <= a, b' <= b be the weights an optimal flow actually moves (total F each); a has
// δa = ta - F unmoved, b has δb = tb - F (one of them is 0).
//  - Centroids (Rubner et al.): EMD >= |c(a') - c(b')| because the ground distance is a norm
//    (Jensen). And c(a') - c(a) = δa·(c(a) - c(r)) / F with r the unmoved rest, so
//    |c(a') - c(a)| <= δa·R_a / F where R_a = max_i |a_i - c(a)|; likewise for b. Hence
//    EMD >= |c(a) - c(b)| - (δa·R_a + δb·R_b) / F, exactly the centroid distance for equal totals.
//  - Nearest colours: each unit of a' moves at least to the nearest colour of b, at distance
//    n_i; so EMD·F >= Σ a'_i n_i >= Σ a_i n_i - δa·max_i n_i. Likewise for b.
double emd_lower_bound(const LabSignature& a, const LabSignature& b) {
  const Centroid ca = centroid(a), cb = centroid(b);
  if (!(ca.total > 0.0) || !(cb.total > 0.0)) return 0.0;
  const double flow_total = std::min(ca.total, cb.total);
  const double da = ca.total - flow_total, db = cb.total - flow_total;
  const std::size_t na = std::min(a.lab.size(), a.weight.size());
  const std::size_t nb = std::min(b.lab.size(), b.weight.size());

  // Squared distances once: each row's minimum (a's colour to the nearest of b) and each
  // column's (b's colour to the nearest of a). Columns' minima on the stack, up to kStack
  // colours; past that, a second pass.
  constexpr std::size_t kStack = 64;
  double col_min[kStack];
  const bool one_pass = nb <= kStack;
  if (one_pass) std::fill(col_min, col_min + nb, std::numeric_limits<double>::infinity());
  double sum_a = 0.0, max_a = 0.0, radius_a2 = 0.0;
  for (std::size_t i = 0; i < na; ++i) {
    if (!(a.weight[i] > 0.0)) continue;
    const auto& p = a.lab[i];
    double row_min = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < nb; ++j) {
      if (!(b.weight[j] > 0.0)) continue;
      const double d = dist2(p, b.lab[j]);
      row_min = std::min(row_min, d);
      if (one_pass) col_min[j] = std::min(col_min[j], d);
    }
    const double nearest = std::sqrt(row_min);
    sum_a += a.weight[i] * nearest;
    max_a = std::max(max_a, nearest);
    radius_a2 = std::max(radius_a2, dist2(p, ca.c));
  }
  double sum_b = 0.0, max_b = 0.0, radius_b2 = 0.0;
  for (std::size_t j = 0; j < nb; ++j) {
    if (!(b.weight[j] > 0.0)) continue;
    const auto& q = b.lab[j];
    double nearest2 = one_pass ? col_min[j] : std::numeric_limits<double>::infinity();
    if (!one_pass) {
      for (std::size_t i = 0; i < na; ++i) {
        if (a.weight[i] > 0.0) nearest2 = std::min(nearest2, dist2(a.lab[i], q));
      }
    }
    const double nearest = std::sqrt(nearest2);
    sum_b += b.weight[j] * nearest;
    max_b = std::max(max_b, nearest);
    radius_b2 = std::max(radius_b2, dist2(q, cb.c));
  }

  const double centroid_bound =
      delta_e76(ca.c, cb.c) - (da * std::sqrt(radius_a2) + db * std::sqrt(radius_b2)) / flow_total;
  const double nearest_a = (sum_a - da * max_a) / flow_total;
  const double nearest_b = (sum_b - db * max_b) / flow_total;
  // A hair below (1e-10 relative and absolute), so that rounding in these sums, or the
  // solver's tolerances, never put the bound above the solver's value.
  const double bound = std::max({centroid_bound, nearest_a, nearest_b});
  return std::max(0.0, bound - 1e-10 * (1.0 + bound));
}

}  // namespace palette
