#include "shard.hpp"

#include <charconv>
#include <cstdlib>
#include <filesystem>

#include "commands.hpp"

namespace palette::cli {
namespace {

std::optional<std::size_t> whole(std::string_view s) {
  std::size_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::size_t> env_number(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return std::nullopt;
  const auto n = whole(v);
  if (!n) throw UsageError(std::string(name) + " is not a whole number: '" + v + "'");
  return n;
}

}  // namespace

std::optional<Shard> parse_shard(const std::string& text, std::size_t block) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  const auto index = whole(std::string_view(text).substr(0, slash));
  const auto count = whole(std::string_view(text).substr(slash + 1));
  if (!index || !count || *count == 0 || *count > kMaxShards || *index >= *count || block == 0) {
    return std::nullopt;
  }
  return Shard{*index, *count, block};
}

std::optional<Shard> slurm_array_shard(std::size_t block) {
  const auto id = env_number("SLURM_ARRAY_TASK_ID");
  const auto count = env_number("SLURM_ARRAY_TASK_COUNT");
  if (!id || !count) return std::nullopt;
  // Arrays may start anywhere and step (--array=1-15:2): the shard is the task's rank.
  const std::size_t min = env_number("SLURM_ARRAY_TASK_MIN").value_or(0);
  const std::size_t step = env_number("SLURM_ARRAY_TASK_STEP").value_or(1);
  // A list of tasks (--array=3,7 or 0,2,5) is not a range: Slurm says step 1 and the count of
  // the tasks, so a task's place in it cannot be told (3,7 would make 7 the fifth of two).
  if (const auto max = env_number("SLURM_ARRAY_TASK_MAX");
      max && *max != min + (*count - 1) * step) {
    throw UsageError("the Slurm array's tasks are not a range (SLURM_ARRAY_TASK_MIN " +
                     std::to_string(min) + ", _MAX " + std::to_string(*max) + ", _STEP " +
                     std::to_string(step) + ", _COUNT " + std::to_string(*count) +
                     "), so this task's shard cannot be told: give --shard I/N");
  }
  if (step == 0 || *id < min || (*id - min) % step != 0 || (*id - min) / step >= *count ||
      *count > kMaxShards) {
    throw UsageError("the Slurm array variables do not make a shard (SLURM_ARRAY_TASK_ID " +
                     std::to_string(*id) + ", _MIN " + std::to_string(min) + ", _STEP " +
                     std::to_string(step) + ", _COUNT " + std::to_string(*count) +
                     "): give --shard I/N");
  }
  return Shard{(*id - min) / step, *count, block};
}

std::string to_record(const Shard& shard) {
  if (!shard.sharded()) return "none";
  return std::to_string(shard.index) + "/" + std::to_string(shard.count) + ", blocks of " +
         std::to_string(shard.block);
}

std::optional<Shard> from_record(const std::string& text) {
  const auto comma = text.find(", blocks of ");
  if (comma == std::string::npos) return std::nullopt;
  const auto block = whole(std::string_view(text).substr(comma + 12));
  if (!block) return std::nullopt;
  return parse_shard(text.substr(0, comma), *block);
}

std::string part_path(const std::string& output, const Shard& shard) {
  const std::filesystem::path p(output);
  const std::string part =
      ".part-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count);
  std::filesystem::path name = p.stem();
  name += part;
  name += p.extension();
  return (p.parent_path() / name).string();
}

std::size_t shard_inputs(const Shard& shard, std::size_t inputs) {
  const std::size_t blocks = (inputs + shard.block - 1) / shard.block;
  std::size_t n = 0;
  // Whole blocks of this shard, then the last block if it is this shard's and short.
  if (blocks > shard.index) {
    const std::size_t mine = (blocks - 1 - shard.index) / shard.count + 1;
    n = mine * shard.block;
    const std::size_t last = blocks - 1;
    if (last % shard.count == shard.index && inputs % shard.block != 0) {
      n -= shard.block - inputs % shard.block;
    }
  }
  return n;
}

}  // namespace palette::cli
