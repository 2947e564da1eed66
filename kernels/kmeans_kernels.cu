// The k-means kernel and its launch: one block of image::kThreads threads per image
// (kmeans_image.cuh).

#include <algorithm>

#include "cuda_check.cuh"
#include "kmeans_image.cuh"
#include "kmeans_kernels.cuh"

namespace palette::cuda {
namespace {

template <int KP>
__global__ void __launch_bounds__(image::kThreads)
    kmeans_batch_kernel(DevicePoints P, DeviceScratch S, int k, std::uint64_t seed, int max_iter,
                        float limit2, DeviceResults R) {
  image::kmeans_image<KP>(P, S, k, seed, max_iter, limit2, R, blockIdx.x);
}

// kmeans_batch_kernel<KP> on every image of the batch.
template <int KP>
void launch(const DevicePoints& points, const DeviceScratch& scratch, const KMeansParams& params,
            float shift_limit2, const DeviceResults& out, cudaStream_t stream) {
  std::size_t dynamic = 0;
  if constexpr (KP > 0) {
    dynamic = image::columns_dynamic_bytes(params.k);
    PALETTE_CUDA_TRY(cudaFuncSetAttribute(kmeans_batch_kernel<KP>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(dynamic)));
  }
  kmeans_batch_kernel<KP><<<points.images, image::kThreads, dynamic, stream>>>(
      points, scratch, params.k, params.seed, params.max_iter, shift_limit2, out);
  PALETTE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_kmeans_batch(const DevicePoints& points, const DeviceScratch& scratch,
                         const KMeansParams& params, float shift_limit2, const DeviceResults& out,
                         cudaStream_t stream, LloydVariant lloyd) {
  if (points.images == 0) return;
  if (lloyd == LloydVariant::kWarp || params.k > columns::kMaxK) {
    return launch<0>(points, scratch, params, shift_limit2, out, stream);
  }
  columns::with_padded_k(params.k, [&](auto kp) {
    launch<decltype(kp)::value>(points, scratch, params, shift_limit2, out, stream);
  });
}

}  // namespace palette::cuda
