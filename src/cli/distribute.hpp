#pragma once
// extract across MPI ranks (mpirun -n N palette extract ...): rank 0 enumerates the inputs and
// hands them out in chunks of consecutive inputs, on request, to every rank (itself included),
// so a slow rank simply asks less often; each rank runs the ordinary pipeline on its chunks and
// sends back its rows, formatted; rank 0 writes them in input order. Rank 0 hands out no input
// more than `window` inputs ahead of the last row written, so it never holds more than `window`
// rows waiting for an earlier one (the reorder buffer's bound).

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "mpi.hpp"
#include "palette/backend.hpp"
#include "palette/inputs.hpp"
#include "palette/pipeline.hpp"
#include "palette/writer.hpp"

namespace palette::cli {

struct DistributedOptions {
  std::size_t chunk = 32;  ///< inputs per chunk
  /// Every chunk ends at a multiple of `chunk` (of the inputs' indices), waiting for inputs not
  /// yet found rather than handing out a shorter one: --contact-sheet, whose sheets of 100 must
  /// each be drawn by one rank. Else a chunk is cut short when no more inputs are ready.
  bool aligned = false;
  std::size_t window =
      4096;  ///< rows at most between the next row to write and the last handed out
  /// Called on the rank that made it with every row and its input's index (0-based, in the
  /// whole input), from that rank's pipeline thread (--swatches).
  std::function<void(std::size_t, const Row&)> on_row;
  /// --combined: this rank's counted pixels (PipelineOptions::combined_colours points here).
  /// Every other rank sends its colours to rank 0 at the end, and rank 0 adds them to its own
  /// before run_root_rank() returns: the colours of the whole run, as one process gathers them.
  ColorWeights* colours = nullptr;
};

/// What one rank did.
struct RankReport {
  int rank = 0;
  std::string host;
  std::string backend;  ///< "cpu on ...", as extract's last line names it
  std::size_t images = 0, failed = 0;
  double seconds = 0;  ///< its own pipeline's wall time, from its first chunk to its last row
};

/// The rows a run wrote and how they went, over every rank.
struct DistributedStats {
  PipelineStats local;  ///< this rank's own pipeline
  std::size_t images = 0, failed = 0;
  /// Rank 0: every rank's, in rank order, once run_root_rank() returns.
  std::vector<RankReport> ranks;
};

/// Rank 0: hands out the inputs of `inputs` (the next one to take has index `first`), runs its
/// own share, and calls write(text, rows, failed) with consecutive rows in input order (from
/// any thread, never two at once). Returns when every rank has sent its last row.
DistributedStats run_root_rank(const mpi::World& world, InputQueue& inputs, std::size_t first,
                               Backend& backend, const PipelineOptions& options,
                               const RowFormatter& formatter, const DistributedOptions& d,
                               const std::function<void(const std::string&, std::size_t)>& write,
                               const std::atomic<bool>* stop);

/// Any other rank: takes chunks from rank 0 until it has no more, and sends their rows back.
DistributedStats run_worker_rank(const mpi::World& world, Backend& backend,
                                 const PipelineOptions& options, const RowFormatter& formatter,
                                 const DistributedOptions& d, const std::atomic<bool>* stop);

}  // namespace palette::cli
