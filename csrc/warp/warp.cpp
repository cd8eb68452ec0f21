// Torch binding of the flow warp: checks, contiguous copies, allocation, and
// the launch on the tensors' device.
#include "warp/warp.h"

#include "common/binding.h"

#ifdef WITH_CUDA
#include "warp/warp_cuda.h"
#endif

namespace vid2vid {

namespace {
void check_warp_args(const at::Tensor& input, const at::Tensor& flow) {
  check_tensor(input, "input", 4);
  check_tensor(flow, "flow", 4);
  check_same(input, "input", flow, "flow");
  TORCH_CHECK(flow.size(1) == 2, "flow must have 2 channels, got shape ", flow.sizes());
  TORCH_CHECK(flow.size(0) == input.size(0) && flow.size(2) == input.size(2) && flow.size(3) == input.size(3),
              "flow shape ", flow.sizes(), " does not match input shape ", input.sizes());
}
}  // namespace

at::Tensor warp_forward(const at::Tensor& input_, const at::Tensor& flow_) {
  check_warp_args(input_, flow_);
  const at::Tensor input = input_.contiguous();
  const at::Tensor flow = flow_.contiguous();
  at::Tensor output = at::empty_like(input);
  if (output.numel() == 0) return output;
#ifdef WITH_CUDA
  if (input.is_cuda()) {
    const c10::cuda::CUDAGuard guard(input.device());
    check_launch(warp_forward_cuda(scalar_kind(input.scalar_type()), input.const_data_ptr(), flow.const_data_ptr(),
                                   output.mutable_data_ptr(), input.size(0), input.size(1), input.size(2),
                                   input.size(3), c10::cuda::getCurrentCUDAStream().stream()),
                 "warp_forward");
    return output;
  }
#endif
  warp_forward_cpu(input, flow, output);
  return output;
}

std::tuple<at::Tensor, at::Tensor> warp_backward(const at::Tensor& grad_output_, const at::Tensor& input_,
                                                 const at::Tensor& flow_) {
  check_warp_args(input_, flow_);
  check_same(grad_output_, "grad_output", input_, "input");
  TORCH_CHECK(grad_output_.sizes() == input_.sizes(), "grad_output shape ", grad_output_.sizes(),
              " does not match input shape ", input_.sizes());
  const at::Tensor grad_output = grad_output_.contiguous();
  const at::Tensor input = input_.contiguous();
  const at::Tensor flow = flow_.contiguous();
  at::Tensor grad_input = at::zeros(input.sizes(), input.options().dtype(acc_scalar_type(input.scalar_type())));
  at::Tensor grad_flow = at::empty_like(flow);
  if (input.numel() == 0) return {grad_input.to(input.scalar_type()), grad_flow.zero_()};
#ifdef WITH_CUDA
  if (input.is_cuda()) {
    const c10::cuda::CUDAGuard guard(input.device());
    check_launch(warp_backward_cuda(scalar_kind(input.scalar_type()), grad_output.const_data_ptr(),
                                    input.const_data_ptr(), flow.const_data_ptr(), grad_input.mutable_data_ptr(),
                                    grad_flow.mutable_data_ptr(), input.size(0), input.size(1), input.size(2),
                                    input.size(3), c10::cuda::getCurrentCUDAStream().stream()),
                 "warp_backward");
    return {grad_input.to(input.scalar_type()), grad_flow};
  }
#endif
  warp_backward_cpu(grad_output, input, flow, grad_input, grad_flow);
  return {grad_input.to(input.scalar_type()), grad_flow};
}

}  // namespace vid2vid
