#pragma once
// palette serve: the web page and its HTTP API, on the same pipeline and backend as extract.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "palette/backend.hpp"
#include "palette/pipeline.hpp"

namespace palette {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               ///< 0: any free port (see PaletteServer::port())
  std::size_t max_file_mb = 50;  ///< per uploaded file
  std::size_t max_files = 100;   ///< per request
  std::size_t max_waiting = 16;  ///< requests queued behind the running one; then 503
  PipelineOptions defaults;      ///< clustering options a request does not set
};

/// An HTTP server: GET / (the page), POST /api/palettes, GET /api/health, GET /api/info.
/// Uploads are decoded from memory and never written anywhere. One request is processed at a
/// time (each uses every core); up to max_waiting more wait their turn, further ones get 503.
class PaletteServer {
 public:
  /// `backend` is shared by all requests and must outlive the server.
  PaletteServer(const ServerOptions& options, Backend& backend);
  ~PaletteServer();
  PaletteServer(const PaletteServer&) = delete;
  PaletteServer& operator=(const PaletteServer&) = delete;

  /// Binds the listening socket. Throws palette::Error when it cannot.
  void bind();
  /// The bound port (after bind()).
  int port() const;
  /// Serves until stop() is called (from any thread). Needs bind() first.
  void serve();
  /// Stops serving; requests being answered finish first.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The page, as embedded at build time.
const std::string& page_html();

}  // namespace palette
