// CUDA launchers of the channel norm on contiguous NCHW tensors of the element
// type named by `kind`. Free of torch headers.
#pragma once

#include <cuda_runtime_api.h>

#include "common/scalar_kind.h"

namespace vid2vid {

cudaError_t channel_norm_forward_cuda(ScalarKind kind, const void* input, void* output, int batch, int channels,
                                      long long plane, cudaStream_t stream);

cudaError_t channel_norm_backward_cuda(ScalarKind kind, const void* grad_output, const void* input,
                                       const void* output, void* grad_input, int batch, int channels,
                                       long long plane, cudaStream_t stream);

}  // namespace vid2vid
