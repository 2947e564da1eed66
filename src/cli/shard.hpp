#pragma once
// Job arrays without MPI: `extract --shard I/N` processes every N-th block of the inputs into a
// part file, and `palette merge` joins the parts into the file one process would write.

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "palette/points.hpp"
#include "palette/writer.hpp"

namespace palette::cli {

/// Shard `index` of `count`, in blocks of `block` inputs: block b (inputs b*block to
/// (b+1)*block-1, in input order) belongs to shard b % count.
struct Shard {
  std::size_t index = 0;
  std::size_t count = 1;
  std::size_t block = 1000;
  bool sharded() const { return count > 1; }
};

inline constexpr std::size_t kMaxShards = 1000000;

/// "I/N" with 0 <= I < N <= kMaxShards; std::nullopt otherwise.
std::optional<Shard> parse_shard(const std::string& text, std::size_t block);

/// The shard of a Slurm job array task (SLURM_ARRAY_TASK_ID, _MIN, _STEP and _COUNT), or
/// std::nullopt outside one. Throws UsageError when the variables do not make sense.
std::optional<Shard> slurm_array_shard(std::size_t block);

/// How the run record keeps it: "none", or "I/N, blocks of B".
std::string to_record(const Shard& shard);
/// The reverse of to_record(); std::nullopt for anything else.
std::optional<Shard> from_record(const std::string& text);

/// The part file of `output` for a shard: "out.csv" -> "out.part-3-of-8.csv" (the extension
/// stays last, so the format is still told by it).
std::string part_path(const std::string& output, const Shard& shard);

/// Where a shard of a --combined run keeps its colours for `palette merge`: beside its part,
/// "out.part-3-of-8.csv" -> "out.part-3-of-8.csv.palette-colours" (ColorWeights::serialize()).
inline std::string colours_path(const std::string& part) { return part + ".palette-colours"; }

/// The `*combined*` row of a --combined run, as extract writes it.
struct CombinedRow {
  std::string header;  ///< the output's header
  std::string text;    ///< the row, with its line end; empty when no image had a palette
  std::optional<Row> row;
};

/// palette merge of a --combined run: the palette of `colours` (every part's, added up),
/// clustered and shaped with the options of the run's `record` (on the CPU: every backend gives
/// the same). Throws UsageError when the record lacks an option or holds a bad value.
CombinedRow combined_row_of_run(const std::vector<std::pair<std::string, std::string>>& record,
                                ColorWeights& colours);

/// The place in the whole input (0-based) of the shard's `local`-th input.
inline std::size_t global_index(const Shard& shard, std::size_t local) {
  return (local / shard.block * shard.count + shard.index) * shard.block + local % shard.block;
}

/// How many inputs shard `index` of `count` (blocks of `block`) holds when there are `inputs`.
std::size_t shard_inputs(const Shard& shard, std::size_t inputs);

}  // namespace palette::cli
