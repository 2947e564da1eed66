#pragma once
// Decoding in worker processes: a decoder fault (a crash, a hang, a runaway allocation) on one
// upload costs that upload an error, never the process that holds the connections. The server
// keeps a DecoderPool; each worker is the palette binary run as `palette decode-worker`, talking
// over a socket pair on its stdin and stdout.
//
// Protocol (both ends are the same binary on the same machine, so plain structs in host byte
// order): the worker sends a hello; then, per image, the pool sends a request header and the
// encoded bytes, and the worker answers with a reply header and either the decoded pixels or the
// error text. See src/server/decode_worker.cpp.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "palette/image_io.hpp"

namespace palette {

/// What a pool starts its workers with.
struct DecoderPoolOptions {
  /// The command that starts the palette binary; "decode-worker --memory-mb N" is appended.
  /// Usually one element, the binary's path (`palette serve` passes /proc/self/exe).
  std::vector<std::string> command;
  std::size_t workers = 1;                  ///< processes; at most this many decodes run at once
  double timeout_seconds = 30;              ///< per image: a worker that takes longer is killed
  std::size_t max_input_bytes = 50u << 20;  ///< largest encoded image it will be sent
  std::size_t memory_bytes = 0;  ///< address space a worker may add after start-up; 0: no limit
};

/// The address space a worker needs beyond its start-up size to decode any image the limits let
/// through: the encoded bytes twice, 24 bytes per pixel (16-bit RGBA rows, the 8-bit image and
/// the premultiplied copy shrinking makes) and 256 MiB for the rest (the shrunk image at the
/// largest --size, decoder state).
std::size_t decoder_memory_bytes(std::size_t max_input_bytes, std::uint64_t max_pixels);

/// A set of worker processes that decode images. decode() may be called from several threads
/// at once; each call uses one idle worker (waiting for one when all are busy).
class DecoderPool {
 public:
  /// Starts the workers. Throws palette::Error when one cannot be started or does not answer.
  explicit DecoderPool(const DecoderPoolOptions& options);
  /// Ends the workers (they exit on end of input; stragglers are killed).
  ~DecoderPool();
  DecoderPool(const DecoderPool&) = delete;
  DecoderPool& operator=(const DecoderPool&) = delete;

  /// Decodes like decode_image(), in a worker. Throws palette::Error with decode_image()'s own
  /// text for a bad image, and "decoder crashed (...)" or "decoding timed out (...)" when the
  /// worker died or took too long: that worker is replaced, the next call gets a fresh one.
  DecodedImage decode(std::span<const std::uint8_t> bytes, const DecodeOptions& options);

  /// Workers that died or were killed so far (for tests and logs).
  std::size_t restarts() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The worker's side: reads requests from `in_fd`, answers on `out_fd`, until end of input.
/// Sets up the process first: no core files, and (memory_bytes > 0) an address-space limit of
/// its current size plus memory_bytes. Returns the process exit code.
///
/// Test-only hooks (never set them in production): when the environment variable
/// PALETTE_TEST_DECODER_CRASH is set and non-empty, an image whose bytes start with its value
/// makes the worker raise SIGSEGV; PALETTE_TEST_DECODER_HANG likewise makes it sleep forever.
int run_decode_worker(int in_fd, int out_fd, std::size_t memory_bytes);

}  // namespace palette
