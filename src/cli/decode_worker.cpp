// palette decode-worker: decodes images for `palette serve`, in a process of its own, so that a
// decoder fault costs one upload an error instead of ending the server. Not listed in --help:
// only the server starts it (src/server/decode_worker.cpp holds both sides of the protocol).

#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include "commands.hpp"
#include "palette/decode_worker.hpp"
#include "palette/image_io.hpp"

namespace palette::cli {

std::function<int()> add_decode_worker(CLI::App& app) {
  auto memory_mb = std::make_shared<std::size_t>(0);
  CLI::App* cmd = app.add_subcommand(
      "decode-worker", "Decode images sent on stdin, answer on stdout (started by serve)");
  cmd->group("");  // hidden
  cmd->add_option("--memory-mb", *memory_mb,
                  "Address space it may add after start-up, in MiB (0: no limit)");
  return [memory_mb] {
    init_image_io();
    // The protocol keeps the descriptors stdin and stdout came as; the standard streams are
    // pointed elsewhere, so whatever a library prints cannot corrupt it.
    const int in = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    const int out = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (in < 0 || out < 0) return kExitUsage;
    ::dup2(2, 1);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 0);
      ::close(null);
    }
    return run_decode_worker(in, out, *memory_mb << 20);
  };
}

}  // namespace palette::cli
