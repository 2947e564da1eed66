#include "palette/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <limits>
#include <mutex>
#include <new>
#include <thread>

#include "palette/clock.hpp"
#include "palette/error.hpp"
#include "palette/palette.hpp"

namespace palette {
namespace {

// Adds the wall and CPU time of a scope to a StageTime.
class StageTimer {
 public:
  explicit StageTimer(StageTime& t) : t_(t), wall_(wall_seconds()), cpu_(thread_cpu_seconds()) {}
  ~StageTimer() {
    t_.wall += wall_seconds() - wall_;
    t_.cpu += thread_cpu_seconds() - cpu_;
  }
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

 private:
  StageTime& t_;
  double wall_, cpu_;
};

void add(StageTime& a, const StageTime& b) {
  a.wall += b.wall;
  a.cpu += b.cpu;
}

struct WorkerTimes {
  StageTime read, decode, prepare;
};

bool load(const InputItem& item, const PipelineOptions& options, ImagePoints& points,
          std::string& error, CollectScratch& scratch, WorkerTimes& times,
          Thumbnail* thumbnail = nullptr) {
  points.clear();
  if (!item.error.empty()) {
    error = item.error;
    return false;
  }
  try {
    FileBytes owned;
    std::span<const std::uint8_t> bytes;
    if (item.data) {
      bytes = *item.data;
    } else {
      StageTimer t(times.read);
      owned = read_file(item.path, max_file_bytes(options.decode.max_pixels));
      bytes = owned;
    }
    DecodedImage img;
    {
      StageTimer t(times.decode);
      img = options.decoder ? options.decoder(bytes, options.decode)
                            : decode_image(bytes, options.decode);
    }
    {
      StageTimer t(times.prepare);
      PixelView view{img.pixels.data(), img.width, img.height, img.channels,
                     static_cast<std::size_t>(img.width) * img.channels};
      if (thumbnail && options.thumbnail_width > 0 && options.thumbnail_height > 0) {
        // The whole image, as decoded: a region or a mask changes what is counted, not it.
        *thumbnail =
            make_thumbnail(view, options.thumbnail_width, options.thumbnail_height, kThumbBoxColor);
      }
      if (options.region) {
        const PixelRect r = region_rect(*options.region, img.width, img.height, img.source_width,
                                        img.source_height);
        if (r.empty()) {
          error = "--region is outside the image (" + std::to_string(img.source_width) + "x" +
                  std::to_string(img.source_height) + ")";
          return false;
        }
        view.data += static_cast<std::size_t>(r.y0) * view.stride +
                     static_cast<std::size_t>(r.x0) * static_cast<std::size_t>(img.channels);
        view.width = r.x1 - r.x0;
        view.height = r.y1 - r.y0;
      }
      const std::optional<std::uint32_t> background =
          options.ignore.background ? border_color(view, options.decode.alpha_threshold)
                                    : std::nullopt;
      collect_points(view, options.decode.alpha_threshold, options.space, points, scratch);
      if (points.total_weight > 0 && options.ignore.any()) {
        drop_ignored(points, options.ignore, background);
        if (points.total_weight == 0) {
          error = "nothing left to count: every pixel is a colour --ignore leaves out";
          return false;
        }
      }
    }
    if (points.total_weight == 0) {
      error = "no opaque pixels (every pixel's alpha is below --alpha-threshold)";
      return false;
    }
    return true;
  } catch (...) {
    error = decode_error_text();
  }
  points.clear();
  return false;
}

struct Prepared {
  bool ready = false;
  std::string name;
  std::string error;
  ImagePoints points;
  Thumbnail thumbnail;  // options.thumbnail_width > 0
};

class Pipeline {
 public:
  Pipeline(InputQueue& inputs, Backend& backend, const PipelineOptions& options, RowSink& sink,
           PipelineProgress* progress, const std::atomic<bool>* cancel)
      : inputs_(inputs),
        backend_(backend),
        options_(options),
        sink_(sink),
        progress_(progress),
        cancel_(cancel) {
    batch_cap_ = options.batch_images ? options.batch_images : backend.preferred_batch_images();
    batch_cap_ = std::max<std::size_t>(1, batch_cap_);
    const auto threads = static_cast<std::size_t>(std::max(1, options.threads));
    // Decoding goes on while the backend holds its batches.
    const auto in_flight = static_cast<std::size_t>(std::max(1, backend.max_in_flight()));
    window_cap_ = batch_cap_ * in_flight + 2 * threads;
    if (backend.max_batch_points() > 0) {
      max_points_ = std::min(max_points_, backend.max_batch_points());
    }
    current_.batch.space = options.space;
    // Inputs already taken (a resumed run's, checked against its output) are not this run's.
    base_ = reserved_ = inputs.taken();
  }

  PipelineStats run() {
    const double wall0 = wall_seconds(), cpu0 = process_cpu_seconds();
    std::vector<std::thread> workers;
    for (int i = 0; i < std::max(1, options_.threads); ++i)
      workers.emplace_back([this] { work(); });
    try {
      dispatch();
    } catch (...) {
      stop_workers(workers);
      throw;
    }
    stop_workers(workers);
    if (options_.combined && !options_.combined_colours && !cancelled()) {
      const double combine0 = wall_seconds();
      stats_.combined = combined_palette(colour_weights_, options_, backend_);
      stats_.cluster.wall += wall_seconds() - combine0;
    }
    stats_.wall = wall_seconds() - wall0;
    stats_.cpu = process_cpu_seconds() - cpu0;
    return stats_;
  }

 private:
  bool cancelled() const { return cancel_ && cancel_->load(std::memory_order_relaxed); }

  // --combined: every counted pixel of the run, by colour.
  void gather(const Batch& batch, std::size_t image) {
    ColorWeights& to = options_.combined_colours ? *options_.combined_colours : colour_weights_;
    for (std::size_t i = batch.offsets[image]; i < batch.offsets[image + 1]; ++i) {
      to.add(batch.rgb[i], batch.weight[i]);
    }
  }

  void stop_workers(std::vector<std::thread>& workers) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    space_.notify_all();
    if (cancelled()) inputs_.close();  // wakes workers waiting for more inputs
    for (auto& t : workers) t.join();
  }

  void work() {
    CollectScratch scratch;
    WorkerTimes times;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        space_.wait(lock, [&] { return stop_ || cancelled() || reserved_ < base_ + window_cap_; });
        if (stop_ || cancelled()) break;
        ++reserved_;
      }
      auto next = inputs_.next();
      if (!next) {
        const std::size_t total = inputs_.pushed();  // final: the queue is closed
        std::lock_guard lock(mutex_);
        inputs_done_ = true;
        total_ = total;
        ready_.notify_all();
        break;
      }
      auto& [index, item] = *next;
      Prepared p;
      p.name = item.name;
      load(item, options_, p.points, p.error, scratch, times, &p.thumbnail);
      p.ready = true;
      {
        std::lock_guard lock(mutex_);
        const std::size_t slot = index - base_;
        if (window_.size() <= slot) window_.resize(slot + 1);
        window_[slot] = std::move(p);
      }
      ready_.notify_all();
    }
    std::lock_guard lock(mutex_);
    add(stats_.read, times.read);
    add(stats_.decode, times.decode);
    add(stats_.prepare, times.prepare);
  }

  // Whether image `base_` (the window's front) is decoded, or there is none. Needs mutex_.
  bool next_available() const {
    return (!window_.empty() && window_.front().ready) || (inputs_done_ && base_ >= total_);
  }

  void dispatch() {
    for (;;) {
      Prepared p;
      {
        std::unique_lock lock(mutex_);
        // Polls (for cancellation: a signal handler sets the flag and cannot notify) and, while
        // nothing new is decoded, gets rows out: a low-latency backend's batch right away, a
        // big-batch backend's after a while, and batches the backend has finished.
        while (!ready_.wait_for(lock, std::chrono::milliseconds(kPollMs),
                                [&] { return cancelled() || next_available(); })) {
          lock.unlock();
          if (!current_.pending.empty() &&
              (backend_.low_latency() || wall_seconds() - current_.started > kMaxBatchWait)) {
            flush();
          } else if (!in_flight_.empty()) {
            complete_oldest();
          }
          lock.lock();
        }
        if (!current_.pending.empty() && !next_available() && backend_.low_latency()) {
          lock.unlock();
          flush();
          lock.lock();
        }
        if (cancelled() || window_.empty() || !window_.front().ready) break;
        p = std::move(window_.front());
        window_.pop_front();
        ++base_;
      }
      space_.notify_all();
      if (current_.pending.empty()) current_.started = wall_seconds();
      if (p.error.empty()) {
        current_.batch.add(p.points);
      } else {
        current_.batch.add_empty();
      }
      const std::uint64_t pixels = p.error.empty() ? p.points.pixels : 0;
      const bool gathered = dispatched_++ >= options_.combined_skip;
      current_.pending.push_back(
          Pending{std::move(p.name), std::move(p.error), pixels, std::move(p.thumbnail), gathered});
      if (current_.pending.size() >= batch_cap_ || current_.batch.points() >= max_points_) flush();
    }
    flush();
    while (!in_flight_.empty()) complete_oldest();
  }

  // Hands the batch being built to the backend; completes the oldest batch in flight when the
  // backend has as many as it takes.
  void flush() {
    if (current_.pending.empty()) return;
    const double wall0 = wall_seconds();
    // The backend keeps pointers to the batch and its result until finish(): they live in the
    // deque from here on (push_back and pop_front keep other elements where they are).
    in_flight_.push_back(std::move(current_));
    current_ = InFlight{};
    current_.batch.space = options_.space;
    InFlight& job = in_flight_.back();
    if (job.batch.points() > 0 && !options_.skip_cluster) {
      try {
        backend_.submit(job.batch, options_.kmeans, job.result);
        job.submitted = true;
      } catch (const std::exception& e) {
        job.error = std::string(backend_.name()) + " backend failed: " + e.what();
      }
    }
    stats_.cluster.wall += wall_seconds() - wall0;
    while (static_cast<int>(in_flight_.size()) >= std::max(1, backend_.max_in_flight())) {
      complete_oldest();
    }
  }

  // Waits for the oldest batch in flight, builds its rows and writes them.
  void complete_oldest() {
    InFlight& job = in_flight_.front();
    std::vector<Row> rows(job.pending.size());
    {
      // The backend reports its own CPU time (its threads, not this one); palette
      // construction runs here.
      const double wall0 = wall_seconds();
      if (job.submitted) {
        try {
          backend_.finish();
          stats_.cluster.cpu += job.result.host_cpu_seconds;
          stats_.device += job.result.device_seconds;
        } catch (const std::exception& e) {
          job.error = std::string(backend_.name()) + " backend failed: " + e.what();
        }
      }
      const double cpu0 = thread_cpu_seconds();
      for (std::size_t i = 0; i < job.pending.size(); ++i) {
        rows[i].file = std::move(job.pending[i].name);
        rows[i].thumbnail = std::move(job.pending[i].thumbnail);
        if (!job.pending[i].error.empty()) {
          rows[i].error = std::move(job.pending[i].error);
        } else if (!job.error.empty()) {
          rows[i].error = job.error;
        } else if (options_.skip_cluster) {
          rows[i].error = "not clustered (decode-only run)";
        } else {
          rows[i].palette = make_palette(job.batch, i, job.result);
          shape_palette(rows[i].palette, options_.shape);
          if (options_.combined && job.pending[i].gathered) gather(job.batch, i);
          if (options_.quality) {
            add_quality(rows[i].palette, job.batch, i, job.pending[i].pixels);
            rows[i].palette.converged = rows[i].palette.iterations < options_.kmeans.max_iter;
          }
        }
      }
      stats_.cluster.cpu += thread_cpu_seconds() - cpu0;
      stats_.cluster.wall += wall_seconds() - wall0;
    }
    std::size_t failed = 0;
    for (const auto& r : rows) failed += r.ok() ? 0 : 1;
    {
      StageTimer t(stats_.write);
      sink_.write(rows);
    }
    stats_.images += rows.size();
    stats_.failed += failed;
    stats_.ok += rows.size() - failed;
    ++stats_.batches;
    if (progress_) {
      progress_->failed += failed;
      progress_->done += rows.size();
    }
    in_flight_.pop_front();
  }

  // Keeps batch offsets within 32 bits with a wide margin.
  static constexpr std::size_t kMaxBatchPoints = std::size_t{1} << 30;

  static constexpr int kPollMs = 20;
  static constexpr double kMaxBatchWait = 0.2;  // seconds a big batch may wait for more images

  struct Pending {
    std::string name, error;
    std::uint64_t pixels = 0;  // the image's, counted or not
    Thumbnail thumbnail;
    bool gathered = true;  // its pixels go to the combined palette (PipelineOptions::combined_skip)
  };
  // A batch on its way through the backend, with what its rows need.
  struct InFlight {
    Batch batch;
    BatchResult result;
    std::vector<Pending> pending;
    std::string error;
    bool submitted = false;
    double started = 0;  // when its first image arrived
  };

  ColorWeights colour_weights_;
  InputQueue& inputs_;
  Backend& backend_;
  const PipelineOptions& options_;
  RowSink& sink_;
  PipelineProgress* progress_;
  const std::atomic<bool>* cancel_;
  std::size_t batch_cap_ = 1, window_cap_ = 1;

  std::mutex mutex_;
  std::condition_variable space_, ready_;
  std::deque<Prepared> window_;  // images [base_, base_ + size)
  std::size_t base_ = 0;         // index of window_.front(): the next image to batch
  std::size_t reserved_ = 0;     // inputs claimed by workers
  std::size_t total_ = 0;        // number of inputs, once inputs_done_
  bool inputs_done_ = false, stop_ = false;

  // Owned by the dispatching thread.
  std::size_t dispatched_ = 0;  // images put in batches
  InFlight current_;
  std::deque<InFlight> in_flight_;
  std::size_t max_points_ = kMaxBatchPoints;
  PipelineStats stats_;
};

}  // namespace

std::optional<Palette> combined_palette(ColorWeights& colours, const PipelineOptions& options,
                                        Backend& backend) {
  if (colours.empty()) return std::nullopt;
  const ImagePoints points = colours.points(options.space);
  Batch batch;
  batch.space = options.space;
  batch.add(points);
  BatchResult result;
  try {
    backend.fit(batch, options.kmeans, result);
  } catch (const std::exception&) {
    make_cpu_backend(std::max(1, options.threads))->fit(batch, options.kmeans, result);
  }
  Palette p = make_palette(batch, 0, result);
  shape_palette(p, options.shape);
  if (options.quality) {
    add_quality(p, batch, 0, points.total_weight);
    p.converged = p.iterations < options.kmeans.max_iter;
  }
  return p;
}

PipelineStats run_pipeline(InputQueue& inputs, Backend& backend, const PipelineOptions& options,
                           RowSink& sink, PipelineProgress* progress,
                           const std::atomic<bool>* cancel) {
  Pipeline p(inputs, backend, options, sink, progress, cancel);
  return p.run();
}

bool load_points(const InputItem& item, const PipelineOptions& options, ImagePoints& points,
                 std::string& error) {
  CollectScratch scratch;
  WorkerTimes times;
  return load(item, options, points, error, scratch, times);
}

}  // namespace palette
