#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "correlation/correlation_kernel.cuh"

namespace vid2vid {

// Torch-facing entry points (correlation.cpp), registered in bindings.cpp.
at::Tensor correlation_forward(const at::Tensor& a, const at::Tensor& b, int64_t pad_size, int64_t kernel_size,
                               int64_t max_displacement, int64_t stride1, int64_t stride2);
std::tuple<at::Tensor, at::Tensor> correlation_backward(const at::Tensor& grad_output, const at::Tensor& a,
                                                        const at::Tensor& b, int64_t pad_size, int64_t kernel_size,
                                                        int64_t max_displacement, int64_t stride1, int64_t stride2);

// CPU kernels (correlation_cpu.cpp) on padded NHWC inputs in the accumulation
// type; output and gradients (NCHW, unpadded) are in that type too.
void correlation_forward_cpu(const at::Tensor& a_padded, const at::Tensor& b_padded, at::Tensor& output,
                             const CorrelationGeometry& geometry);
void correlation_backward_cpu(const at::Tensor& grad_output, const at::Tensor& a_padded, const at::Tensor& b_padded,
                              at::Tensor& grad_a, at::Tensor& grad_b, int pad, const CorrelationGeometry& geometry);

}  // namespace vid2vid
