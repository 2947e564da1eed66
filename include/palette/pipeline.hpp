#pragma once
// The host pipeline: decode workers -> ordered batches -> backend -> rows in input order.
// Memory is bounded: at most a window of decoded images plus one batch exist at any time.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "palette/backend.hpp"
#include "palette/image_io.hpp"
#include "palette/inputs.hpp"
#include "palette/kmeans.hpp"
#include "palette/mask.hpp"
#include "palette/writer.hpp"

namespace palette {

struct PipelineOptions {
  DecodeOptions decode;
  ColorSpace space = ColorSpace::kLab;
  KMeansParams kmeans;
  ShapeOptions shape;            ///< merge, drop, sort the palettes (host side, every backend)
  bool quality = false;          ///< fill the palettes' quality figures (--stats)
  std::optional<Region> region;  ///< cluster only this part of each image (--region)
  IgnoreOptions ignore;          ///< colours not counted (--ignore)
  bool combined = false;         ///< also one palette of every counted pixel of the run
  /// With combined: where the counted pixels are gathered, when not in the run's own table; the
  /// caller then makes the palette (combined_palette()) and PipelineStats::combined stays empty.
  /// MPI ranks (rank 0 adds up every rank's), shards and resumable runs to a file gather so.
  ColorWeights* combined_colours = nullptr;
  /// With combined: how many of this run's first images are not gathered, as the colours they
  /// go to already hold them (a resumed run making rows again for their contact sheet).
  std::size_t combined_skip = 0;
  /// Keep a thumbnail of each image, fitting in this box, in its row (--contact-sheet); 0: none.
  int thumbnail_width = 0, thumbnail_height = 0;
  int threads = 1;               ///< decode workers
  std::size_t batch_images = 0;  ///< images per batch; 0: what the backend prefers
  bool skip_cluster = false;     ///< decode and prepare only (benchmarks: decode alone)
  /// Decodes an image instead of decode_image() when set (palette serve: in a worker process,
  /// see decode_worker.hpp). Called from every decode thread at once, so it must be
  /// thread-safe; throws palette::Error for an image it cannot decode, like decode_image().
  std::function<DecodedImage(std::span<const std::uint8_t>, const DecodeOptions&)> decoder;
};

/// Time spent in one stage, summed over the threads that ran it.
struct StageTime {
  double wall = 0;  ///< seconds inside the stage
  double cpu = 0;   ///< CPU seconds used by it
};

struct PipelineStats {
  std::size_t images = 0, ok = 0, failed = 0, batches = 0;
  double wall = 0;    ///< the whole run
  double cpu = 0;     ///< process CPU time during the run
  StageTime read;     ///< reading files
  StageTime decode;   ///< decoding and shrinking
  StageTime prepare;  ///< merging identical colours, colour conversion
  StageTime cluster;  ///< backend (k-means) and palette construction
  StageTime write;    ///< formatting and writing rows
  double device = 0;  ///< GPU seconds reported by the backend
  /// With options.combined: the palette of every counted pixel of every image clustered in
  /// this run (their weighted colours merged, then k-means with the run's options and
  /// shaping), or std::nullopt when no image had a palette.
  std::optional<Palette> combined;
};

/// Live counters for a progress display (read from another thread).
struct PipelineProgress {
  std::atomic<std::size_t> done{0};
  std::atomic<std::size_t> failed{0};
};

/// Receives the rows, in input order, a batch at a time, always from the same thread.
class RowSink {
 public:
  virtual ~RowSink() = default;
  virtual void write(const std::vector<Row>& rows) = 0;
};

/// Runs every input of `inputs` not yet taken through decode, `backend` and into `sink`, one row
/// per input, in input order. Returns when the inputs are exhausted, or early (after writing every
/// row already clustered) once `*cancel` becomes true. Per-image failures become error rows; only
/// a failing sink throws.
PipelineStats run_pipeline(InputQueue& inputs, Backend& backend, const PipelineOptions& options,
                           RowSink& sink, PipelineProgress* progress = nullptr,
                           const std::atomic<bool>* cancel = nullptr);

/// The palette of every colour of `colours` (--combined): one more batch of one image for
/// `backend` (the CPU if the backend cannot take it), clustered and shaped with `options`;
/// std::nullopt when `colours` is empty.
std::optional<Palette> combined_palette(ColorWeights& colours, const PipelineOptions& options,
                                        Backend& backend);

/// Reads (unless item.data is set), decodes and prepares one input; on failure returns false
/// and sets `error`. Exposed for tests and single-image callers.
bool load_points(const InputItem& item, const PipelineOptions& options, ImagePoints& points,
                 std::string& error);

}  // namespace palette
