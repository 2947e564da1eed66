#pragma once
// Lloyd iterations of one image by one thread block, "columns" variant: every thread adds its
// points into its own column of 32-bit sums in shared memory (one row per cluster and value:
// weight, weight*x, weight*y, weight*z; columns_layout.hpp), and the block folds the columns
// into exact 64-bit totals once per pass (or every few tiles when the image's weights could
// overflow 32 bits). Per point that is a fixed handful of conflict-free shared-memory operations,
// whatever k is; no warp vote, reduction or atomic. Points are not labelled in memory: the rare
// steps that need a point's cluster (empty-cluster refill, representative point) recompute it
// from the centroids of that pass, which gives the same answer bit for bit.
//
// Written against the Block interface (block.hpp), so the unit tests run this exact code on the
// host against the CPU backend. Results are identical to lloyd_image (src/core/kmeans_cpu.cpp):
// the same float arithmetic and rules (kmeans_math.hpp), integer sums, lowest-index tie breaks.

#include <cstdint>

#include "block.hpp"
#include "block_collectives.hpp"
#include "columns_layout.hpp"
#include "nearest_centroid.hpp"
#include "palette/kmeans.hpp"
#include "palette/kmeans_math.hpp"

namespace palette::columns {

/// The block's shared state besides the columns.
template <int T>
struct Shared {
  CollectiveShared<T> coll;
  long long tot[4 * kMaxK];  ///< row l*4 + c: weight (c = 0), weighted x, y, z sums
  long long members[kMaxK];
  float cx[kMaxK], cy[kMaxK], cz[kMaxK];
  float px[kMaxK], py[kMaxK], pz[kMaxK];  ///< centroids of the latest assignment
  float shift[kMaxK];
  std::uint32_t moved_point[kMaxK];  ///< points moved into empty clusters this pass
  int moved_to[kMaxK];
  int moved;
  int refills;  ///< empty clusters refilled, over the whole run (tests look at it)
};

/// Adds the kQuad points of `pts` to the columns of their nearest centroids; `col` points at
/// the calling thread's entry of row 0 (cluster l's rows then start l * 4 * T entries further).
template <int T, int KP>
PALETTE_BLOCK_FN void add_quad(const Centroids<KP>& c, std::int32_t* col, const Quad& pts) {
  PALETTE_UNROLL
  for (int e = 0; e < kQuad; ++e) {
    const int l = c.nearest(pts.x[e], pts.y[e], pts.z[e]);
    const std::int32_t w = pts.w[e];
    std::int32_t* s = col + l * 4 * T;
    s[0] += w;
    s[T] += w * pts.x[e];
    s[2 * T] += w * pts.y[e];
    s[3 * T] += w * pts.z[e];
  }
}

/// The end of a pass, with sh.tot holding its totals (refills done) and every thread past a
/// sync(): the new centroids (the old ones kept in px, py, pz) and whether every centroid moved
/// by at most limit2 (squared), the same answer in every thread.
template <int T, class Block>
PALETTE_BLOCK_FN bool converged(const Block& b, Shared<T>& sh, int k, float limit2) {
  const int tid = b.tid();
  if (tid < k) {
    const long long* t = sh.tot + tid * 4;
    sh.px[tid] = sh.cx[tid];
    sh.py[tid] = sh.cy[tid];
    sh.pz[tid] = sh.cz[tid];
    sh.shift[tid] = math::update_centroid(t[1], t[2], t[3], static_cast<std::uint64_t>(t[0]),
                                          sh.cx[tid], sh.cy[tid], sh.cz[tid]);
  }
  b.sync();
  float shift = 0.0f;
  for (int j = 0; j < k; ++j) shift = shift < sh.shift[j] ? sh.shift[j] : shift;
  return shift <= limit2;
}

/// The cluster point i was moved into this pass, or -1.
template <int T>
PALETTE_HD int moved_to(const Shared<T>& sh, std::uint32_t i) {
  for (int m = 0; m < sh.moved; ++m) {
    if (sh.moved_point[m] == i) return sh.moved_to[m];
  }
  return -1;
}

/// Moves the point that `key` names (math::refill_key: the block's maximum over the candidates)
/// from its cluster into empty cluster e: sh.tot, members and the pass's moves. One thread.
template <int T, int KP>
PALETTE_HD void move_into_empty(Shared<T>& sh, const ImageRef& p, const Centroids<KP>& c, int e,
                                unsigned long long key) {
  const std::uint32_t far = math::argmax_index(key);
  const int from = c.nearest_of(p, far);
  const long long w = p.w[far];
  const long long v[4] = {w, w * p.x[far], w * p.y[far], w * p.z[far]};
  for (int q = 0; q < 4; ++q) {
    sh.tot[from * 4 + q] -= v[q];
    sh.tot[e * 4 + q] = v[q];
  }
  --sh.members[from];
  sh.members[e] = 1;
  sh.moved_point[sh.moved] = far;
  sh.moved_to[sh.moved] = e;
  ++sh.moved;
  ++sh.refills;
}

/// The empty-cluster rule (kmeans_math.hpp), called with sh.tot holding this pass's totals and
/// every thread past a sync().
template <int T, int KP, class Block>
PALETTE_BLOCK_FN void refill(const Block& b, Shared<T>& sh, std::int32_t* col, const ImageRef& p,
                             int k, const Centroids<KP>& c) {
  const int tid = b.tid();
  const std::uint32_t tiles = (p.n + T - 1) / T;
  if (tid < k) sh.members[tid] = 0;
  for (std::uint32_t t = 0; t < tiles; ++t) {
    const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
    if (i < p.n) col[cell<T>(c.nearest_of(p, i), tid)] += 1;
  }
  fold_sum(b, sh.coll, col, k, sh.members);
  for (int e = 0; e < k; ++e) {
    if (sh.members[e] != 0) continue;  // shared and synchronised: the same in every thread
    unsigned long long key = 0;
    for (std::uint32_t t = 0; t < tiles; ++t) {
      const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
      if (i < p.n && moved_to(sh, i) < 0) {
        float d;
        const int l = c.nearest_exact(p, i, d);
        if (static_cast<std::uint64_t>(sh.members[l]) >= math::kMinMembersToGive) {
          const unsigned long long kk = math::refill_key(d, i);
          if (kk > key) key = kk;
        }
      }
    }
    key = b.max(key);
    if (tid == 0 && key != 0) move_into_empty(sh, p, c, e, key);
    b.sync();
  }
}

/// Before the first pass: centroids at the seeds' points, no refills yet, zero columns (rows
/// [0, 4k) of the calling thread's column).
template <int T, class Block>
PALETTE_BLOCK_FN void start_lloyd(const Block& b, Shared<T>& sh, std::int32_t* col,
                                  const ImageRef& p, const int* seeds, int k) {
  const int tid = b.tid();
  if (tid < k) {
    sh.cx[tid] = p.x[seeds[tid]];
    sh.cy[tid] = p.y[seeds[tid]];
    sh.cz[tid] = p.z[seeds[tid]];
  }
  if (tid == 0) sh.refills = 0;
  zero_rows<T>(col, 4 * k, tid);
}

/// The representative point of each final cluster (math::mode_key), from the labels of the last
/// pass recomputed from its centroids (sh.px, py, pz) and its moves, into out[tid].mode with the
/// cluster's totals (threads tid < k). The columns hold 64-bit keys here.
template <int T, int KP, class Block>
PALETTE_BLOCK_FN void write_clusters(const Block& b, Shared<T>& sh, std::int32_t* col,
                                     const ImageRef& p, int k, ClusterStats* out) {
  const int tid = b.tid();
  const std::uint32_t tiles = (p.n + T - 1) / T;  // of one point per thread
  Centroids<KP> c;
  c.load(sh.px, sh.py, sh.pz, k);
  auto* mode = reinterpret_cast<unsigned long long*>(col);
  for (int l = 0; l < k; ++l) mode[l * T + tid] = 0;
  for (std::uint32_t t = 0; t < tiles; ++t) {
    const std::uint32_t i = t * T + static_cast<std::uint32_t>(tid);
    if (i < p.n) {
      const int m = moved_to(sh, i);
      const int l = m >= 0 ? m : c.nearest_of(p, i);
      const unsigned long long key = math::mode_key(p.w[i], i);
      unsigned long long& h = mode[l * T + tid];
      if (key > h) h = key;
    }
  }
  const unsigned long long m = column_max(b, sh.coll, mode, k);
  if (tid < k) {
    const long long* t = sh.tot + tid * 4;
    out[tid] = ClusterStats{
        {t[1], t[2], t[3]}, static_cast<std::uint64_t>(t[0]), math::argmax_index(m), 0};
  }
  b.sync();
}

/// Lloyd iterations for one image with n > k points, from the centroids at points
/// seeds[0..k) (in shared memory or otherwise visible to every thread). `col` is this block's
/// column area, column_bytes(k, T) bytes. Threads j < k write out[j]; returns the iterations
/// run (the same in every thread).
template <int T, int KP, class Block>
PALETTE_BLOCK_FN int lloyd(const Block& b, Shared<T>& sh, std::int32_t* col, const ImageRef& p,
                           const int* seeds, int k, int max_iter, float limit2,
                           std::uint32_t flush_every, ClusterStats* out) {
  static_assert(T % kSegment == 0 && (T & (T - 1)) == 0, "T: a power of two, whole segments");
  const int tid = b.tid();
  const int rows = 4 * k;
  start_lloyd<T>(b, sh, col, p, seeds, k);
  const std::uint32_t quads = (p.head + p.n + kQuad - 1) / kQuad;
  const std::uint32_t quad_tiles = (quads + T - 1) / T;  // of kQuad points per thread
  int iterations = 0;
  for (int it = 1; it <= max_iter; ++it) {
    iterations = it;
    b.sync();  // centroids of the previous pass written, its totals read
    Centroids<KP> c;
    c.load(sh.cx, sh.cy, sh.cz, k);
    if (tid < rows) sh.tot[tid] = 0;
    if (tid == 0) sh.moved = 0;
    std::uint32_t since = 0;
    for (std::uint32_t t = 0; t < quad_tiles; ++t) {
      const std::uint32_t q = t * T + static_cast<std::uint32_t>(tid);
      if (q < quads) {
        Quad pts;
        load_quad(p, q, quads, pts);
        add_quad<T>(c, col + cell<T>(0, tid), pts);
      }
      if (++since == flush_every || t + 1 == quad_tiles) {  // the same in every thread
        fold_sum(b, sh.coll, col, rows, sh.tot);
        since = 0;
      }
    }
    bool empty = false;
    for (int j = 0; j < k; ++j) empty = empty || sh.tot[j * 4] == 0;  // weights are >= 1
    if (empty) refill<T>(b, sh, col, p, k, c);
    if (converged(b, sh, k, limit2)) break;
  }
  write_clusters<T, KP>(b, sh, col, p, k, out);
  return iterations;
}

/// lloyd() with the register padding for k (k <= kMaxK).
template <int T, class Block>
PALETTE_BLOCK_FN int lloyd_any(const Block& b, Shared<T>& sh, std::int32_t* col, const ImageRef& p,
                               const int* seeds, int k, int max_iter, float limit2,
                               std::uint32_t flush_every, ClusterStats* out) {
  return with_padded_k(k, [&](auto kp) {
    return lloyd<T, decltype(kp)::value>(b, sh, col, p, seeds, k, max_iter, limit2, flush_every,
                                         out);
  });
}

}  // namespace palette::columns
