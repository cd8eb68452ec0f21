#include "common/cuda_dispatch.cuh"
#include "warp/warp_cuda.h"
#include "warp/warp_kernel.cuh"

namespace vid2vid {

cudaError_t warp_forward_cuda(ScalarKind kind, const void* input, const void* flow, void* output, int batch,
                              int channels, int height, int width, cudaStream_t stream) {
  return dispatch_kind(kind, [&](auto tag) {
    using scalar_t = decltype(tag);
    const LaunchConfig launch = warp_launch(static_cast<long long>(batch) * height * width);
    warp_forward_kernel<scalar_t><<<launch.blocks, launch.threads, 0, stream>>>(
        static_cast<const scalar_t*>(input), static_cast<const scalar_t*>(flow), static_cast<scalar_t*>(output),
        batch, channels, height, width);
    return cudaGetLastError();
  });
}

cudaError_t warp_backward_cuda(ScalarKind kind, const void* grad_output, const void* input, const void* flow,
                               void* grad_input, void* grad_flow, int batch, int channels, int height, int width,
                               cudaStream_t stream) {
  return dispatch_kind(kind, [&](auto tag) {
    using scalar_t = decltype(tag);
    using acc_t = typename acc_type<scalar_t>::type;
    const LaunchConfig launch = warp_backward_launch(batch, height, width);
    warp_backward_kernel<scalar_t><<<launch.blocks, launch.threads, 0, stream>>>(
        static_cast<const scalar_t*>(grad_output), static_cast<const scalar_t*>(input),
        static_cast<const scalar_t*>(flow), static_cast<acc_t*>(grad_input), static_cast<scalar_t*>(grad_flow),
        batch, channels, height, width);
    return cudaGetLastError();
  });
}

}  // namespace vid2vid
