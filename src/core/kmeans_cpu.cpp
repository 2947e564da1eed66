// K-means on the CPU: the reference implementation (one image at a time) and the CPU backend
// (many images in parallel). Every arithmetic step that decides an outcome is either exact
// integer arithmetic or one of the shared helpers in kmeans_math.hpp, so the CUDA backend can
// reproduce it bit for bit.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#include "palette/backend.hpp"
#include "palette/clock.hpp"
#include "palette/error.hpp"
#include "palette/kmeans.hpp"
#include "palette/kmeans_math.hpp"
#include "palette/thread_pool.hpp"

namespace palette {

void validate(const KMeansParams& p) {
  if (p.k < 1 || p.k > kMaxColors) {
    throw Error("k must be between 1 and " + std::to_string(kMaxColors));
  }
  if (p.max_iter < 1 || p.max_iter > 10000) throw Error("max-iter must be between 1 and 10000");
  if (!(p.tol >= 0.0) || !std::isfinite(p.tol)) throw Error("tol must be a finite number >= 0");
}

float shift_limit2(const KMeansParams& params, ColorSpace space) {
  const double units = params.tol * step_units(space);
  return static_cast<float>(units * units);
}

void BatchResult::reset(std::size_t images, int k_) {
  k = k_;
  host_cpu_seconds = 0;
  device_seconds = 0;
  clusters.assign(images * static_cast<std::size_t>(k_), ClusterStats{});
  count.assign(images, 0);
  iterations.assign(images, 0);
}

namespace {

// Not under ThreadSanitizer: its instrumentation of the ifunc resolver runs before the runtime
// is set up, and the process crashes at load.
#ifdef __SANITIZE_THREAD__
#define PALETTE_SIMD_CLONES
#else
#define PALETTE_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#endif

// Sum over points of weight * min(closest, d(point, c)): the potential if c became a centre.
PALETTE_SIMD_CLONES std::uint64_t potential_with(const PointsView& p, const std::uint32_t* closest,
                                                 std::size_t c) {
  const int cx = p.x[c], cy = p.y[c], cz = p.z[c];
  std::uint64_t pot = 0;
  for (std::size_t i = 0; i < p.n; ++i) {
    const std::uint32_t d = math::dist2_exact(p.x[i], p.y[i], p.z[i], cx, cy, cz);
    pot += math::potential_term(p.weight[i], closest[i], d);
  }
  return pot;
}

// closest[i] = min(closest[i], d(point i, c)), or just d(point i, c) when `first`.
PALETTE_SIMD_CLONES void update_closest(const PointsView& p, std::uint32_t* closest, std::size_t c,
                                        bool first) {
  const int cx = p.x[c], cy = p.y[c], cz = p.z[c];
  for (std::size_t i = 0; i < p.n; ++i) {
    const std::uint32_t d = math::dist2_exact(p.x[i], p.y[i], p.z[i], cx, cy, cz);
    closest[i] = first ? d : std::min(closest[i], d);
  }
}

// Greedy k-means++ (Arthur & Vassilvitskii 2007; scikit-learn's variant with 2 + ln k trials),
// on exact integer squared distances, weighted by pixel counts. Needs n > k. Writes the chosen
// point indices to `centers`.
void seed_kmeanspp(const PointsView& p, int k, std::uint64_t seed, KMeansScratch& s, int* centers) {
  const std::size_t n = p.n;
  auto& closest = s.closest;
  auto& cum = s.cum;
  closest.resize(n);
  cum.resize(n);

  // First centre: a point drawn with probability proportional to its weight.
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < n; ++i) cum[i] = total += p.weight[i];
  const std::uint64_t r = math::kmeanspp_target(seed, 0, 0, total);
  const auto c0 =
      static_cast<std::size_t>(std::upper_bound(cum.begin(), cum.end(), r) - cum.begin());
  centers[0] = static_cast<int>(c0);
  update_closest(p, closest.data(), c0, true);

  const int trials = math::kmeanspp_trials(k);
  for (int c = 1; c < k; ++c) {
    std::uint64_t pot = 0;
    for (std::size_t i = 0; i < n; ++i) {
      cum[i] = pot += static_cast<std::uint64_t>(p.weight[i]) * closest[i];
    }
    // pot > 0 here: n > k > c points are distinct and only c of them are centres, so the draw
    // never picks a point that already is a centre.
    std::size_t best_cand = n;
    std::uint64_t best_pot = 0;
    for (int t = 0; t < trials; ++t) {
      const std::uint64_t rt = math::kmeanspp_target(seed, c, t, pot);
      const auto cand =
          static_cast<std::size_t>(std::upper_bound(cum.begin(), cum.end(), rt) - cum.begin());
      const std::uint64_t cand_pot = potential_with(p, closest.data(), cand);
      if (math::better_candidate(t, cand_pot, best_pot)) {
        best_cand = cand;
        best_pot = cand_pot;
      }
    }
    centers[c] = static_cast<int>(best_cand);
    update_closest(p, closest.data(), best_cand, false);
  }
}

// Nearest centroid of every point, lowest index on ties, and its squared distance, into `next`
// and `best`; the indices whose nearest centroid differs from `label` are appended to
// `changed` (returns their count). Eight points at a time in vector registers; the arithmetic
// per lane is exactly math::dist2's.
PALETTE_SIMD_CLONES std::size_t assign(std::size_t n, const float* px, const float* py,
                                       const float* pz, int k, const float* cx, const float* cy,
                                       const float* cz, const std::int32_t* label, float* best,
                                       std::int32_t* next, std::uint32_t* changed) {
  typedef float v8f __attribute__((vector_size(32)));
  typedef std::int32_t v8i __attribute__((vector_size(32)));
  std::size_t n_changed = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    v8f x, y, z;
    std::memcpy(&x, px + i, sizeof x);
    std::memcpy(&y, py + i, sizeof y);
    std::memcpy(&z, pz + i, sizeof z);
    v8f dx = x - cx[0], dy = y - cy[0], dz = z - cz[0];
    v8f b = (dx * dx + dy * dy) + dz * dz;
    v8i l = v8i{} + 0;
    for (int j = 1; j < k; ++j) {
      dx = x - cx[j];
      dy = y - cy[j];
      dz = z - cz[j];
      const v8f d = (dx * dx + dy * dy) + dz * dz;
      const v8i closer = d < b;
      b = closer ? d : b;
      l = closer ? v8i{} + j : l;
    }
    std::memcpy(best + i, &b, sizeof b);
    std::memcpy(next + i, &l, sizeof l);
    v8i old;
    std::memcpy(&old, label + i, sizeof old);
    const v8i diff = l != old;
    std::uint64_t any[4];
    std::memcpy(any, &diff, sizeof any);
    if (any[0] | any[1] | any[2] | any[3]) {
      for (int lane = 0; lane < 8; ++lane) {
        if (diff[lane]) changed[n_changed++] = static_cast<std::uint32_t>(i + lane);
      }
    }
  }
  for (; i < n; ++i) {
    float b = math::dist2(px[i], py[i], pz[i], cx[0], cy[0], cz[0]);
    std::int32_t l = 0;
    for (int j = 1; j < k; ++j) {
      math::keep_nearer(math::dist2(px[i], py[i], pz[i], cx[j], cy[j], cz[j]), j, b, l);
    }
    best[i] = b;
    next[i] = l;
    if (l != label[i]) changed[n_changed++] = static_cast<std::uint32_t>(i);
  }
  return n_changed;
}

}  // namespace

void kmeanspp_seeds(const PointsView& points, int k, std::uint64_t seed, KMeansScratch& scratch,
                    int* centers) {
  const auto n = static_cast<std::uint32_t>(points.n);
  if (n <= math::kSeedSample) {
    seed_kmeanspp(points, k, seed, scratch, centers);
    return;
  }
  // Seed on the evenly spread subsample, then map the chosen points back.
  auto& sub = scratch.sample;
  sub.x.resize(math::kSeedSample);
  sub.y.resize(math::kSeedSample);
  sub.z.resize(math::kSeedSample);
  sub.weight.resize(math::kSeedSample);
  for (std::uint32_t j = 0; j < math::kSeedSample; ++j) {
    const std::uint32_t i = math::seed_sample_index(j, n);
    sub.x[j] = points.x[i];
    sub.y[j] = points.y[i];
    sub.z[j] = points.z[i];
    sub.weight[j] = points.weight[i];
  }
  const PointsView view{sub.x.data(), sub.y.data(), sub.z.data(), sub.weight.data(),
                        math::kSeedSample};
  seed_kmeanspp(view, k, seed, scratch, centers);
  for (int c = 0; c < k; ++c) {
    centers[c] =
        static_cast<int>(math::seed_sample_index(static_cast<std::uint32_t>(centers[c]), n));
  }
}

int kmeans_image(const PointsView& p, const KMeansParams& params, float limit2, ClusterStats* out,
                 int& iterations, KMeansScratch& s) {
  const std::size_t n = p.n;
  const int k = params.k;
  iterations = 0;
  if (n == 0) return 0;
  if (n <= static_cast<std::size_t>(k)) {
    // Every distinct colour is its own cluster.
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t w = p.weight[i];
      out[i] = ClusterStats{{w * p.x[i], w * p.y[i], w * p.z[i]},
                            static_cast<std::uint64_t>(w),
                            static_cast<std::uint32_t>(i),
                            0};
    }
    return static_cast<int>(n);
  }

  std::array<int, kMaxColors> seeds{};
  kmeanspp_seeds(p, k, params.seed, s, seeds.data());
  lloyd_image(p, params, limit2, seeds.data(), out, iterations, s);
  return k;
}

void lloyd_image(const PointsView& p, const KMeansParams& params, float limit2, const int* seeds,
                 ClusterStats* out, int& iterations, KMeansScratch& s) {
  const std::size_t n = p.n;
  const int k = params.k;
  iterations = 0;
  s.px.resize(n);
  s.py.resize(n);
  s.pz.resize(n);
  s.best.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    s.px[i] = p.x[i];
    s.py[i] = p.y[i];
    s.pz[i] = p.z[i];
  }
  std::array<float, kMaxColors> cx{}, cy{}, cz{};
  for (int j = 0; j < k; ++j) {
    cx[j] = p.x[seeds[j]];
    cy[j] = p.y[seeds[j]];
    cz[j] = p.z[seeds[j]];
  }

  // Cluster sums are kept exactly in integers and updated only for points that change cluster:
  // the same sums a full recount gives, at a fraction of the cost once labels settle.
  std::array<std::uint32_t, kMaxColors> members{};
  auto move = [&](std::size_t i, int from, int to) {
    const std::int64_t w = p.weight[i];
    const std::int64_t wx = w * p.x[i], wy = w * p.y[i], wz = w * p.z[i];
    if (from >= 0) {
      ClusterStats& a = out[from];
      a.sum[0] -= wx;
      a.sum[1] -= wy;
      a.sum[2] -= wz;
      a.weight -= static_cast<std::uint64_t>(w);
      --members[from];
    }
    ClusterStats& b = out[to];
    b.sum[0] += wx;
    b.sum[1] += wy;
    b.sum[2] += wz;
    b.weight += static_cast<std::uint64_t>(w);
    ++members[to];
  };
  for (int j = 0; j < k; ++j) out[j] = ClusterStats{{0, 0, 0}, 0, 0, 0};
  s.label.assign(n, -1);
  s.next.resize(n);
  s.changed.resize(n);
  std::int32_t* label = s.label.data();

  for (int it = 1; it <= params.max_iter; ++it) {
    iterations = it;
    const std::size_t n_changed =
        assign(n, s.px.data(), s.py.data(), s.pz.data(), k, cx.data(), cy.data(), cz.data(), label,
               s.best.data(), s.next.data(), s.changed.data());
    for (std::size_t c = 0; c < n_changed; ++c) {
      const std::uint32_t i = s.changed[c];
      move(i, label[i], s.next[i]);
      label[i] = s.next[i];
    }

    // The empty-cluster rule (kmeans_math.hpp). n > k guarantees a cluster that can spare a
    // point.
    for (int e = 0; e < k; ++e) {
      if (members[e] != 0) continue;
      std::uint64_t key = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (members[label[i]] >= math::kMinMembersToGive && s.best[i] >= 0.0f) {
          key = std::max(key, math::refill_key(s.best[i], static_cast<std::uint32_t>(i)));
        }
      }
      const std::size_t far = math::argmax_index(key);
      move(far, label[far], e);
      label[far] = e;
      s.best[far] = -1.0f;  // never move the same point twice
    }

    float shift = 0.0f;
    for (int j = 0; j < k; ++j) {
      shift = std::max(shift, math::update_centroid(out[j].sum[0], out[j].sum[1], out[j].sum[2],
                                                    out[j].weight, cx[j], cy[j], cz[j]));
    }
    if (shift <= limit2) break;
  }

  // The representative point of each final cluster (math::mode_key).
  std::array<std::uint64_t, kMaxColors> mode{};
  for (std::size_t i = 0; i < n; ++i) {
    const int l = label[i];
    const std::uint64_t key = math::mode_key(p.weight[i], static_cast<std::uint32_t>(i));
    if (key > mode[l]) mode[l] = key;  // a store only when it changes
  }
  for (int j = 0; j < k; ++j) out[j].mode = math::argmax_index(mode[j]);
}

namespace {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : pool_(threads), scratch_(pool_.threads()) {}

  std::string name() const override { return "cpu"; }
  std::string device() const override {
    return cpu_model() + " (" + std::to_string(pool_.threads()) + " threads)";
  }
  std::size_t preferred_batch_images() const override {
    return static_cast<std::size_t>(pool_.threads()) * 8;
  }
  bool low_latency() const override { return true; }
  void release_memory() override {
    for (auto& s : scratch_) s = KMeansScratch{};
  }

  void fit(const Batch& batch, const KMeansParams& params, BatchResult& out) override {
    validate(params);
    const std::size_t images = batch.images();
    out.reset(images, params.k);
    const float limit2 = shift_limit2(params, batch.space);
    std::vector<double> cpu(pool_.threads(), 0.0);
    pool_.parallel_for(images, [&](std::size_t i, int worker) {
      const double c0 = thread_cpu_seconds();
      const std::size_t begin = batch.offsets[i];
      const PointsView view{batch.x.data() + begin, batch.y.data() + begin, batch.z.data() + begin,
                            batch.weight.data() + begin, batch.points_of(i)};
      int iterations = 0;
      const int count = kmeans_image(view, params, limit2, &out.clusters[i * params.k], iterations,
                                     scratch_[worker]);
      out.count[i] = static_cast<std::uint16_t>(count);
      out.iterations[i] = static_cast<std::uint16_t>(iterations);
      cpu[worker] += thread_cpu_seconds() - c0;
    });
    for (double c : cpu) out.host_cpu_seconds += c;
  }

 private:
  ThreadPool pool_;
  std::vector<KMeansScratch> scratch_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(std::max(1, threads));
}

namespace {

std::string read_cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto v = line.substr(colon + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        return v;
      }
    }
  }
  return "unknown CPU";
}

}  // namespace

std::string cpu_model() {
  static const std::string model = read_cpu_model();  // read once
  return model;
}

}  // namespace palette
