// Torch binding of the channel norm.
#include "channel_norm/channel_norm.h"

#include "common/binding.h"

#ifdef WITH_CUDA
#include "channel_norm/channel_norm_cuda.h"
#endif

namespace vid2vid {

at::Tensor channel_norm_forward(const at::Tensor& input_) {
  check_tensor(input_, "input", 4);
  const at::Tensor input = input_.contiguous();
  at::Tensor output = at::empty({input.size(0), 1, input.size(2), input.size(3)}, input.options());
  if (output.numel() == 0) return output;
#ifdef WITH_CUDA
  if (input.is_cuda()) {
    const c10::cuda::CUDAGuard guard(input.device());
    check_launch(channel_norm_forward_cuda(scalar_kind(input.scalar_type()), input.const_data_ptr(),
                                           output.mutable_data_ptr(), input.size(0), input.size(1),
                                           input.size(2) * input.size(3), c10::cuda::getCurrentCUDAStream().stream()),
                 "channel_norm_forward");
    return output;
  }
#endif
  channel_norm_forward_cpu(input, output);
  return output;
}

at::Tensor channel_norm_backward(const at::Tensor& grad_output_, const at::Tensor& input_,
                                 const at::Tensor& output_) {
  check_tensor(input_, "input", 4);
  check_same(grad_output_, "grad_output", input_, "input");
  check_same(output_, "output", input_, "input");
  const at::Tensor grad_output = grad_output_.contiguous();
  const at::Tensor input = input_.contiguous();
  const at::Tensor output = output_.contiguous();
  TORCH_CHECK(grad_output.sizes() == output.sizes() && output.size(0) == input.size(0) && output.size(1) == 1 &&
                  output.size(2) == input.size(2) && output.size(3) == input.size(3),
              "channel_norm_backward: grad_output ", grad_output.sizes(), " and output ", output.sizes(),
              " must be (B, 1, H, W) for input ", input.sizes());
  at::Tensor grad_input = at::empty_like(input);
  if (input.numel() == 0) return grad_input;
#ifdef WITH_CUDA
  if (input.is_cuda()) {
    const c10::cuda::CUDAGuard guard(input.device());
    check_launch(channel_norm_backward_cuda(scalar_kind(input.scalar_type()), grad_output.const_data_ptr(),
                                            input.const_data_ptr(), output.const_data_ptr(),
                                            grad_input.mutable_data_ptr(), input.size(0), input.size(1),
                                            input.size(2) * input.size(3),
                                            c10::cuda::getCurrentCUDAStream().stream()),
                 "channel_norm_backward");
    return grad_input;
  }
#endif
  channel_norm_backward_cpu(grad_output, input, output, grad_input);
  return grad_input;
}

}  // namespace vid2vid
