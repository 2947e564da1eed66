// libFuzzer target: palette serve's request handling, from bytes to answer. One PaletteServer
// (CPU backend, decoding in this process so the decoders are fuzzed through it too, small
// limits, no listening socket) serves every input: the input is written, as raw bytes, into one
// end of a socket pair whose other end the server takes as a connection (add_connection); then
// the write side is shut and the answer read until the server closes the connection. HTTP
// parsing (libmicrohttpd), admission and limits, the multipart parser, form fields, the pipeline
// and the answers all run as they do when serving.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "fuzz_common.hpp"
#include "palette/backend.hpp"
#include "palette/server.hpp"

namespace {

palette::PaletteServer& server() {
  // Never destroyed: reachable from here until the process ends.
  static palette::PaletteServer* instance = [] {
    static std::unique_ptr<palette::Backend> backend = palette::make_cpu_backend(1);
    palette::ServerOptions o;
    o.listen = false;
    o.decode_in_process = true;
    o.max_file_mb = 1;
    o.max_files = 4;
    o.max_request_mb = 2;
    o.max_memory_mb = 4;
    o.max_waiting = 4;
    o.max_connections = 16;
    o.idle_timeout_s = 2;
    o.defaults.threads = 1;
    o.defaults.decode.size = 32;
    o.defaults.decode.max_pixels = palette::fuzz::kMaxPixels;
    auto* s = new palette::PaletteServer(o, *backend);
    s->bind();
    return s;
  }();
  return *instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  palette::PaletteServer& s = server();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) return 0;
  try {
    s.add_connection(sv[0]);
  } catch (const palette::Error&) {
    ::close(sv[1]);
    return 0;
  }
  // Write the input while reading whatever comes back (the server may answer before it has
  // read everything, and then stop reading), until the server closes or 10 s pass.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::size_t written = 0;
  bool writing = true;
  char sink[1 << 14];
  while (std::chrono::steady_clock::now() < deadline) {
    if (writing && written == size) {
      ::shutdown(sv[1], SHUT_WR);
      writing = false;
    }
    pollfd p{sv[1], static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 100) < 0 && errno != EINTR) break;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(sv[1], sink, sizeof sink, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;  // closed
    }
    if (writing && (p.revents & POLLOUT)) {
      const ssize_t n = ::send(sv[1], data + written, size - written, MSG_NOSIGNAL);
      if (n > 0) {
        written += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        writing = false;  // the server stopped reading: its answer comes next
      }
    }
  }
  ::close(sv[1]);
  return 0;
}
