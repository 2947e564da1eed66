#pragma once
// Subcommands of the palette CLI. Each registers its options on the app and runs when chosen.

#include <CLI/CLI.hpp>
#include <functional>

namespace palette::cli {

/// Exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitSomeFailed = 1;
inline constexpr int kExitUsage = 2;
/// The command stopped on an error (a write that failed, a full disk, a lost MPI rank): what it
/// wrote is cut short, unlike kExitSomeFailed's whole output.
inline constexpr int kExitFailed = 3;
// Interrupted by SIGINT or SIGTERM: 128 + the signal (130, 143).

/// Thrown by a command for a usage problem found after parsing (one line, exit code 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Register a subcommand and return the function that runs it.
std::function<int()> add_extract(CLI::App& app);
std::function<int()> add_info(CLI::App& app);
std::function<int()> add_bench(CLI::App& app);
std::function<int()> add_serve(CLI::App& app);
std::function<int()> add_find(CLI::App& app);
std::function<int()> add_stats(CLI::App& app);
std::function<int()> add_merge(CLI::App& app);
std::function<int()> add_export(CLI::App& app);
/// `palette decode-worker`: hidden, started by `palette serve` (see decode_worker.hpp).
std::function<int()> add_decode_worker(CLI::App& app);

}  // namespace palette::cli
