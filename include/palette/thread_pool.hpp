#pragma once
// A fixed pool of worker threads for data-parallel loops.

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace palette {

/// parallel_for over [0, n) on `threads` threads: the calling thread plus threads-1 workers.
/// Items are claimed dynamically. One loop at a time; the pool is not re-entrant. The workers
/// start with the first loop of more than one item.
class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  /// Calls fn(i, worker) for every i in [0, n); worker is in [0, threads()). Blocks until all
  /// are done. If fn throws, the first exception is rethrown here after the loop drains.
  void parallel_for(std::size_t n, const std::function<void(std::size_t, int)>& fn);

 private:
  void start_workers();
  void work(int worker);
  void run_items(int worker);

  int threads_;
  bool started_ = false;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(std::size_t, int)>* fn_ = nullptr;
  std::size_t n_ = 0, next_ = 0;
  std::size_t generation_ = 0;
  int active_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

/// Number of CPUs this process may run on (affinity mask), at least 1.
int available_cpus();

/// Share `index` of `count` processes that split `cpus` between them: an even block of the CPUs
/// in ascending order (sizes differ by at most one), or one CPU, shared, when there are fewer
/// CPUs than processes. Empty when `cpus` is.
std::vector<int> cpu_share(std::vector<int> cpus, int index, int count);

/// Moves this thread (and the threads it starts from then on) to share `index` of `count` of
/// the CPUs this process may be given (every CPU its cpuset allows, whatever it is bound to now).
/// Returns {CPUs it could run on before, CPUs of the node, CPUs it runs on now}; nothing changes
/// (and the last equals the first) where the system refuses.
struct CpuShare {
  int before = 0, node = 0, now = 0;
};
CpuShare take_cpu_share(int index, int count);

}  // namespace palette
