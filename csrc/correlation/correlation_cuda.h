// CUDA launchers of the correlation. a_padded/b_padded: zero-padded NHWC
// inputs; output NCHW; grad_a/grad_b NCHW, unpadded; all of the element type
// named by `kind` and contiguous. Free of torch headers.
#pragma once

#include <cuda_runtime_api.h>

#include "common/scalar_kind.h"
#include "correlation/correlation_kernel.cuh"

namespace vid2vid {

cudaError_t correlation_forward_cuda(ScalarKind kind, const void* a_padded, const void* b_padded, void* output,
                                     int batch, int channels, const CorrelationGeometry& geometry,
                                     cudaStream_t stream);

cudaError_t correlation_backward_cuda(ScalarKind kind, const void* grad_output, const void* a_padded,
                                      const void* b_padded, void* grad_a, void* grad_b, int batch, int channels,
                                      int height, int width, int pad, const CorrelationGeometry& geometry,
                                      cudaStream_t stream);

}  // namespace vid2vid
