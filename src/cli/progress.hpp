#pragma once
// A progress bar on stderr: done/total, images/s, ETA. Redrawn a few times a second.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "palette/inputs.hpp"
#include "palette/pipeline.hpp"

namespace palette::cli {

class ProgressBar {
 public:
  ProgressBar(const PipelineProgress& progress, InputQueue& inputs);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

 private:
  void loop();
  void draw(double elapsed);

  const PipelineProgress& progress_;
  InputQueue& inputs_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace palette::cli
