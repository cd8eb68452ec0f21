// CPU kernels of the channel norm, parallel over (batch, row); channels are
// the outer loop so that each pass reads a contiguous row.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "channel_norm/channel_norm.h"
#include "channel_norm/channel_norm_kernel.cuh"

namespace vid2vid {
namespace {

template <typename scalar_t>
void forward(const scalar_t* input, scalar_t* output, int64_t batch, int64_t channels, int64_t height,
             int64_t width) {
  using acc_t = typename acc_type<scalar_t>::type;
  const int64_t plane = height * width;
  at::parallel_for(0, batch * height, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> sum(width);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / height, y = r % height;
      std::fill(sum.begin(), sum.end(), acc_t(0));
      for (int64_t c = 0; c < channels; ++c) {
        const scalar_t* row = input + (b * channels + c) * plane + y * width;
        for (int64_t x = 0; x < width; ++x) {
          const acc_t v = static_cast<acc_t>(row[x]);
          sum[x] += v * v;
        }
      }
      scalar_t* out = output + b * plane + y * width;
      for (int64_t x = 0; x < width; ++x) out[x] = static_cast<scalar_t>(std::sqrt(sum[x]));
    }
  });
}

template <typename scalar_t>
void backward(const scalar_t* grad_output, const scalar_t* input, const scalar_t* output, scalar_t* grad_input,
              int64_t batch, int64_t channels, int64_t height, int64_t width) {
  using acc_t = typename acc_type<scalar_t>::type;
  const int64_t plane = height * width;
  at::parallel_for(0, batch * height, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> scale(width);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / height, y = r % height;
      const int64_t pixel = b * plane + y * width;
      for (int64_t x = 0; x < width; ++x) {
        scale[x] = channel_norm_grad_scale(static_cast<acc_t>(grad_output[pixel + x]),
                                           static_cast<acc_t>(output[pixel + x]));
      }
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t offset = (b * channels + c) * plane + y * width;
        for (int64_t x = 0; x < width; ++x) {
          grad_input[offset + x] = static_cast<scalar_t>(scale[x] * static_cast<acc_t>(input[offset + x]));
        }
      }
    }
  });
}

}  // namespace

void channel_norm_forward_cpu(const at::Tensor& input, at::Tensor& output) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "channel_norm_forward_cpu", [&] {
    forward<scalar_t>(input.const_data_ptr<scalar_t>(), output.mutable_data_ptr<scalar_t>(), input.size(0),
                      input.size(1), input.size(2), input.size(3));
  });
}

void channel_norm_backward_cpu(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& output,
                               at::Tensor& grad_input) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "channel_norm_backward_cpu", [&] {
    backward<scalar_t>(grad_output.const_data_ptr<scalar_t>(), input.const_data_ptr<scalar_t>(),
                       output.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(), input.size(0),
                       input.size(1), input.size(2), input.size(3));
  });
}

}  // namespace vid2vid
