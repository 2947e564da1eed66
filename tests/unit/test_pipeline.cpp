#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "palette/error.hpp"
#include "palette/pipeline.hpp"
#include "support/images.hpp"

namespace palette {
namespace {

std::shared_ptr<const std::vector<std::uint8_t>> png_of(const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<std::uint8_t> out;
  cv::imencode(".png", bgr, out);
  return std::make_shared<const std::vector<std::uint8_t>>(std::move(out));
}

// Inputs: image i is two stripes of colours derived from i; every 5th input is an error item,
// every 7th holds bytes that are not an image.
std::vector<InputItem> make_items(int n) {
  std::vector<InputItem> items;
  for (int i = 0; i < n; ++i) {
    InputItem it;
    it.name = "img" + std::to_string(i);
    if (i % 5 == 4) {
      it.error = "listed but missing";
    } else if (i % 7 == 6) {
      it.data =
          std::make_shared<const std::vector<std::uint8_t>>(std::vector<std::uint8_t>{1, 2, 3});
    } else {
      const std::uint32_t a = pack_rgb(10 * (i % 20), 200, 30), b = pack_rgb(250, 5 * (i % 40), 90);
      it.data = png_of(test::stripes({a, b}, {30 + i % 10, 10}, 8));
    }
    items.push_back(std::move(it));
  }
  return items;
}

class VectorSink final : public RowSink {
 public:
  std::function<void(const std::vector<Row>&)> on_write;
  std::vector<Row> rows;
  void write(const std::vector<Row>& batch) override {
    rows.insert(rows.end(), batch.begin(), batch.end());
    if (on_write) on_write(batch);
  }
};

// The rows of `items` through `backend` (k = 3; batch 0: what the backend prefers).
std::vector<Row> run_on(Backend& backend, const std::vector<InputItem>& items, int threads = 2,
                        std::size_t batch = 0, PipelineStats* stats = nullptr) {
  InputQueue q;
  for (const auto& it : items) q.push(it);
  q.close();
  PipelineOptions o;
  o.threads = threads;
  o.batch_images = batch;
  o.kmeans.k = 3;
  VectorSink sink;
  const auto s = run_pipeline(q, backend, o, sink);
  if (stats) *stats = s;
  return sink.rows;
}

std::vector<Row> run_items(const std::vector<InputItem>& items, int threads, std::size_t batch,
                           PipelineStats* stats = nullptr) {
  const auto backend = make_cpu_backend(threads);
  return run_on(*backend, items, threads, batch, stats);
}

// Row for row: the same file, error, colours and shares.
void expect_same_rows(const std::vector<Row>& a, const std::vector<Row>& b,
                      const std::string& what = "") {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].file, b[i].file) << what << ", row " << i;
    EXPECT_EQ(a[i].error, b[i].error) << what << ", row " << i;
    EXPECT_EQ(a[i].palette.colors, b[i].palette.colors) << what << ", row " << i;
    EXPECT_EQ(a[i].palette.shares_e4, b[i].palette.shares_e4) << what << ", row " << i;
  }
}

TEST(Pipeline, EveryInputGetsOneRowInOrder) {
  const auto items = make_items(60);
  PipelineStats stats;
  const auto rows = run_items(items, 2, 0, &stats);
  ASSERT_EQ(rows.size(), items.size());
  std::size_t failed = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].file, items[i].name);
    const bool should_fail = i % 5 == 4 || i % 7 == 6;
    EXPECT_EQ(!rows[i].ok(), should_fail) << i << ": " << rows[i].error;
    failed += should_fail;
    if (i % 5 == 4) {
      EXPECT_EQ(rows[i].error, "listed but missing");
    }
    if (!should_fail) {
      ASSERT_EQ(rows[i].palette.colors.size(), 2u) << i;  // two distinct colours, k = 3
      const std::uint32_t a = pack_rgb(10 * (i % 20), 200, 30);
      EXPECT_EQ(rows[i].palette.colors[0], a);  // the wider stripe first
    }
  }
  EXPECT_EQ(stats.images, items.size());
  EXPECT_EQ(stats.failed, failed);
  EXPECT_EQ(stats.ok, items.size() - failed);
}

TEST(Pipeline, ThreadsAndBatchSizeDoNotChangeTheRows) {
  const auto items = make_items(45);
  const auto a = run_items(items, 1, 1);
  for (auto [threads, batch] : {std::pair{3, 5}, std::pair{2, 0}, std::pair{4, 100}}) {
    expect_same_rows(a, run_items(items, threads, static_cast<std::size_t>(batch)),
                     std::to_string(threads) + " threads, batch " + std::to_string(batch));
  }
}

TEST(Pipeline, MemoryIsBoundedByTheWindow) {
  // Inputs are taken from the queue only a window ahead of the rows already written.
  const auto items = make_items(200);
  InputQueue q;
  for (const auto& it : items) q.push(it);
  q.close();
  PipelineOptions o;
  o.threads = 2;
  o.batch_images = 4;
  auto backend = make_cpu_backend(2);
  VectorSink sink;
  std::size_t worst_lead = 0;
  sink.on_write = [&](const std::vector<Row>&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a slow disk
    worst_lead = std::max(worst_lead, q.taken() - sink.rows.size());
  };
  run_pipeline(q, *backend, o, sink);
  EXPECT_EQ(sink.rows.size(), items.size());
  EXPECT_LE(worst_lead, 4u + 2 * 2u);  // batch + 2 per decode thread
}

TEST(Pipeline, CancellingKeepsAnOrderedPrefix) {
  const auto items = make_items(300);
  const auto full = run_items(items, 2, 4);
  InputQueue q;
  for (const auto& it : items) q.push(it);
  q.close();
  PipelineOptions o;
  o.threads = 2;
  o.batch_images = 4;
  o.kmeans.k = 3;
  auto backend = make_cpu_backend(2);
  VectorSink sink;
  std::atomic<bool> cancel{false};
  sink.on_write = [&](const std::vector<Row>&) {
    if (sink.rows.size() >= 20) cancel = true;
  };
  const auto stats = run_pipeline(q, *backend, o, sink, nullptr, &cancel);
  ASSERT_GE(sink.rows.size(), 20u);
  EXPECT_LT(sink.rows.size(), items.size());
  EXPECT_EQ(stats.images, sink.rows.size());
  for (std::size_t i = 0; i < sink.rows.size(); ++i) {
    EXPECT_EQ(sink.rows[i].file, full[i].file);
    EXPECT_EQ(sink.rows[i].palette.colors, full[i].palette.colors);
  }
}

TEST(Pipeline, CancellingWhileWaitingForInputsReturns) {
  InputQueue q;  // never closed: a producer that stalls (stdin, say)
  q.push(make_items(1)[0]);
  PipelineOptions o;
  auto backend = make_cpu_backend(1);
  VectorSink sink;
  std::atomic<bool> cancel{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  run_pipeline(q, *backend, o, sink, nullptr, &cancel);
  stopper.join();
  EXPECT_LE(sink.rows.size(), 1u);
}

// A backend that works like the CUDA one: batches are submitted, results arrive only at
// finish(), two batches in flight. It keeps pointers to the batch and result it was given.
// It can also fail like a lost GPU: its fail_submit_at-th submit() or fail_finish_at-th
// finish() (counting from 1; 0: never) throws, and so does every call after that (it is not
// healthy() any more). Or only now and then: the finish() calls numbered in `transient` throw
// (their batch is consumed) and the backend goes on working.
class DeferredBackend final : public Backend {
 public:
  int fail_submit_at = 0, fail_finish_at = 0;
  std::vector<int> transient;
  int clustered = 0;  // batches this backend clustered (finish() or fit())
  int released = 0;   // release_memory() calls

  std::string name() const override { return "deferred"; }
  bool healthy() const override { return !broken_; }
  std::string device() const override { return "test"; }
  std::size_t preferred_batch_images() const override { return 7; }
  bool low_latency() const override { return false; }
  int max_in_flight() const override { return 2; }
  void fit(const Batch& batch, const KMeansParams& params, BatchResult& out) override {
    if (broken_) fail();
    cpu_->fit(batch, params, out);
    ++clustered;
  }
  void submit(const Batch& batch, const KMeansParams& params, BatchResult& out) override {
    if (broken_ || ++submits_ == fail_submit_at) fail();
    ASSERT_LT(queue_.size(), 2u);
    queue_.push_back({&batch, params, &out, batch.points()});
  }
  void release_memory() override { ++released; }
  void finish() override {
    if (broken_ || ++finishes_ == fail_finish_at) fail();
    ASSERT_FALSE(queue_.empty());
    if (std::find(transient.begin(), transient.end(), finishes_) != transient.end()) {
      queue_.erase(queue_.begin());
      throw Error("kernel timed out");
    }
    const Job j = queue_.front();
    queue_.erase(queue_.begin());
    ASSERT_EQ(j.batch->points(), j.points);  // the batch stayed alive and untouched
    cpu_->fit(*j.batch, j.params, *j.out);
    ++clustered;
  }

 private:
  struct Job {
    const Batch* batch;
    KMeansParams params;
    BatchResult* out;
    std::size_t points;
  };
  void fail() {
    broken_ = true;
    throw Error("device lost");
  }
  std::vector<Job> queue_;
  std::unique_ptr<Backend> cpu_ = make_cpu_backend(1);
  int submits_ = 0, finishes_ = 0;
  bool broken_ = false;
};

TEST(Pipeline, AsynchronousBackendsGetTheSameRows) {
  const auto items = make_items(50);
  const auto expected = run_items(items, 2, 0);
  DeferredBackend backend;
  expect_same_rows(run_on(backend, items), expected);
}

// A backend failing mid-run (at a submit, or at a finish with two batches in flight) hands
// over to the CPU: every row as in a run that never failed, one notice of the failure.
TEST(Pipeline, AFailingBackendFallsBackToTheCpuWithTheSameRows) {
  // Batches of 7 images: 7 of them hold points (the 8th, image 49 alone, is an error row).
  const auto items = make_items(50);
  const auto expected = run_items(items, 2, 0);
  for (auto [submit_at, finish_at] :
       {std::pair{0, 1}, std::pair{0, 4}, std::pair{1, 0}, std::pair{7, 0}, std::pair{0, 7}}) {
    auto flaky = std::make_unique<DeferredBackend>();
    flaky->fail_submit_at = submit_at;
    flaky->fail_finish_at = finish_at;
    std::vector<std::string> notices;
    const auto backend = with_cpu_fallback(
        std::move(flaky), 2, [&](const std::string& error) { notices.push_back(error); });
    EXPECT_EQ(backend->name(), "deferred");
    EXPECT_EQ(backend->max_in_flight(), 2);
    const auto rows = run_on(*backend, items);
    const std::string what =
        "failing submit " + std::to_string(submit_at) + ", finish " + std::to_string(finish_at);
    expect_same_rows(rows, expected, what);
    EXPECT_EQ(notices, std::vector<std::string>{"deferred backend failed: device lost"}) << what;
    EXPECT_EQ(backend->name(), "cpu") << what;
    EXPECT_EQ(backend->max_in_flight(), 1) << what;
  }
}

// A backend that fails now and then but stays healthy: each failed batch is clustered on the
// CPU (one notice each) and the backend goes on; at the third failure it is dropped.
TEST(Pipeline, ABackendFailingNowAndThenRetriesThoseBatchesOnTheCpu) {
  const auto items = make_items(50);  // 8 batches of 7
  const auto expected = run_items(items, 2, 0);
  {
    auto flaky = std::make_unique<DeferredBackend>();
    flaky->transient = {2, 5};
    std::vector<std::string> notices;
    const auto backend = with_cpu_fallback(
        std::move(flaky), 2, [&](const std::string& error) { notices.push_back(error); });
    expect_same_rows(run_on(*backend, items), expected, "two failed batches");
    const std::string once =
        "deferred backend failed on one batch (kernel timed out): that batch is clustered on the "
        "CPU";
    EXPECT_EQ(notices, (std::vector<std::string>{once, once}));
    EXPECT_EQ(backend->name(), "deferred");  // still the primary
  }
  {
    auto flaky = std::make_unique<DeferredBackend>();
    flaky->transient = {1, 2, 3, 4, 5, 6, 7, 8};
    std::vector<std::string> notices;
    const auto backend = with_cpu_fallback(
        std::move(flaky), 2, [&](const std::string& error) { notices.push_back(error); });
    expect_same_rows(run_on(*backend, items), expected, "failing every batch");
    ASSERT_EQ(notices.size(), static_cast<std::size_t>(kMaxPrimaryFailures));
    EXPECT_EQ(notices.back(), "deferred backend failed: kernel timed out");
    EXPECT_EQ(backend->name(), "cpu");  // dropped for the rest of the run
  }
}

// Without the fallback a failing backend costs rows their palettes, never the rows.
TEST(Pipeline, AFailingBackendWithoutFallbackGivesErrorRows) {
  const auto items = make_items(50);
  DeferredBackend flaky;
  flaky.fail_finish_at = 3;
  const auto rows = run_on(flaky, items);
  ASSERT_EQ(rows.size(), items.size());
  std::size_t backend_errors = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].file, items[i].name);
    backend_errors += rows[i].error == "deferred backend failed: device lost";
  }
  EXPECT_GT(backend_errors, 0u);
  EXPECT_TRUE(rows[0].ok());  // batches finished before the failure keep their palettes
}

// A working backend behind the fallback wrapper is untouched: no notice, its own name.
TEST(Pipeline, FallbackWrapperIsTransparentWhileThePrimaryWorks) {
  const auto items = make_items(30);
  const auto expected = run_items(items, 2, 0);
  int notices = 0;
  const auto backend = with_cpu_fallback(std::make_unique<DeferredBackend>(), 2,
                                         [&](const std::string&) { ++notices; });
  expect_same_rows(run_on(*backend, items), expected);
  EXPECT_EQ(notices, 0);
  EXPECT_EQ(backend->name(), "deferred");
}

TEST(Pipeline, DecodeOnlyRunsSkipClustering) {
  const auto items = make_items(6);
  InputQueue q;
  for (const auto& it : items) q.push(it);
  q.close();
  PipelineOptions o;
  o.skip_cluster = true;
  auto backend = make_cpu_backend(1);
  VectorSink sink;
  const auto stats = run_pipeline(q, *backend, o, sink);
  ASSERT_EQ(sink.rows.size(), 6u);
  EXPECT_EQ(sink.rows[0].error, "not clustered (decode-only run)");
  EXPECT_GT(stats.decode.cpu + stats.decode.wall, 0.0);
}

TEST(Pipeline, FullyTransparentImageIsAnError) {
  cv::Mat rgba(4, 4, CV_8UC4, cv::Scalar(10, 20, 30, 0));
  cv::Mat bgra;
  cv::cvtColor(rgba, bgra, cv::COLOR_RGBA2BGRA);
  std::vector<std::uint8_t> png;
  cv::imencode(".png", bgra, png);
  InputItem it;
  it.name = "clear.png";
  it.data = std::make_shared<const std::vector<std::uint8_t>>(png);
  ImagePoints points;
  std::string error;
  EXPECT_FALSE(load_points(it, PipelineOptions{}, points, error));
  EXPECT_NE(error.find("alpha"), std::string::npos);
}

// --devices: several devices as one backend. The batches are spread over them, rows in input
// order as on one device.
TEST(Pipeline, SeveralDevicesShareTheBatchesWithTheSameRows) {
  const auto items = make_items(50);  // 8 batches of 7, 7 of them with points
  const auto expected = run_items(items, 2, 0);
  std::vector<DeferredBackend*> raw;
  std::vector<DeviceBackend> devices;
  for (const int id : {0, 2, 3}) {
    auto d = std::make_unique<DeferredBackend>();
    raw.push_back(d.get());
    devices.push_back({id, std::move(d)});
  }
  std::vector<std::string> notices;
  const auto backend =
      with_devices(std::move(devices), 2, [&](const std::string& n) { notices.push_back(n); });
  EXPECT_EQ(backend->name(), "deferred");
  EXPECT_EQ(backend->device(), "3 devices: test, test, test");
  EXPECT_EQ(backend->max_in_flight(), 6);
  EXPECT_EQ(backend->preferred_batch_images(), 7u);
  expect_same_rows(run_on(*backend, items), expected);
  int total = 0;
  for (const auto* d : raw) {
    EXPECT_GE(d->clustered, 2);  // 7 batches over 3 devices
    total += d->clustered;
  }
  EXPECT_EQ(total, 7);
  EXPECT_TRUE(notices.empty());
}

// A device lost mid-run (at a submit, or at a finish with batches in flight) hands its batches
// to the other devices: every row as in a run that never failed, one notice; when every device
// is lost, the CPU takes over. A device failing now and then hands that batch on and goes on.
// Devices 0 and 1 behind with_devices(), its notices kept in `notices` (which must outlive it).
std::unique_ptr<Backend> two_devices(std::unique_ptr<DeferredBackend> a,
                                     std::unique_ptr<DeferredBackend> b,
                                     std::vector<std::string>& notices) {
  std::vector<DeviceBackend> devices;
  devices.push_back({0, std::move(a)});
  devices.push_back({1, std::move(b)});
  return with_devices(std::move(devices), 2,
                      [&notices](const std::string& n) { notices.push_back(n); });
}

// release_memory() (a server between requests) reaches every backend the wrappers hold: each
// device of with_devices(), and the primary of with_cpu_fallback().
TEST(Pipeline, ReleasingMemoryReachesEveryWrappedBackend) {
  auto a = std::make_unique<DeferredBackend>();
  auto b = std::make_unique<DeferredBackend>();
  DeferredBackend* pa = a.get();
  DeferredBackend* pb = b.get();
  std::vector<std::string> notices;
  const auto devices = two_devices(std::move(a), std::move(b), notices);
  devices->release_memory();
  EXPECT_EQ(pa->released, 1);
  EXPECT_EQ(pb->released, 1);
  auto c = std::make_unique<DeferredBackend>();
  DeferredBackend* pc = c.get();
  const auto fallback = with_cpu_fallback(std::move(c), 1);
  fallback->release_memory();
  fallback->release_memory();
  EXPECT_EQ(pc->released, 2);
}

TEST(Pipeline, AFailingDeviceHandsItsBatchesToTheOthers) {
  const auto items = make_items(50);
  const auto expected = run_items(items, 2, 0);
  struct Case {
    int submit_at, finish_at;  // for device 1
  };
  for (const Case c : {Case{0, 1}, Case{0, 2}, Case{1, 0}, Case{3, 0}}) {
    const std::string what = "device 1 failing at submit " + std::to_string(c.submit_at) +
                             ", finish " + std::to_string(c.finish_at);
    auto a = std::make_unique<DeferredBackend>(), b = std::make_unique<DeferredBackend>();
    DeferredBackend* first = a.get();
    b->fail_submit_at = c.submit_at;
    b->fail_finish_at = c.finish_at;
    std::vector<std::string> notices;
    const auto backend = two_devices(std::move(a), std::move(b), notices);
    expect_same_rows(run_on(*backend, items), expected, what);
    EXPECT_EQ(notices,
              std::vector<std::string>{
                  "deferred device 1 (test) failed: device lost; its batches go to the "
                  "other devices"})
        << what;
    EXPECT_EQ(backend->max_in_flight(), 2) << what;  // device 0 alone
    EXPECT_EQ(backend->name(), "deferred") << what;
    EXPECT_GE(first->clustered, 4) << what;
  }
  {
    // Every device lost: the CPU.
    auto a = std::make_unique<DeferredBackend>(), b = std::make_unique<DeferredBackend>();
    a->fail_finish_at = 2;
    b->fail_submit_at = 3;
    std::vector<std::string> notices;
    const auto backend = two_devices(std::move(a), std::move(b), notices);
    expect_same_rows(run_on(*backend, items), expected, "both lost");
    ASSERT_EQ(notices.size(), 2u);
    EXPECT_TRUE(notices.back().ends_with("; its batches go to the CPU")) << notices.back();
    EXPECT_EQ(backend->name(), "cpu");
  }
  {
    // Now and then: the batch goes to the other device, and the device stays.
    auto a = std::make_unique<DeferredBackend>(), b = std::make_unique<DeferredBackend>();
    b->transient = {1};
    std::vector<std::string> notices;
    const auto backend = two_devices(std::move(a), std::move(b), notices);
    expect_same_rows(run_on(*backend, items), expected, "transient");
    EXPECT_EQ(notices, std::vector<std::string>{
                           "deferred device 1 (test) failed on one batch (kernel timed out): that "
                           "batch goes to another device"});
    EXPECT_EQ(backend->max_in_flight(), 4);
  }
}

}  // namespace
}  // namespace palette
