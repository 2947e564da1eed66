#include "progress.hpp"

#include <cstdio>
#include <string>

#include "console.hpp"
#include "palette/clock.hpp"

namespace palette::cli {

ProgressBar::ProgressBar(const PipelineProgress& progress, InputQueue& inputs)
    : progress_(progress), inputs_(inputs), thread_([this] { loop(); }) {}

ProgressBar::~ProgressBar() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  Console::instance().status("");
}

void ProgressBar::loop() {
  const double start = wall_seconds();
  std::unique_lock lock(mutex_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_; })) {
    draw(wall_seconds() - start);
  }
}

namespace {
std::string clock_text(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}
}  // namespace

void ProgressBar::draw(double elapsed) {
  const std::size_t done = progress_.done.load();
  const std::size_t failed = progress_.failed.load();
  const std::size_t total = inputs_.pushed();
  const bool final_total = inputs_.closed();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;

  constexpr int kWidth = 24;
  const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 0.0;
  const int filled = final_total ? static_cast<int>(frac * kWidth) : 0;
  std::string line(1, '[');
  line.append(static_cast<std::size_t>(filled), '#');
  line.append(static_cast<std::size_t>(kWidth - filled), '.');
  char buf[160];
  std::snprintf(buf, sizeof buf, "] %zu/%zu%s %.1f img/s", done, total, final_total ? "" : "+",
                rate);
  line.append(buf);
  if (failed) std::snprintf(buf, sizeof buf, " %zu failed", failed), line.append(buf);
  const bool eta = final_total && rate > 0 && done < total;
  line.append(eta ? " ETA " : " ");
  line.append(clock_text(eta ? static_cast<double>(total - done) / rate : elapsed));
  Console::instance().status(line);
}

}  // namespace palette::cli
