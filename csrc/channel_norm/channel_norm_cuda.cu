#include "channel_norm/channel_norm_cuda.h"
#include "channel_norm/channel_norm_kernel.cuh"
#include "common/cuda_dispatch.cuh"

namespace vid2vid {

cudaError_t channel_norm_forward_cuda(ScalarKind kind, const void* input, void* output, int batch, int channels,
                                      long long plane, cudaStream_t stream) {
  return dispatch_kind(kind, [&](auto tag) {
    using scalar_t = decltype(tag);
    const LaunchConfig launch = channel_norm_launch(batch * plane, channels);
    channel_norm_forward_kernel<scalar_t><<<launch.blocks, launch.threads, 0, stream>>>(
        static_cast<const scalar_t*>(input), static_cast<scalar_t*>(output), batch, channels, plane);
    return cudaGetLastError();
  });
}

cudaError_t channel_norm_backward_cuda(ScalarKind kind, const void* grad_output, const void* input,
                                       const void* output, void* grad_input, int batch, int channels,
                                       long long plane, cudaStream_t stream) {
  return dispatch_kind(kind, [&](auto tag) {
    using scalar_t = decltype(tag);
    const LaunchConfig launch = channel_norm_launch(batch * plane, channels);
    channel_norm_backward_kernel<scalar_t><<<launch.blocks, launch.threads, 0, stream>>>(
        static_cast<const scalar_t*>(grad_output), static_cast<const scalar_t*>(input),
        static_cast<const scalar_t*>(output), static_cast<scalar_t*>(grad_input), batch, channels, plane);
    return cudaGetLastError();
  });
}

}  // namespace vid2vid
