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

// Both channel-norm kernels: a block takes 256 / groups consecutive pixels and splits
// their channels among `groups` threads each (the largest power of two up to 8 that
// the channels fill), so that a pixel's 256 channels are 8 independent chains of 32
// loads, not one chain of 256, and small batches still fill the GPU; a grid-stride
// loop over such tiles of pixels.
V2V_HOST_DEVICE int channel_norm_groups(int channels) {
  return channels >= 8 ? 8 : (channels >= 4 ? 4 : (channels >= 2 ? 2 : 1));
}

// One thread per (pixel, group of channels): 256 / groups pixels a block.
V2V_HOST_DEVICE LaunchConfig channel_norm_launch(long long pixels, int channels,
                                                 long long max_blocks = kMaxGridStrideBlocks) {
  return grid_stride_launch(pixels * channel_norm_groups(channels), max_blocks);
}

#if V2V_DEVICE_CODE

// Thread t of a block: pixel t % per_block of the tile, channels t / per_block + k * groups.
// The partial sums meet in shared memory; consecutive threads read consecutive pixels
// of a channel plane (coalesced).
template <typename scalar_t>
__global__ void channel_norm_forward_kernel(const scalar_t* __restrict__ input, scalar_t* __restrict__ output,
                                            int batch, int channels, long long plane) {
  typedef typename acc_type<scalar_t>::type acc_t;
  __shared__ acc_t partial[kGridStrideThreads];
  const int groups = channel_norm_groups(channels);
  const int per_block = blockDim.x / groups;
  const int pixel = threadIdx.x % per_block;
  const int group = threadIdx.x / per_block;
  const long long n = batch * plane;
  for (long long base = blockIdx.x * static_cast<long long>(per_block); base < n;
       base += static_cast<long long>(per_block) * gridDim.x) {  // the same trips for the whole block
    const long long i = base + pixel;
    acc_t sum = 0;
    if (i < n) {
      const PlaneIndex at = split_plane_index(i, plane, n);
      const scalar_t* in = input + static_cast<long long>(at.b) * channels * plane + at.p;
      for (int c = group; c < channels; c += groups) {
        const acc_t v = to_acc(in[c * plane]);
        sum += v * v;
      }
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    if (group == 0 && i < n) {
      for (int g = 1; g < groups; ++g) sum += partial[g * per_block + pixel];
      output[i] = from_acc<scalar_t>(sqrt(sum));
    }
    __syncthreads();  // the partial sums have been read before the next tile writes them
  }
}

template <typename scalar_t>
__global__ void channel_norm_backward_kernel(const scalar_t* __restrict__ grad_output,
                                             const scalar_t* __restrict__ input, const scalar_t* __restrict__ output,
                                             scalar_t* __restrict__ grad_input, int batch, int channels,
                                             long long plane) {
  typedef typename acc_type<scalar_t>::type acc_t;
  const int groups = channel_norm_groups(channels);
  const int per_block = blockDim.x / groups;
  const int pixel = threadIdx.x % per_block;
  const int group = threadIdx.x / per_block;
  const long long n = batch * plane;
  for (long long i = blockIdx.x * static_cast<long long>(per_block) + pixel; i < n;
       i += static_cast<long long>(per_block) * gridDim.x) {
    const PlaneIndex at = split_plane_index(i, plane, n);
    const long long offset = static_cast<long long>(at.b) * channels * plane + at.p;
    const acc_t scale = channel_norm_grad_scale(to_acc(grad_output[i]), to_acc(output[i]));
    for (int c = group; c < channels; c += groups) {
      grad_input[offset + c * plane] = from_acc<scalar_t>(scale * to_acc(input[offset + c * plane]));
    }
  }
}

#endif  // CUDA

}  // namespace vid2vid
