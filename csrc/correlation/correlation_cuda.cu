#include "common/cuda_dispatch.cuh"
#include "correlation/correlation_cuda.h"

namespace vid2vid {

namespace {
// Forward: 8 warps share a pixel's displacements. Backward: one thread per
// channel, up to 256 (FlowNetC has 256).
constexpr int kForwardThreads = 256;
constexpr int kMaxBackwardThreads = 256;
}  // namespace

cudaError_t correlation_forward_cuda(ScalarKind kind, const void* a_padded, const void* b_padded, void* output,
                                     int batch, int channels, const CorrelationGeometry& g, cudaStream_t stream) {
  return dispatch_kind(kind, [&](auto tag) {
    using scalar_t = decltype(tag);
    const unsigned int blocks = static_cast<unsigned int>(static_cast<long long>(batch) * g.out_height * g.out_width);
    correlation_forward_kernel<scalar_t><<<blocks, kForwardThreads, 0, stream>>>(
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
    const unsigned int blocks = static_cast<unsigned int>(static_cast<long long>(batch) * height * width);
    const int threads = channels < kMaxBackwardThreads ? ((channels + 31) / 32) * 32 : kMaxBackwardThreads;
    correlation_backward_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
        static_cast<const scalar_t*>(grad_output), static_cast<const scalar_t*>(a_padded),
        static_cast<const scalar_t*>(b_padded), static_cast<scalar_t*>(grad_a), static_cast<scalar_t*>(grad_b),
        channels, height, width, pad, g.out_height, g.out_width, g.kernel_radius, g.max_displacement, g.stride1,
        g.stride2);
    return cudaGetLastError();
  });
}

}  // namespace vid2vid
