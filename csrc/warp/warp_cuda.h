// CUDA launchers of the flow warp. Pointers are to contiguous NCHW tensors of
// the element type named by `kind`; grad_input is the accumulation type (float,
// or double for Float64) and must be zeroed. Free of torch headers.
#pragma once

#include <cuda_runtime_api.h>

#include "common/scalar_kind.h"

namespace vid2vid {

cudaError_t warp_forward_cuda(ScalarKind kind, const void* input, const void* flow, void* output, int batch,
                              int channels, int height, int width, cudaStream_t stream);

cudaError_t warp_backward_cuda(ScalarKind kind, const void* grad_output, const void* input, const void* flow,
                               void* grad_input, void* grad_flow, int batch, int channels, int height, int width,
                               cudaStream_t stream);

}  // namespace vid2vid
