#pragma once
// Clocks for stage timings.

#include <time.h>

namespace palette {

inline double clock_seconds(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
/// Monotonic wall-clock seconds.
inline double wall_seconds() { return clock_seconds(CLOCK_MONOTONIC); }
/// CPU seconds used by the calling thread.
inline double thread_cpu_seconds() { return clock_seconds(CLOCK_THREAD_CPUTIME_ID); }
/// CPU seconds used by the whole process.
inline double process_cpu_seconds() { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }

}  // namespace palette
