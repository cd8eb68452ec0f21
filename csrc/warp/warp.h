#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace vid2vid {

// Torch-facing entry points (warp.cpp), registered in bindings.cpp.
at::Tensor warp_forward(const at::Tensor& input, const at::Tensor& flow);
std::tuple<at::Tensor, at::Tensor> warp_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                                 const at::Tensor& flow);

// CPU kernels (warp_cpu.cpp) on contiguous tensors; grad_input_acc is zeroed, in the accumulation type.
void warp_forward_cpu(const at::Tensor& input, const at::Tensor& flow, at::Tensor& output);
void warp_backward_cpu(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& flow,
                       at::Tensor& grad_input_acc, at::Tensor& grad_flow);

}  // namespace vid2vid
