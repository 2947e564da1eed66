#pragma once
// palette serve: the web page and its HTTP API, on the same pipeline and backend as extract.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "palette/backend.hpp"
#include "palette/pipeline.hpp"

namespace palette {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   ///< 0: any free port (see PaletteServer::port())
  std::size_t max_file_mb = 50;      ///< per uploaded file
  std::size_t max_files = 100;       ///< per request
  std::size_t max_request_mb = 256;  ///< per request body (the files and fields together)
  std::size_t max_memory_mb = 512;   ///< upload bytes held by all requests together
  std::size_t max_waiting = 16;      ///< requests uploading or queued beside the running one
  unsigned max_connections = 256;    ///< open connections; more are refused at once
  unsigned idle_timeout_s = 60;      ///< a connection silent this long is closed
  double decode_timeout_s = 30;      ///< per image: a decoder process taking longer is killed
  /// The command that starts the palette binary, to which `decode-worker ...` is appended, to
  /// decode uploads in separate processes (as many as defaults.threads). Usually just the
  /// binary's path: the CLI passes /proc/self/exe (with the dynamic loader in front when it was
  /// started through one, as in the relocatable bundle), tests the binary they built.
  std::vector<std::string> worker_command;
  /// Decode in this process instead (no worker processes): for fuzzing and tests only, as a
  /// decoder fault then ends the server.
  bool decode_in_process = false;
  /// false: no listening socket; connections come only through add_connection() (fuzzing).
  bool listen = true;
  PipelineOptions defaults;  ///< clustering options a request does not set
};

/// An HTTP server (libmicrohttpd): GET / (the page), POST /api/palettes, GET /api/health,
/// GET /api/info. One thread polls every connection (epoll), so slow clients cost a connection
/// each, never a thread, and health checks and the page are answered while a request is being
/// clustered. Uploads are parsed as they stream in and kept in memory only until clustered,
/// never written anywhere; memory for them is bounded by max_request_mb per request and
/// max_memory_mb in all, decided from Content-Length before a body byte is read. Decoding runs in
/// worker processes (decode_worker.hpp): a decoder crash or hang costs that image an error row.
/// One request is clustered at a time (each uses every core); up to max_waiting more upload or
/// wait their turn, further ones get 503.
class PaletteServer {
 public:
  /// `backend` is shared by all requests and must outlive the server.
  PaletteServer(const ServerOptions& options, Backend& backend);
  ~PaletteServer();
  PaletteServer(const PaletteServer&) = delete;
  PaletteServer& operator=(const PaletteServer&) = delete;

  /// Starts the decoder processes, binds the listening socket and starts answering. Throws
  /// palette::Error when it cannot.
  void bind();
  /// The bound port (after bind()).
  int port() const;
  /// Blocks until stop() has finished (called from any thread). Needs bind() first.
  void serve();
  /// Stops: no new connections or requests; requests already uploaded are clustered and
  /// answered first. Idempotent.
  void stop();
  /// Serves one more connection, given as a connected stream socket that the server then owns
  /// (closes). For tests and fuzzing: a socketpair end carries raw request bytes. Needs bind().
  /// Throws palette::Error when the connection cannot be taken.
  void add_connection(int fd);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The page, as embedded at build time.
const std::string& page_html();

}  // namespace palette
