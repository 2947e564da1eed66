// palette: dominant colour palettes of many images.

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.hpp"
#include "console.hpp"
#include "palette/error.hpp"

int main(int argc, char** argv) {
  using namespace palette::cli;
  // Decoders allocate large short-lived buffers (a progressive JPEG's coefficients are tens of
  // MB). Served by mmap, each one costs a page fault per 4 KiB on every image; kept in the heap,
  // the next image reuses them.
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1024 << 20);
  CLI::App app{"palette: extract the dominant colour palettes of many images, fast.", "palette"};
  app.set_version_flag("--version", std::string("palette ") + PALETTE_VERSION);
  app.require_subcommand(1);
  // Each command registers itself (the subcommand it adds is the app's last) and returns its run.
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands;
  for (const auto add : {add_extract, add_info, add_bench, add_serve, add_find, add_stats,
                         add_merge, add_export, add_decode_worker}) {
    std::function<int()> run = add(app);
    commands.emplace_back(app.get_subcommands({}).back(), std::move(run));
  }

  // A word that is not a command: say so, rather than CLI11's "a subcommand is required".
  if (argc >= 2 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const auto& [sub, run] : commands) {
      known = known || sub->check_name(argv[1]);
      if (!sub->get_group().empty()) names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr,
                   "palette: error: unknown command '%s' (commands: %s; see 'palette --help')\n",
                   argv[1], names.c_str());
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::string what = e.what();
    std::fprintf(stderr, "palette: error: %s (see 'palette --help')\n", what.c_str());
    return kExitUsage;
  }
  try {
    for (auto& [sub, run] : commands) {
      if (sub->parsed()) return run();
    }
  } catch (const UsageError& e) {
    spdlog::error("{}", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return kExitFailed;
  }
  return kExitUsage;
}
