// Torch binding of the correlation: checks, the output geometry, the padded
// channels-last copies of both inputs, and the launch on their device.
#include "correlation/correlation.h"

#include <array>

#include "common/binding.h"

#ifdef WITH_CUDA
#include "correlation/correlation_cuda.h"
#endif

namespace vid2vid {

namespace {

CorrelationGeometry make_geometry(const at::Tensor& a, const at::Tensor& b, int64_t pad_size, int64_t kernel_size,
                                  int64_t max_displacement, int64_t stride1, int64_t stride2) {
  check_tensor(a, "input1", 4);
  check_tensor(b, "input2", 4);
  check_same(a, "input1", b, "input2");
  TORCH_CHECK(a.sizes() == b.sizes(), "input1 shape ", a.sizes(), " does not match input2 shape ", b.sizes());
  TORCH_CHECK(kernel_size >= 1 && kernel_size % 2 == 1, "kernel_size must be odd and positive, got ", kernel_size);
  TORCH_CHECK(pad_size >= 0 && max_displacement >= 0, "pad_size and max_displacement must be >= 0");
  TORCH_CHECK(stride1 >= 1 && stride2 >= 1, "stride1 and stride2 must be >= 1");
  CorrelationGeometry g;
  g.kernel_radius = static_cast<int>((kernel_size - 1) / 2);
  g.max_displacement = static_cast<int>(max_displacement);
  g.stride1 = static_cast<int>(stride1);
  g.stride2 = static_cast<int>(stride2);
  g.padded_height = static_cast<int>(a.size(2) + 2 * pad_size);
  g.padded_width = static_cast<int>(a.size(3) + 2 * pad_size);
  const int border = g.max_displacement + g.kernel_radius;
  const int inner_height = g.padded_height - 2 * border;
  const int inner_width = g.padded_width - 2 * border;
  TORCH_CHECK(inner_height > 0 && inner_width > 0, "correlation output would be empty for input size ",
              a.sizes(), " with pad_size=", pad_size, ", max_displacement=", max_displacement,
              ", kernel_size=", kernel_size);
  g.out_height = (inner_height + g.stride1 - 1) / g.stride1;
  g.out_width = (inner_width + g.stride1 - 1) / g.stride1;
  return g;
}

int64_t displacement_count(const CorrelationGeometry& g) {
  const int64_t size = 2 * (g.max_displacement / g.stride2) + 1;
  return size * size;
}

// Zero-padded, channels-last copy of x in the given dtype.
at::Tensor pad_channels_last(const at::Tensor& x, int64_t pad, at::ScalarType dtype) {
  return at::constant_pad_nd(x.to(dtype), {pad, pad, pad, pad}).permute({0, 2, 3, 1}).contiguous();
}

}  // namespace

at::Tensor correlation_forward(const at::Tensor& a, const at::Tensor& b, int64_t pad_size, int64_t kernel_size,
                               int64_t max_displacement, int64_t stride1, int64_t stride2) {
  const CorrelationGeometry g = make_geometry(a, b, pad_size, kernel_size, max_displacement, stride1, stride2);
  const int64_t batch = a.size(0), channels = a.size(1);
  const std::array<int64_t, 4> out_shape{batch, displacement_count(g), g.out_height, g.out_width};
#ifdef WITH_CUDA
  if (a.is_cuda()) {
    const c10::cuda::CUDAGuard guard(a.device());
    at::Tensor output = at::empty(out_shape, a.options());
    if (a.numel() == 0) return output.zero_();
    const at::Tensor a_padded = pad_channels_last(a, pad_size, a.scalar_type());
    const at::Tensor b_padded = pad_channels_last(b, pad_size, a.scalar_type());
    check_launch(correlation_forward_cuda(scalar_kind(a.scalar_type()), a_padded.const_data_ptr(),
                                          b_padded.const_data_ptr(), output.mutable_data_ptr(), batch, channels, g,
                                          c10::cuda::getCurrentCUDAStream().stream()),
                 "correlation_forward");
    return output;
  }
#endif
  const at::ScalarType acc = acc_scalar_type(a.scalar_type());
  at::Tensor output = at::empty(out_shape, a.options().dtype(acc));
  if (a.numel() == 0) return output.zero_().to(a.scalar_type());
  correlation_forward_cpu(pad_channels_last(a, pad_size, acc), pad_channels_last(b, pad_size, acc), output, g);
  return output.to(a.scalar_type());
}

std::tuple<at::Tensor, at::Tensor> correlation_backward(const at::Tensor& grad_output, const at::Tensor& a,
                                                        const at::Tensor& b, int64_t pad_size, int64_t kernel_size,
                                                        int64_t max_displacement, int64_t stride1, int64_t stride2) {
  const CorrelationGeometry g = make_geometry(a, b, pad_size, kernel_size, max_displacement, stride1, stride2);
  check_same(grad_output, "grad_output", a, "input1");
  const int64_t batch = a.size(0), channels = a.size(1);
  TORCH_CHECK(grad_output.sizes() == at::IntArrayRef({batch, displacement_count(g), g.out_height, g.out_width}),
              "grad_output has shape ", grad_output.sizes(), ", which is not the correlation's output shape");
#ifdef WITH_CUDA
  if (a.is_cuda()) {
    const c10::cuda::CUDAGuard guard(a.device());
    at::Tensor grad_a = at::empty(a.sizes(), a.options());
    at::Tensor grad_b = at::empty(a.sizes(), a.options());
    if (a.numel() == 0) return {grad_a, grad_b};
    const at::Tensor grad = grad_output.contiguous();
    const at::Tensor a_padded = pad_channels_last(a, pad_size, a.scalar_type());
    const at::Tensor b_padded = pad_channels_last(b, pad_size, a.scalar_type());
    check_launch(correlation_backward_cuda(scalar_kind(a.scalar_type()), grad.const_data_ptr(),
                                           a_padded.const_data_ptr(), b_padded.const_data_ptr(),
                                           grad_a.mutable_data_ptr(), grad_b.mutable_data_ptr(), batch, channels,
                                           a.size(2), a.size(3), pad_size, g,
                                           c10::cuda::getCurrentCUDAStream().stream()),
                 "correlation_backward");
    return {grad_a, grad_b};
  }
#endif
  const at::ScalarType acc = acc_scalar_type(a.scalar_type());
  at::Tensor grad_a = at::empty(a.sizes(), a.options().dtype(acc));
  at::Tensor grad_b = at::empty(a.sizes(), a.options().dtype(acc));
  if (a.numel() > 0) {
    correlation_backward_cpu(grad_output.to(acc).contiguous(), pad_channels_last(a, pad_size, acc),
                             pad_channels_last(b, pad_size, acc), grad_a, grad_b, static_cast<int>(pad_size), g);
  }
  return {grad_a.to(a.scalar_type()), grad_b.to(a.scalar_type())};
}

}  // namespace vid2vid
