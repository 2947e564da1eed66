// palette stats RESULTS...: what a library of results holds, by colour. Per basic colour class,
// how many images contain it and how many are mostly it; the palette of the whole library; how
// many rows are ok and how many failed. Text, CSV or JSON.

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "options.hpp"
#include "palette/backend.hpp"
#include "palette/color_names.hpp"
#include "palette/error.hpp"
#include "palette/palette.hpp"
#include "palette/results.hpp"
#include "palette/writer.hpp"

namespace palette::cli {
namespace {

struct StatsOptions {
  std::vector<std::string> results;
  ClusterOptions cluster;  // -k, --seed, --max-iter, --tol, --space, --threads of the palette
  std::string output = "-";
  std::string format = "text";
};

struct ClassCount {
  std::uint64_t images = 0;  // holding a colour of the class
  std::uint64_t mostly = 0;  // whose colours of the class make up half or more
};

struct Library {
  std::uint64_t ok = 0, failed = 0;
  std::array<ClassCount, kColorClasses> classes{};
  Palette palette;
};

Library gather(const StatsOptions& o) {
  Library lib;
  ColorWeights weights;  // in 1/10000 of an image (shares as written)
  weights.reserve();
  // Per worker counts, summed afterwards; the colour weights are shared (atomic adds).
  struct Counts {
    std::uint64_t ok = 0, failed = 0;
    std::array<ClassCount, kColorClasses> classes{};
  };
  const int threads = thread_count(o.cluster);
  std::vector<Counts> counts(static_cast<std::size_t>(threads));
  try {
    read_results_parallel(
        o.results, static_cast<unsigned>(threads),
        [&](unsigned w, const ResultsRow& row, std::uint64_t) {
          Counts& n = counts[w];
          if (row.failed) {
            ++n.failed;
            return;
          }
          ++n.ok;
          std::array<double, kColorClasses> share{};
          for (std::size_t i = 0; i < row.colors.size(); ++i) {
            share[static_cast<int>(nearest_named_color(row.colors[i]).color_class)] +=
                row.shares[i];
            weights.add_concurrent(
                row.colors[i], static_cast<std::uint64_t>(std::llround(row.shares[i] * 10000.0)));
          }
          for (int c = 0; c < kColorClasses; ++c) {
            if (share[c] > 0) ++n.classes[c].images;
            // Shares are written to 4 decimals: 0.4999 + 0.0001 must count as half.
            if (share[c] >= 0.5 - 1e-9) ++n.classes[c].mostly;
          }
        });
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  for (const Counts& n : counts) {
    lib.ok += n.ok;
    lib.failed += n.failed;
    for (int c = 0; c < kColorClasses; ++c) {
      lib.classes[c].images += n.classes[c].images;
      lib.classes[c].mostly += n.classes[c].mostly;
    }
  }

  // The library's palette: k-means over every colour, weighted by its summed share, exactly as
  // extract clusters one image's pixels (weights scaled down to 32 bits if a colour is that
  // common; deterministic either way).
  const PipelineOptions options = pipeline_options(o.cluster);
  const ImagePoints points = weights.points(options.space);
  if (points.size() == 0) return lib;
  Batch batch;
  batch.space = options.space;
  batch.add(points);
  ClusterOptions cpu = o.cluster;
  cpu.backend = "cpu";
  auto backend = make_backend(cpu);
  BatchResult result;
  backend->fit(batch, options.kmeans, result);
  lib.palette = make_palette(batch, 0, result);
  return lib;
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * v);
  return buf;
}

std::string share_text(std::uint32_t e4) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%04u", e4 / 10000, e4 % 10000);
  return buf;
}

std::string render(const StatsOptions& o, const Library& lib) {
  const auto classes = [&](auto&& fn) {
    for (int c = 0; c < kColorClasses; ++c) fn(static_cast<ColorClass>(c), lib.classes[c]);
  };
  const Palette& p = lib.palette;
  std::string text;
  if (o.format == "json") {
    nlohmann::ordered_json j;
    j["rows"] = {{"ok", lib.ok}, {"failed", lib.failed}, {"total", lib.ok + lib.failed}};
    j["classes"] = nlohmann::json::array();
    classes([&](ColorClass c, const ClassCount& n) {
      j["classes"].push_back(nlohmann::ordered_json{
          {"class", to_string(c)}, {"images", n.images}, {"mostly", n.mostly}});
    });
    j["palette"] = nlohmann::json::array();
    for (std::size_t i = 0; i < p.colors.size(); ++i) {
      j["palette"].push_back(
          nlohmann::ordered_json{{"color", hex_color(p.colors[i])},
                                 {"share", nlohmann::json::parse(share_text(p.shares_e4[i]))},
                                 {"name", nearest_named_color(p.colors[i]).name}});
    }
    return j.dump(2) + "\n";
  }
  if (o.format == "csv") {
    // One table: what each line counts is in its first two cells.
    text = "kind,name,images,mostly,share\n";
    text += "rows,ok," + std::to_string(lib.ok) + ",,\n";
    text += "rows,failed," + std::to_string(lib.failed) + ",,\n";
    classes([&](ColorClass c, const ClassCount& n) {
      text += "class," + std::string(to_string(c)) + "," + std::to_string(n.images) + "," +
              std::to_string(n.mostly) + ",\n";
    });
    for (std::size_t i = 0; i < p.colors.size(); ++i) {
      text += "palette," + hex_color(p.colors[i]) + ",,," + share_text(p.shares_e4[i]) + "\n";
    }
    return text;
  }
  const double ok = static_cast<double>(std::max<std::uint64_t>(lib.ok, 1));
  char line[160];
  std::snprintf(line, sizeof line, "rows: %llu (%llu ok, %llu failed)\n\n",
                static_cast<unsigned long long>(lib.ok + lib.failed),
                static_cast<unsigned long long>(lib.ok),
                static_cast<unsigned long long>(lib.failed));
  text += line;
  text += "class    images holding it      mostly it (share >= 50%)\n";
  classes([&](ColorClass c, const ClassCount& n) {
    std::snprintf(line, sizeof line, "%-8s %10llu %7s    %10llu %7s\n",
                  std::string(to_string(c)).c_str(), static_cast<unsigned long long>(n.images),
                  percent(static_cast<double>(n.images) / ok).c_str(),
                  static_cast<unsigned long long>(n.mostly),
                  percent(static_cast<double>(n.mostly) / ok).c_str());
    text += line;
  });
  text += "\nlibrary palette (" + std::to_string(p.colors.size()) +
          " colours, every image's colours weighted by share):\n";
  for (std::size_t i = 0; i < p.colors.size(); ++i) {
    std::snprintf(line, sizeof line, "  %s %7s  %s\n", hex_color(p.colors[i]).c_str(),
                  percent(p.shares_e4[i] / 10000.0).c_str(),
                  std::string(nearest_named_color(p.colors[i]).name).c_str());
    text += line;
  }
  return text;
}

int run(const StatsOptions& o) {
  setup_logging(0);
  const std::string text = render(o, gather(o));
  write_output(o.output, text);
  return kExitOk;
}

}  // namespace

std::function<int()> add_stats(CLI::App& app) {
  auto o = std::make_shared<StatsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "stats",
      "Colour statistics of results files (from extract): images per basic colour class, the "
      "library's palette, ok and failed rows.");
  cmd->add_option("results", o->results,
                  "Results files written by palette extract (CSV or JSONL; - for stdin)")
      ->required();
  using namespace cluster_option;
  add_cluster_options(cmd, o->cluster, kColors | kSeed | kMaxIter | kTol | kSpace | kThreads);
  cmd->add_option("-o,--output", o->output, "Output file, - for stdout")->capture_default_str();
  cmd->add_option("--format", o->format, "Output format")
      ->check(CLI::IsMember({"text", "csv", "json"}))
      ->capture_default_str();
  return [o] { return run(*o); };
}

}  // namespace palette::cli
