#include "common/cuda_dispatch.cuh"
#include "correlation/correlation_cuda.h"

namespace vid2vid {

cudaError_t correlation_forward_cuda(ScalarKind kind, const void* a_padded, const void* b_padded, void* output,
                                     int batch, int channels, const CorrelationGeometry& g, cudaStream_t stream) {
  return dispatch_kind(kind, [&](auto tag) {
    using scalar_t = decltype(tag);
    const LaunchConfig launch =
        correlation_forward_launch(batch, g.out_height, g.out_width, g.max_displacement, g.stride1, g.stride2);
    correlation_forward_kernel<scalar_t><<<launch.blocks, launch.threads, 0, stream>>>(
        static_cast<const scalar_t*>(a_padded), static_cast<const scalar_t*>(b_padded),
        static_cast<scalar_t*>(output), channels, g.padded_height, g.padded_width, g.out_height, g.out_width,
        g.kernel_radius, g.max_displacement, g.stride1, g.stride2);
    return cudaGetLastError();
  });
}

cudaError_t correlation_backward_cuda(ScalarKind kind, const void* grad_output, const void* a_padded,
                                      const void* b_padded, void* grad_a, void* grad_b, int batch, int channels,
                                      int height, int width, int pad, const CorrelationGeometry& g,
                                      cudaStream_t stream) {
  return dispatch_kind(kind, [&](auto tag) {
    using scalar_t = decltype(tag);
    const LaunchConfig launch = correlation_backward_launch(batch, height, width, channels, g.max_displacement,
                                                            g.stride2, sizeof(scalar_t));
    correlation_backward_kernel<scalar_t><<<launch.blocks, launch.threads, 0, stream>>>(
        static_cast<const scalar_t*>(grad_output), static_cast<const scalar_t*>(a_padded),
        static_cast<const scalar_t*>(b_padded), static_cast<scalar_t*>(grad_a), static_cast<scalar_t*>(grad_b),
        channels, height, width, pad, g.out_height, g.out_width, g.kernel_radius, g.max_displacement, g.stride1,
        g.stride2);
    return cudaGetLastError();
  });
}

}  // namespace vid2vid
