// The CPUs a process takes as one of several that share a node (mpirun's default binding
// replaced by an even share, src/cli/extract.cpp).

#include <gtest/gtest.h>
#include <sched.h>

#include <numeric>
#include <set>
#include <vector>

#include "palette/thread_pool.hpp"

namespace palette {
namespace {

std::vector<int> range(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(CpuShare, EvenBlocksCoverEveryCpuOnce) {
  EXPECT_EQ(cpu_share(range(16), 0, 2), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(cpu_share(range(16), 1, 2), (std::vector<int>{8, 9, 10, 11, 12, 13, 14, 15}));
  EXPECT_EQ(cpu_share(range(4), 0, 1), range(4));
  for (const int n : {1, 5, 16, 63}) {
    for (const int count : {1, 2, 3, 4, 7}) {
      if (n < count) continue;
      std::set<int> seen;
      std::size_t smallest = n, largest = 0;
      for (int i = 0; i < count; ++i) {
        const auto share = cpu_share(range(n), i, count);
        smallest = std::min(smallest, share.size());
        largest = std::max(largest, share.size());
        for (const int c : share) EXPECT_TRUE(seen.insert(c).second) << c << " twice";
      }
      EXPECT_EQ(seen.size(), static_cast<std::size_t>(n)) << n << " CPUs, " << count;
      EXPECT_LE(largest - smallest, 1u) << n << " CPUs, " << count;
    }
  }
}

TEST(CpuShare, TakesTheCpusInOrderAndSharesWhenTooFew) {
  // A cpuset's CPUs, not from 0 and not in order.
  EXPECT_EQ(cpu_share({12, 4, 8, 6}, 0, 2), (std::vector<int>{4, 6}));
  EXPECT_EQ(cpu_share({12, 4, 8, 6}, 1, 2), (std::vector<int>{8, 12}));
  EXPECT_EQ(cpu_share({3, 5}, 0, 3), (std::vector<int>{3}));
  EXPECT_EQ(cpu_share({3, 5}, 1, 3), (std::vector<int>{5}));
  EXPECT_EQ(cpu_share({3, 5}, 2, 3), (std::vector<int>{3}));
  EXPECT_TRUE(cpu_share({}, 0, 2).empty());
}

TEST(CpuShare, TheOnlyProcessTakesEveryCpuItMayUse) {
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof before, &before), 0);
  // Bound to one CPU, as mpirun binds a process.
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &before)) {
      CPU_SET(c, &one);
      break;
    }
  }
  if (sched_setaffinity(0, sizeof one, &one) != 0) GTEST_SKIP() << "no CPU affinity here";
  ASSERT_EQ(available_cpus(), 1);
  const CpuShare share = take_cpu_share(0, 1);
  const int after = available_cpus();
  ASSERT_EQ(sched_setaffinity(0, sizeof before, &before), 0);
  EXPECT_EQ(share.before, 1);
  EXPECT_GE(share.node, CPU_COUNT(&before));  // every CPU the cpuset allows
  EXPECT_EQ(share.now, share.node);
  EXPECT_EQ(after, share.now);
  // Half of them as the first of two processes.
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const CpuShare half = take_cpu_share(0, 2);
  const int after_half = available_cpus();
  ASSERT_EQ(sched_setaffinity(0, sizeof before, &before), 0);
  EXPECT_EQ(half.now, std::max(1, half.node / 2));
  EXPECT_EQ(after_half, half.now);
}

}  // namespace
}  // namespace palette
