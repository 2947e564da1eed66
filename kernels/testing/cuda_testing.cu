#include <algorithm>

#include "cuda_check.cuh"
#include "cuda_memory.cuh"
#include "cuda_testing.hpp"
#include "kmeans_image.cuh"
#include "kmeans_kernels.cuh"
#include "palette/error.hpp"

namespace palette::cuda_testing {
namespace {

// The seeding stage alone: the chosen point indices go to clusters[img * k + j].mode.
__global__ void __launch_bounds__(cuda::image::kThreads)
    seed_kernel(cuda::DevicePoints P, cuda::DeviceScratch S, int k, std::uint64_t seed,
                cuda::DeviceResults R) {
  __shared__ cuda::image::Shared sh;
  const cuda::image::Image im = cuda::image::image_of(P, S, R, k, blockIdx.x);
  if (im.n <= static_cast<std::uint32_t>(k)) return;
  cuda::image::seed(sh, im, k, seed);
  const int tid = static_cast<int>(threadIdx.x);
  if (tid < k) {
    im.out[tid] = ClusterStats{{0, 0, 0}, 0, static_cast<std::uint32_t>(sh.centre[tid]), 0};
  }
  if (tid == 0) {
    R.count[blockIdx.x] = static_cast<std::uint16_t>(k);
    R.iterations[blockIdx.x] = 0;
  }
}

void launch_seeding(const cuda::DevicePoints& points, const cuda::DeviceScratch& scratch,
                    const KMeansParams& params, const cuda::DeviceResults& out,
                    cudaStream_t stream) {
  if (points.images == 0) return;
  seed_kernel<<<points.images, cuda::image::kThreads, 0, stream>>>(points, scratch, params.k,
                                                                   params.seed, out);
  PALETTE_CUDA_CHECK_LAUNCH();
}

struct Uploaded {
  cuda::DeviceBuffer<std::int16_t> x, y, z;
  cuda::DeviceBuffer<std::uint32_t> w, off;
  cuda::DeviceBuffer<cuda::SeedPoint> sample;
  cuda::DeviceBuffer<std::uint8_t> label;
  cuda::DeviceBuffer<ClusterStats> clusters;
  cuda::DeviceBuffer<std::uint16_t> count, iterations;
};

template <class T>
void upload(cuda::DeviceBuffer<T>& d, const std::vector<T>& h, std::size_t padding = 0) {
  d.reserve(std::max<std::size_t>(h.size() + padding, 1));
  if (!h.empty()) {
    PALETTE_CUDA_TRY(cudaMemcpy(d.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
}

void upload_all(Uploaded& u, const Batch& batch, const KMeansParams& params) {
  upload(u.x, batch.x, cuda::kPointPadding);
  upload(u.y, batch.y, cuda::kPointPadding);
  upload(u.z, batch.z, cuda::kPointPadding);
  upload(u.w, batch.weight, cuda::kPointPadding);
  upload(u.off, batch.offsets);
  const std::size_t n = std::max<std::size_t>(batch.points(), 1);
  u.sample.reserve(n);
  u.label.reserve(n);
  const std::size_t images = batch.images();
  u.clusters.reserve(std::max<std::size_t>(images * params.k, 1));
  u.count.reserve(std::max<std::size_t>(images, 1));
  u.iterations.reserve(std::max<std::size_t>(images, 1));
}

// The results of the last launch into r.
void download(const Uploaded& u, std::size_t images, int k, BatchResult& r) {
  r.reset(images, k);
  if (images == 0) return;
  PALETTE_CUDA_TRY(cudaMemcpy(r.clusters.data(), u.clusters.data(),
                              r.clusters.size() * sizeof(ClusterStats), cudaMemcpyDeviceToHost));
  PALETTE_CUDA_TRY(cudaMemcpy(r.count.data(), u.count.data(), images * sizeof(std::uint16_t),
                              cudaMemcpyDeviceToHost));
  PALETTE_CUDA_TRY(cudaMemcpy(r.iterations.data(), u.iterations.data(),
                              images * sizeof(std::uint16_t), cudaMemcpyDeviceToHost));
}

BatchResult launch(const Batch& batch, const KMeansParams& params, int device, bool seed_only,
                   LloydVariant lloyd) {
  validate(params);
  PALETTE_CUDA_TRY(cudaSetDevice(device));
  Uploaded u;
  upload_all(u, batch, params);
  const std::size_t images = batch.images();
  const cuda::DevicePoints dp{u.x.data(), u.y.data(),   u.z.data(),
                              u.w.data(), u.off.data(), static_cast<std::uint32_t>(images)};
  const cuda::DeviceScratch scratch{u.sample.data(), u.label.data()};
  const cuda::DeviceResults res{u.clusters.data(), u.count.data(), u.iterations.data()};
  if (seed_only) {
    launch_seeding(dp, scratch, params, res, nullptr);
  } else {
    cuda::launch_kmeans_batch(dp, scratch, params, shift_limit2(params, batch.space), res, nullptr,
                              lloyd);
  }
  PALETTE_CUDA_TRY(cudaDeviceSynchronize());
  BatchResult r;
  download(u, images, params.k, r);
  return r;
}

}  // namespace

KernelTiming time_kernel(const Batch& batch, const KMeansParams& params, int device, int reps,
                         LloydVariant lloyd, bool seed_only, BatchResult* result) {
  validate(params);
  PALETTE_CUDA_TRY(cudaSetDevice(device));
  Uploaded u;
  upload_all(u, batch, params);
  const cuda::DevicePoints dp{u.x.data(), u.y.data(),   u.z.data(),
                              u.w.data(), u.off.data(), static_cast<std::uint32_t>(batch.images())};
  const cuda::DeviceScratch scratch{u.sample.data(), u.label.data()};
  const cuda::DeviceResults res{u.clusters.data(), u.count.data(), u.iterations.data()};
  const float limit2 = shift_limit2(params, batch.space);
  cuda::Stream stream;
  cuda::Event start, stop;
  std::vector<double> ms;
  for (int r = 0; r <= reps; ++r) {  // r == 0: warm-up
    PALETTE_CUDA_TRY(cudaEventRecord(start.get(), stream.get()));
    if (seed_only) {
      launch_seeding(dp, scratch, params, res, stream.get());
    } else {
      cuda::launch_kmeans_batch(dp, scratch, params, limit2, res, stream.get(), lloyd);
    }
    PALETTE_CUDA_TRY(cudaEventRecord(stop.get(), stream.get()));
    PALETTE_CUDA_TRY(cudaEventSynchronize(stop.get()));
    float t = 0;
    PALETTE_CUDA_TRY(cudaEventElapsedTime(&t, start.get(), stop.get()));
    if (r > 0) ms.push_back(t);
  }
  BatchResult local;
  BatchResult& r = result != nullptr ? *result : local;
  download(u, batch.images(), params.k, r);
  const std::vector<std::uint16_t>& iters = r.iterations;
  KernelTiming t;
  std::sort(ms.begin(), ms.end());
  t.median_ms = ms.empty() ? 0 : ms[ms.size() / 2];
  t.min_ms = ms.empty() ? 0 : ms.front();
  double sum = 0;
  for (auto v : iters) sum += v;
  t.mean_iterations = iters.empty() ? 0 : sum / static_cast<double>(iters.size());
  return t;
}

double copy_bandwidth(int device, std::size_t bytes) {
  PALETTE_CUDA_TRY(cudaSetDevice(device));
  cuda::DeviceBuffer<std::uint8_t> a(bytes), b(bytes);
  PALETTE_CUDA_TRY(cudaMemset(a.data(), 1, bytes));
  cuda::Event start, stop;
  std::vector<double> ms;
  for (int r = 0; r < 6; ++r) {
    PALETTE_CUDA_TRY(cudaEventRecord(start.get()));
    PALETTE_CUDA_TRY(cudaMemcpy(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
    PALETTE_CUDA_TRY(cudaEventRecord(stop.get()));
    PALETTE_CUDA_TRY(cudaEventSynchronize(stop.get()));
    float t = 0;
    PALETTE_CUDA_TRY(cudaEventElapsedTime(&t, start.get(), stop.get()));
    if (r > 0) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  return 2.0 * static_cast<double>(bytes) / (ms[ms.size() / 2] / 1000.0);
}

std::vector<std::vector<int>> seeds(const Batch& batch, const KMeansParams& params, int device) {
  const BatchResult r = launch(batch, params, device, true, LloydVariant::kColumns);
  std::vector<std::vector<int>> out(batch.images());
  for (std::size_t i = 0; i < batch.images(); ++i) {
    if (batch.points_of(i) <= static_cast<std::size_t>(params.k)) continue;
    for (int j = 0; j < params.k; ++j) {
      out[i].push_back(static_cast<int>(r.clusters[i * params.k + j].mode));
    }
  }
  return out;
}

BatchResult run(const Batch& batch, const KMeansParams& params, int device, LloydVariant lloyd) {
  return launch(batch, params, device, false, lloyd);
}

}  // namespace palette::cuda_testing
