// palette serve: the web page and its API on this machine.

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "commands.hpp"
#include "console.hpp"
#include "options.hpp"
#include "palette/error.hpp"
#include "palette/image_io.hpp"
#include "palette/server.hpp"

namespace palette::cli {
namespace {

struct ServeOptions : ClusterOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::size_t max_file_mb = ServerOptions{}.max_file_mb;
  std::size_t max_files = ServerOptions{}.max_files;
  int verbose = 0;
  bool quiet = false;
};

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop = true; }

int run(const ServeOptions& o) {
  setup_logging(o.quiet ? -1 : o.verbose);
  ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.max_file_mb = o.max_file_mb;
  so.max_files = o.max_files;
  so.defaults = pipeline_options(o);
  init_image_io();
  StderrCapture capture;
  const auto backend = make_backend(o);
  PaletteServer server(so, *backend);
  try {
    server.bind();
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::thread stopper([&] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
  });
  const std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  spdlog::info("open http://{}:{} ({} backend: {})", host, server.port(), backend->name(),
               backend->device());
  server.serve();
  g_stop = true;
  stopper.join();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace

std::function<int()> add_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve a web page (and its HTTP API) to extract palettes from uploaded images");
  cmd->add_option("--host", o->host, "Address to listen on (127.0.0.1: this machine only)")
      ->capture_default_str();
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--max-file-mb", o->max_file_mb, "Largest upload per file, in MB")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  cmd->add_option("--max-files", o->max_files, "Most files per request")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->capture_default_str();
  add_cluster_options(cmd, *o);
  cmd->add_flag("-v,--verbose", o->verbose, "More log output (debug)");
  cmd->add_flag("-q,--quiet", o->quiet, "Errors only");
  return [o] { return run(*o); };
}

}  // namespace palette::cli
