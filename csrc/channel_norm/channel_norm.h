#pragma once

#include <ATen/ATen.h>

namespace vid2vid {

// Torch-facing entry points (channel_norm.cpp), registered in bindings.cpp.
at::Tensor channel_norm_forward(const at::Tensor& input);
at::Tensor channel_norm_backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& output);

// CPU kernels (channel_norm_cpu.cpp) on contiguous tensors.
void channel_norm_forward_cpu(const at::Tensor& input, at::Tensor& output);
void channel_norm_backward_cpu(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& output,
                               at::Tensor& grad_input);

}  // namespace vid2vid
