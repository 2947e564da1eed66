#pragma once
// Lloyd iterations of one image by a cluster of C thread blocks (a thread-block cluster on
// sm_90, C <= 8): block r of the cluster copies its share of the image's points, packed in 8
// bytes, into its own shared memory once, and every pass reads them from there. The passes then
// read no device memory at all: version 6 (lloyd_columns.hpp, kFilter) read every point's 8
// bytes from device memory in each of the 20 passes, about as long as its arithmetic takes.
//
// Each block sums its own points into its columns (the same code as lloyd(), the fma filter's
// nearest-centroid search) and folds them into its own 64-bit totals; after one cluster-wide
// barrier every block adds the C blocks' totals, read through distributed shared memory, in
// rank order. The totals are exact integers, so every block holds the same totals, computes the
// same centroids, refills the same empty clusters and stops after the same pass, without
// further messages. Empty-cluster refills and the heaviest members combine the blocks' counts
// and keys the same way. Results are identical to lloyd() and to the CPU backend, bit for bit.
//
// Written, like lloyd_columns.hpp, against small interfaces so that the unit tests run this
// exact code on the host: a Block (tid(), sync()) and a Cluster (rank(), size(), sync() across
// every thread of the cluster, map(p, r): the address of shared object p in block r's shared
// memory). Totals of a pass are double-buffered by its parity, so one cluster barrier per pass
// is enough: a block overwrites its totals of pass p only after the barrier of pass p + 1, which
// every other block reaches after it has read them.

#include <cstdint>

#include "lloyd_columns.hpp"

namespace palette::columns {

/// Largest cluster (the portable limit on sm_90).
inline constexpr int kMaxCluster = 8;

/// A block's points of its image: [lo, lo + m), padded in shared memory with zero-weight points
/// to a whole number of groups of kQuad. In shared memory the first two points of each group
/// come first, in group order, and the last two from slot `half` on (slot()): a warp's 16-byte
/// loads of a half then read contiguous memory, without the bank conflicts of 32-byte strides.
struct Share {
  std::uint32_t lo, m, half;
};

/// Where point j of a share is in shared memory.
PALETTE_HD std::uint32_t slot(const Share& s, std::uint32_t j) {
  return ((j & 2u) != 0 ? s.half : 0u) + (j >> 2) * 2 + (j & 1u);
}

/// Points each block of a C-block cluster holds of an image of n points (whole groups of kQuad):
/// the shared-memory slots of PackedPoint a block needs.
PALETTE_HD std::uint32_t share_capacity(std::uint32_t n, int C) {
  const std::uint32_t per = (n + static_cast<std::uint32_t>(C) - 1) / static_cast<std::uint32_t>(C);
  return (per + kQuad - 1) / kQuad * kQuad;
}

PALETTE_HD Share share_of(std::uint32_t n, int rank, int C) {
  const std::uint32_t per = share_capacity(n, C);
  const std::uint32_t lo = static_cast<std::uint32_t>(rank) * per;
  if (lo >= n) return {n, 0, per / 2};
  return {lo, n - lo < per ? n - lo : per, per / 2};
}

/// What the cluster learns of its image in load_share(): the same in every block.
struct ImageSummary {
  unsigned long long heaviest, total;
  std::uint32_t max_abs;
  bool zero;
};

/// One block's shared state: Shared<T> (the cluster-wide totals and centroids, each block its
/// own copy) and what the other blocks read of it.
template <int T>
struct ClusterShared {
  Shared<T> s;
  long long mine[2][4 * kMaxK];     ///< this block's totals of a pass, by the pass's parity
  long long counts[kMaxK];          ///< this block's members per cluster (refill)
  unsigned long long key[kMaxK];    ///< this block's farthest point for empty cluster e
  unsigned long long heavy[kMaxK];  ///< this block's heaviest member per cluster
  unsigned long long summary[4];    ///< heaviest weight, total weight, max |coordinate|, zero
  int seeds[kMaxK];                 ///< the k-means++ seeds (point indices; for the kernel)
};

/// Copies block `share`'s points of p into pts (packed, at slot(); weights above 16 bits are
/// cut, and the summary's heaviest then says the copy cannot be used) and scans them; returns the
/// image's summary, the same in every block. Ends past a cluster barrier (so every block of the
/// cluster has started: the others' shared memory may be read from here on).
template <int T, class Block, class Cluster>
PALETTE_BLOCK_FN ImageSummary load_share(const Block& b, const Cluster& cl, ClusterShared<T>& cs,
                                         const ImageRef& p, Share share, PackedPoint* pts) {
  const int tid = b.tid();
  unsigned long long heaviest = 0, total = 0, max_abs = 0, zero = 0;
  const std::uint32_t slots = (share.m + kQuad - 1) / kQuad * kQuad;
  for (std::uint32_t j = static_cast<std::uint32_t>(tid); j < slots; j += T) {
    PackedPoint pt{0, 0, 0, 0};
    if (j < share.m) {
      const std::uint32_t i = share.lo + j;
      const std::uint32_t w = p.w[i];
      pt = {p.x[i], p.y[i], p.z[i], static_cast<std::uint16_t>(w)};
      heaviest = w > heaviest ? w : heaviest;
      total += w;
      zero |= w == 0;
      for (const int v : {pt.x, pt.y, pt.z}) {
        const auto a = static_cast<unsigned long long>(v < 0 ? -v : v);
        max_abs = a > max_abs ? a : max_abs;
      }
    }
    pts[slot(share, j)] = pt;
  }
  heaviest = block_reduce<false>(b, cs.s, heaviest);
  total = block_reduce<true>(b, cs.s, total);
  max_abs = block_reduce<false>(b, cs.s, max_abs);
  zero = block_reduce<false>(b, cs.s, zero);
  if (tid == 0) {
    cs.summary[0] = heaviest;
    cs.summary[1] = total;
    cs.summary[2] = max_abs;
    cs.summary[3] = zero;
  }
  cl.sync();
  ImageSummary r{0, 0, 0, false};
  for (int q = 0; q < cl.size(); ++q) {
    const unsigned long long* s = cl.map(cs.summary, q);
    r.heaviest = s[0] > r.heaviest ? s[0] : r.heaviest;
    r.total += s[1];
    r.max_abs = s[2] > r.max_abs ? static_cast<std::uint32_t>(s[2]) : r.max_abs;
    r.zero = r.zero || s[3] != 0;
  }
  return r;
}

/// Entry `tid` of every block's copy of `mine`, in block order (0 past the cluster's size): the
/// loads are independent, so the round trips to the other SMs overlap.
template <class Cluster, class V>
PALETTE_HD void gather_over_cluster(const Cluster& cl, int tid, V* mine, V (&out)[kMaxCluster]) {
  PALETTE_UNROLL
  for (int q = 0; q < kMaxCluster; ++q) out[q] = q < cl.size() ? cl.map(mine, q)[tid] : V{0};
}

/// Sums entry i < count of every block's copy of `mine` into dst[i]: threads tid < count. The
/// caller syncs the cluster before and the block after.
template <class Cluster, class V>
PALETTE_HD void sum_over_cluster(const Cluster& cl, int tid, V* mine, int count, V* dst) {
  if (tid < count) {
    V part[kMaxCluster];
    gather_over_cluster(cl, tid, mine, part);
    V v = 0;
    PALETTE_UNROLL
    for (int q = 0; q < kMaxCluster; ++q) v += part[q];
    dst[tid] = v;
  }
}

/// nearest_in() for a packed point.
PALETTE_HD int nearest_exact_packed(const float* cx, const float* cy, const float* cz, int k,
                                    const PackedPoint& pt, float& best) {
  return nearest_in(cx, cy, cz, k, exact_float(pt.x), exact_float(pt.y), exact_float(pt.z), best);
}

/// refill() for a cluster: the same rule, over the whole image, from every block's points.
/// Called with sh.tot holding the pass's totals (every block the same), every thread past a
/// sync(); leaves every block's sh.tot, members and moves the same.
template <int T, int KP, class Block, class Cluster>
PALETTE_BLOCK_FN void refill_cluster(const Block& b, const Cluster& cl, ClusterShared<T>& cs,
                                     std::int32_t* col, const PackedPoint* pts, Share share,
                                     const ImageRef& p, int k, const Centroids<KP, true>& c) {
  Shared<T>& sh = cs.s;
  const int tid = b.tid();
  const std::uint32_t tiles = (share.m + T - 1) / T;
  if (tid < k) cs.counts[tid] = 0;
  for (std::uint32_t t = 0; t < tiles; ++t) {
    const std::uint32_t j = t * T + static_cast<std::uint32_t>(tid);
    if (j < share.m) {
      const PackedPoint& pt = pts[slot(share, j)];
      col[cell<T, true>(c.nearest(pt.x, pt.y, pt.z), tid)] += 1;
    }
  }
  fold_sum<false, true>(b, sh, col, k, cs.counts);
  cl.sync();
  sum_over_cluster(cl, tid, cs.counts, k, sh.members);
  b.sync();
  for (int e = 0; e < k; ++e) {
    if (sh.members[e] != 0) continue;  // the same in every thread of every block
    unsigned long long key = 0;
    for (std::uint32_t t = 0; t < tiles; ++t) {
      const std::uint32_t j = t * T + static_cast<std::uint32_t>(tid);
      const std::uint32_t i = share.lo + j;
      if (j < share.m && moved_to(sh, i) < 0) {
        float d;
        const int l = nearest_exact_packed(sh.cx, sh.cy, sh.cz, k, pts[slot(share, j)], d);
        if (sh.members[l] >= 2) {
          const unsigned long long kk =
              (static_cast<unsigned long long>(float_bits(d)) << 32) | (0xFFFFFFFFu - i);
          if (kk > key) key = kk;
        }
      }
    }
    key = block_max(b, sh, key);
    if (tid == 0) cs.key[e] = key;
    cl.sync();
    if (tid == 0) {
      key = 0;
      for (int q = 0; q < cl.size(); ++q) {
        const unsigned long long v = cl.map(cs.key, q)[e];
        key = v > key ? v : key;
      }
    }
    if (tid == 0 && key != 0) move_into_empty(sh, p, c, e, key);
    b.sync();
  }
}

/// lloyd() with kFilter for one image by a cluster: this block holds points [share.lo,
/// share.lo + share.m) of p in pts (as load_share() left them), p itself is read only for the
/// seeds and rare refills. Every block passes the same seeds, k, max_iter, limit2 and
/// flush_every (from the image's summary: flush_tiles()); block 0's threads j < k write out[j].
/// Returns the iterations run (the same everywhere). Every thread of the cluster must call it;
/// it ends past a cluster barrier, after which no block reads another's shared memory.
template <int T, int KP, class Block, class Cluster>
PALETTE_BLOCK_FN int lloyd_cluster(const Block& b, const Cluster& cl, ClusterShared<T>& cs,
                                   std::int32_t* col, const PackedPoint* pts, Share share,
                                   const ImageRef& p, const int* seeds, int k, int max_iter,
                                   float limit2, std::uint32_t flush_every, ClusterStats* out) {
  static_assert(T % kSegment == 0 && (T & (T - 1)) == 0, "T: a power of two, whole segments");
  Shared<T>& sh = cs.s;
  const int tid = b.tid();
  const int rows = 4 * k;
  const float margin = tie_margin(p.max_abs);
  start_lloyd<T, true, true>(b, sh, col, p, seeds, k);  // columns in cells, filter terms kept
  const std::uint32_t quads = (share.m + kQuad - 1) / kQuad;
  const std::uint32_t quad_tiles = (quads + T - 1) / T;
  int iterations = 0;
  for (int it = 1; it <= max_iter; ++it) {
    iterations = it;
    // start_lloyd's centroids written. Later passes need no barrier here: converged() ended
    // with one, after the centroids were written, and every thread read the totals before it.
    if (it == 1) b.sync();
    Centroids<KP, true> c;
    c.load_keys(sh.key, sh.cx, sh.cy, sh.cz, k, margin);
    long long* mine = cs.mine[it & 1];
    if (tid < rows) mine[tid] = 0;
    if (tid == 0) sh.moved = 0;
    std::uint32_t since = 0;
    for (std::uint32_t t = 0; t < quad_tiles; ++t) {
      const std::uint32_t q = t * T + static_cast<std::uint32_t>(tid);
      if (q < quads) {
        Quad pts4;
        load_packed_pairs(pts + 2 * q, pts + share.half + 2 * q, pts4);
        add_quad<T, true>(c, col + cell<T, true>(0, tid), pts4);
      }
      if (++since == flush_every || t + 1 == quad_tiles) {  // the same in every thread
        fold_sum<false, true>(b, sh, col, rows, mine);
        since = 0;
      }
    }
    cl.sync();  // every block's totals of this pass complete (the last fold's barrier)
    sum_over_cluster(cl, tid, mine, rows, sh.tot);
    b.sync();
    bool empty = false;
    for (int j = 0; j < k; ++j) empty = empty || sh.tot[j * 4] == 0;  // weights are >= 1
    if (empty) refill_cluster(b, cl, cs, col, pts, share, p, k, c);
    if (converged<true>(b, sh, k, limit2)) break;
  }

  // Heaviest member of each final cluster (lowest index on ties), as lloyd(): each block over
  // its points, then block 0 over the blocks.
  Centroids<KP, true> c;
  c.load(sh.px, sh.py, sh.pz, k, margin);
  auto* heavy = reinterpret_cast<unsigned long long*>(col);
  for (int l = 0; l < k; ++l) heavy[l * T + tid] = 0;
  const std::uint32_t tiles = (share.m + T - 1) / T;
  for (std::uint32_t t = 0; t < tiles; ++t) {
    const std::uint32_t j = t * T + static_cast<std::uint32_t>(tid);
    if (j < share.m) {
      const std::uint32_t i = share.lo + j;
      const int m = moved_to(sh, i);
      const PackedPoint& pt = pts[slot(share, j)];
      const int l = m >= 0 ? m : c.nearest(pt.x, pt.y, pt.z);
      const unsigned long long key =
          (static_cast<unsigned long long>(pt.w) << 32) | (0xFFFFFFFFu - i);
      unsigned long long& h = heavy[l * T + tid];
      if (key > h) h = key;
    }
  }
  const unsigned long long mine = column_max(b, sh, heavy, k);
  if (tid < k) cs.heavy[tid] = mine;
  cl.sync();
  if (cl.rank() == 0 && tid < k) {
    unsigned long long part[kMaxCluster], m = 0;
    gather_over_cluster(cl, tid, cs.heavy, part);
    for (const unsigned long long v : part) m = v > m ? v : m;
    const long long* t = sh.tot + tid * 4;
    out[tid] = ClusterStats{{t[1], t[2], t[3]},
                            static_cast<std::uint64_t>(t[0]),
                            0xFFFFFFFFu - static_cast<std::uint32_t>(m),
                            0};
  }
  cl.sync();  // block 0 has read every block's keys: blocks may leave
  return iterations;
}

/// lloyd_cluster() with the register padding for k (k <= kMaxK).
template <int T, class Block, class Cluster>
PALETTE_BLOCK_FN int lloyd_cluster_any(const Block& b, const Cluster& cl, ClusterShared<T>& cs,
                                       std::int32_t* col, const PackedPoint* pts, Share share,
                                       const ImageRef& p, const int* seeds, int k, int max_iter,
                                       float limit2, std::uint32_t flush_every, ClusterStats* out) {
  return with_padded_k(k, [&](auto kp) {
    return lloyd_cluster<T, decltype(kp)::value>(b, cl, cs, col, pts, share, p, seeds, k, max_iter,
                                                 limit2, flush_every, out);
  });
}

}  // namespace palette::columns
