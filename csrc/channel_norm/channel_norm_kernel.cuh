// FlowNet2's ChannelNorm: the L2 norm over channels, (B, C, H, W) -> (B, 1, H, W).
// Its backward, grad * x / norm, is defined as 0 where the norm is 0 (the
// reference divides by zero there), so a zero feature vector gives finite gradients.
#pragma once

#include "common/kernel_common.cuh"

namespace vid2vid {

template <typename acc_t>
V2V_HOST_DEVICE acc_t channel_norm_grad_scale(acc_t grad, acc_t norm) {
  return norm > 0 ? grad / norm : acc_t(0);
}

// Both channel-norm kernels: a grid-stride loop over the pixels (b, y, x).
V2V_HOST_DEVICE LaunchConfig channel_norm_launch(long long pixels, long long max_blocks = kMaxGridStrideBlocks) {
  return grid_stride_launch(pixels, max_blocks);
}

#if V2V_DEVICE_CODE

// One thread per pixel, looping over channels (consecutive threads read
// consecutive pixels of a channel plane).
template <typename scalar_t>
__global__ void channel_norm_forward_kernel(const scalar_t* __restrict__ input, scalar_t* __restrict__ output,
                                            int batch, int channels, long long plane) {
  typedef typename acc_type<scalar_t>::type acc_t;
  const long long n = batch * plane;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(blockDim.x) * gridDim.x) {
    const long long b = i / plane;
    const scalar_t* in = input + b * channels * plane + (i - b * plane);
    acc_t sum = 0;
    for (int c = 0; c < channels; ++c) {
      const acc_t v = to_acc(in[c * plane]);
      sum += v * v;
    }
    output[i] = from_acc<scalar_t>(sqrt(sum));
  }
}

template <typename scalar_t>
__global__ void channel_norm_backward_kernel(const scalar_t* __restrict__ grad_output,
                                             const scalar_t* __restrict__ input, const scalar_t* __restrict__ output,
                                             scalar_t* __restrict__ grad_input, int batch, int channels,
                                             long long plane) {
  typedef typename acc_type<scalar_t>::type acc_t;
  const long long n = batch * plane;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(blockDim.x) * gridDim.x) {
    const long long b = i / plane;
    const long long offset = b * channels * plane + (i - b * plane);
    const acc_t scale =
        channel_norm_grad_scale(to_acc(grad_output[i]), to_acc(output[i]));
    for (int c = 0; c < channels; ++c) {
      grad_input[offset + c * plane] = from_acc<scalar_t>(scale * to_acc(input[offset + c * plane]));
    }
  }
}

#endif  // CUDA

}  // namespace vid2vid
