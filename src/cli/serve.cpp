// palette serve: the web page and its API on this machine.

#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/auxv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

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
  std::size_t max_request_mb = ServerOptions{}.max_request_mb;
  std::size_t max_memory_mb = ServerOptions{}.max_memory_mb;
  double decode_timeout = ServerOptions{}.decode_timeout_s;
  int verbose = 0;
  bool quiet = false;
};

// The file mapped at `address` in this process (from /proc/self/maps), or "".
std::string mapped_file(const void* address) {
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2 || a < lo || a >= hi) continue;
    const auto slash = line.find('/');
    return slash == std::string::npos ? "" : line.substr(slash);
  }
  return "";
}

// The command that starts this binary again: /proc/self/exe, unless it was started through an
// explicit dynamic loader (the relocatable bundle runs lib/ld-linux-x86-64.so.2 --library-path
// lib libexec/palette): then /proc/self/exe is that loader, started the same way, on the file
// this code was loaded from.
std::vector<std::string> self_command() {
  if (::getauxval(AT_BASE) != 0) return {"/proc/self/exe"};  // the kernel loaded us: usual case
  const std::string program = mapped_file(reinterpret_cast<const void*>(&mapped_file));
  std::error_code ec;
  const auto loader = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (program.empty() || ec || std::filesystem::equivalent(loader, program, ec)) {
    return {"/proc/self/exe"};  // a static binary
  }
  return {"/proc/self/exe", "--library-path", loader.parent_path().string(), program};
}

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop = true; }

int run(const ServeOptions& o) {
  setup_logging(o.quiet ? -1 : o.verbose);
  if (o.max_request_mb > o.max_memory_mb) {
    throw UsageError("--max-request-mb (" + std::to_string(o.max_request_mb) +
                     ") must not be more than --max-memory-mb (" + std::to_string(o.max_memory_mb) +
                     ")");
  }
  // main() keeps freed memory in the heap for extract's speed; a server holds uploads only for a
  // while and must give them back: big buffers come from mmap (returned on free), and the heap
  // is trimmed beyond 16 MiB (the server also trims after the last upload of a burst).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
  ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.max_file_mb = o.max_file_mb;
  so.max_files = o.max_files;
  so.max_request_mb = o.max_request_mb;
  so.max_memory_mb = o.max_memory_mb;
  so.decode_timeout_s = o.decode_timeout;
  so.worker_command = self_command();  // this binary again, as `palette decode-worker`
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
  cmd->add_option("--max-request-mb", o->max_request_mb,
                  "Largest request body (all its files together), in MB")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--max-memory-mb", o->max_memory_mb,
                  "Upload memory for all requests together, in MB (then 503 until some is free)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--decode-timeout", o->decode_timeout,
                  "Seconds one image may take to decode before its decoder process is killed")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  add_cluster_options(cmd, *o);
  cmd->add_flag("-v,--verbose", o->verbose, "More log output (debug)");
  cmd->add_flag("-q,--quiet", o->quiet, "Errors only");
  return [o] { return run(*o); };
}

}  // namespace palette::cli
