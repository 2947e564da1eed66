#pragma once
// Block-wide collectives of the columns Lloyd code, written against the Block interface
// (block.hpp): folding the threads' 32-bit columns into 64-bit totals, and the maximum of each
// row of 64-bit columns. (The maximum of one value over the block is the Block's own max().)

#include <cstdint>

#include "block.hpp"
#include "columns_layout.hpp"

namespace palette::columns {

/// The shared memory the collectives work in.
template <int T>
struct CollectiveShared {
  long long part[T / kSegment][4 * kMaxK];  ///< one partial result per segment and row
};

/// Adds rows [0, rows) of the 32-bit columns (cell()) into dst[row] (64-bit) and zeroes the
/// caller's own column entries. Starts and ends with every thread past a sync(). (Each thread
/// adds only to its own column, so the columns may be used again at once.)
template <int T, class Block>
PALETTE_BLOCK_FN void fold_sum(const Block& b, CollectiveShared<T>& sh, std::int32_t* col, int rows,
                               long long* dst) {
  const int tid = b.tid();
  constexpr int segments = T / kSegment;
  b.sync();
  for (int item = tid; item < rows * segments; item += T) {
    long long sum = 0;
    for (int c = 0; c < kSegment; ++c) sum += col[fold_entry<T>(item, rows, c)];
    sh.part[item / rows][item % rows] = sum;
  }
  b.sync();
  if (tid < rows) {
    long long v = dst[tid];
    for (int s = 0; s < segments; ++s) v += sh.part[s][tid];
    dst[tid] = v;
  }
  zero_rows<T>(col, rows, tid);
  b.sync();
}

/// The maximum of each of rows [0, k) of 64-bit columns (T threads wide), for thread tid < k:
/// row tid's (0 in the others). Starts with each thread's column entries written, ends past a
/// sync().
template <int T, class Block>
PALETTE_BLOCK_FN unsigned long long column_max(const Block& b, CollectiveShared<T>& sh,
                                               const unsigned long long* cols, int k) {
  const int tid = b.tid();
  constexpr int segments = T / kSegment;
  b.sync();
  for (int item = tid; item < k * segments; item += T) {
    const int l = item % k, s = item / k;
    unsigned long long m = 0;
    for (int q = 0; q < kSegment; ++q) {
      const unsigned long long v = cols[l * T + s * kSegment + ((q + item) & (kSegment - 1))];
      m = v > m ? v : m;
    }
    sh.part[s][l] = static_cast<long long>(m);
  }
  b.sync();
  unsigned long long m = 0;
  if (tid < k) {
    for (int s = 0; s < segments; ++s) {
      const auto v = static_cast<unsigned long long>(sh.part[s][tid]);
      m = v > m ? v : m;
    }
  }
  return m;
}

}  // namespace palette::columns
