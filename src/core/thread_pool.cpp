#include "palette/thread_pool.hpp"

#include <sched.h>

#include <algorithm>

namespace palette {

ThreadPool::ThreadPool(int threads) : threads_(std::max(1, threads)) {}

void ThreadPool::start_workers() {
  // On the first loop that can use them: a run of one image (or a command that never loops)
  // does not pay for starting and joining threads.
  started_ = true;
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_items(int worker) {
  for (;;) {
    std::size_t i;
    {
      std::lock_guard lock(mutex_);
      if (next_ >= n_) return;
      i = next_++;
    }
    try {
      (*fn_)(i, worker);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
      next_ = n_;  // stop handing out work
    }
  }
}

void ThreadPool::work(int worker) {
  std::size_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      ++active_;
    }
    run_items(worker);
    {
      std::lock_guard lock(mutex_);
      if (--active_ == 0) done_.notify_all();
    }
  }
}

void ThreadPool::parallel_for(std::size_t n, const std::function<void(std::size_t, int)>& fn) {
  if (n == 0) return;
  {
    std::lock_guard lock(mutex_);
    fn_ = &fn;
    n_ = n;
    next_ = 0;
    error_ = nullptr;
    ++generation_;
  }
  if (n > 1 && !started_) start_workers();
  if (n > 1) wake_.notify_all();
  run_items(0);
  std::exception_ptr error;
  {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return active_ == 0; });
    fn_ = nullptr;
    error = error_;
  }
  if (error) std::rethrow_exception(error);
}

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::vector<int> cpu_share(std::vector<int> cpus, int index, int count) {
  if (cpus.empty() || count < 1) return cpus;
  std::sort(cpus.begin(), cpus.end());
  const std::size_t n = cpus.size(), c = static_cast<std::size_t>(count),
                    i = static_cast<std::size_t>(index < 0 ? 0 : index) % c;
  if (n < c) return {cpus[i % n]};
  return std::vector<int>(cpus.begin() + static_cast<std::ptrdiff_t>(i * n / c),
                          cpus.begin() + static_cast<std::ptrdiff_t>((i + 1) * n / c));
}

CpuShare take_cpu_share(int index, int count) {
  CpuShare share;
  cpu_set_t before;
  if (sched_getaffinity(0, sizeof before, &before) != 0) return share;
  share.before = share.now = CPU_COUNT(&before);
  // Asked for every CPU, the kernel gives those the cpuset allows: the node's, for this job.
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &all);
  cpu_set_t node;
  if (sched_setaffinity(0, sizeof all, &all) != 0 ||
      sched_getaffinity(0, sizeof node, &node) != 0) {
    sched_setaffinity(0, sizeof before, &before);
    return share;
  }
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &node)) cpus.push_back(c);
  }
  share.node = static_cast<int>(cpus.size());
  cpu_set_t mine;
  CPU_ZERO(&mine);
  for (const int c : cpu_share(cpus, index, count)) CPU_SET(c, &mine);
  if (sched_setaffinity(0, sizeof mine, &mine) != 0) {
    sched_setaffinity(0, sizeof before, &before);
    return share;
  }
  share.now = CPU_COUNT(&mine);
  return share;
}

}  // namespace palette
