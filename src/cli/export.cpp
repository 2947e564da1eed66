// palette export --to gpl|ase|css RESULTS... [-o FILE]: the palettes of a results file (what
// extract wrote) for design tools: a GIMP/Inkscape palette (GPL), an Adobe Swatch Exchange
// file (ASE) or CSS custom properties. Every image's palette by default, one image's with
// --file.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "palette/error.hpp"
#include "palette/export.hpp"
#include "palette/results.hpp"

namespace palette::cli {
namespace {

struct ExportOptions {
  std::vector<std::string> results;
  std::string to;
  std::string file;  // one image's row only
  std::string output = "-";
  std::string name;  // the palette's name (GPL Name:, CSS prefix); default from the input
};

int run(const ExportOptions& o) {
  setup_logging(0);
  std::vector<ExportPalette> entries;
  for (const auto& path : o.results) {
    try {
      read_results(path, [&](const ResultsRow& row) {
        if (row.failed || row.colors.empty()) return;
        if (!o.file.empty() && row.file != o.file) return;
        ExportPalette e;
        e.file = std::string(row.file);
        for (std::size_t i = 0; i < row.colors.size(); ++i) {
          e.swatches.push_back({row.colors[i], row.shares[i]});
        }
        entries.push_back(std::move(e));
      });
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  if (entries.empty()) {
    throw UsageError(o.file.empty() ? "no palettes in the results (every row an error?)"
                                    : "no row for '" + o.file + "' in the results");
  }
  if (!o.file.empty() && entries.size() > 1) entries.resize(1);
  const std::string name = o.name.empty() ? default_export_name(entries, o.results[0]) : o.name;
  const auto format = parse_export_format(o.to);
  if (!format) throw UsageError("--to must be gpl, ase or css");
  write_output(o.output, export_palettes(*format, entries, name));
  return kExitOk;
}

}  // namespace

std::function<int()> add_export(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Palettes of results files (from extract) for design tools: GIMP/Inkscape (gpl), Adobe "
      "Swatch Exchange (ase), CSS custom properties (css).");
  cmd->add_option("results", o->results, "Results files written by palette extract (CSV or JSONL)")
      ->required();
  cmd->add_option("--to", o->to, "Format")->required()->check(CLI::IsMember({"gpl", "ase", "css"}));
  cmd->add_option("--file", o->file, "Only this image's palette (its file column)");
  cmd->add_option("--name", o->name, "Palette name (GPL Name:, CSS property prefix)");
  cmd->add_option("-o,--output", o->output, "Output file, - for stdout")->capture_default_str();
  return [o] { return run(*o); };
}

}  // namespace palette::cli
