// FlowNetC's correlation layer (Dosovitskiy et al. 2015, eq. 1).
//
// Both inputs are zero-padded by `pad` and stored channels-last (NHWC), so the
// channel sums below read contiguous memory. Output pixel (oy, ox) has its
// window centre at padded position (border + oy * stride1, border + ox * stride1),
// border = max_displacement + kernel_radius; output channel
// (j + r) * (2r + 1) + (i + r), r = max_displacement / stride2, holds the
// displacement (dy, dx) = (j * stride2, i * stride2):
//
//   out = sum over channels c and window offsets w of a[centre + w, c] * b[centre + w + (dy, dx), c]
//         / (kernel_size^2 * channels)
//
// The output size ceil((padded - 2 * border) / stride1) keeps every read inside
// the padded inputs, so the kernels need no bounds checks beyond the grid test.
#pragma once

#include "common/kernel_common.cuh"

namespace vid2vid {

// Sizes and settings of one correlation, computed once by the binding.
struct CorrelationGeometry {
  int kernel_radius, max_displacement, stride1, stride2;
  int padded_height, padded_width;
  int out_height, out_width;
};

// The displacements of one correlation and its normalisation, derived once
// from the settings.
template <typename acc_t>
struct Displacements {
  int stride2;    // pixels between displacements
  int radius;     // r = max_displacement / stride2
  int size;       // 2r + 1 per axis
  int count;      // (2r + 1)^2 output channels
  int border;     // max_displacement + kernel_radius: padded position of the first window centre
  acc_t inv_count;  // 1 / (kernel_size^2 * channels), the mean's factor

  V2V_HOST_DEVICE Displacements(int channels, int kernel_radius, int max_displacement, int stride2)
      : stride2(stride2),
        radius(max_displacement / stride2),
        size(2 * radius + 1),
        count(size * size),
        border(max_displacement + kernel_radius),
        inv_count(acc_t(1) / static_cast<acc_t>((2 * kernel_radius + 1) * (2 * kernel_radius + 1) * channels)) {}

  // (dy, dx) of output channel d.
  V2V_HOST_DEVICE int dy(int d) const { return (d / size - radius) * stride2; }
  V2V_HOST_DEVICE int dx(int d) const { return (d % size - radius) * stride2; }
};

// Output coordinate of the window centred at padded position `centre`, or -1
// when no output window is centred there.
V2V_HOST_DEVICE int output_index(int centre, int border, int stride1, int out_size) {
  const int t = centre - border;
  if (t < 0 || t % stride1 != 0) return -1;
  const int o = t / stride1;
  return o < out_size ? o : -1;
}

// Forward: one block per output pixel, whose 8 warps share its displacements.
V2V_HOST_DEVICE LaunchConfig correlation_forward_launch(long long output_pixels) { return {output_pixels, 256}; }

// Backward: one block per input pixel, one thread per channel (whole warps, at most 256;
// FlowNetC has 256 channels).
V2V_HOST_DEVICE LaunchConfig correlation_backward_launch(long long input_pixels, int channels) {
  return {input_pixels, channels < 256 ? ((channels + 31) / 32) * 32 : 256};
}

#if V2V_DEVICE_CODE

template <typename acc_t>
__device__ __forceinline__ acc_t warp_reduce_sum(acc_t v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// One block per output pixel; each warp takes a share of the displacements,
// its lanes stride over channels, and a shuffle reduction sums them.
template <typename scalar_t>
__global__ void correlation_forward_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                           scalar_t* __restrict__ output, int channels, int padded_height,
                                           int padded_width, int out_height, int out_width, int kernel_radius,
                                           int max_displacement, int stride1, int stride2) {
  typedef typename acc_type<scalar_t>::type acc_t;
  const Displacements<acc_t> disp(channels, kernel_radius, max_displacement, stride2);

  const long long pixel = blockIdx.x;
  const int ox = static_cast<int>(pixel % out_width);
  const int oy = static_cast<int>((pixel / out_width) % out_height);
  const int n = static_cast<int>(pixel / (static_cast<long long>(out_width) * out_height));
  const int cy = disp.border + oy * stride1;
  const int cx = disp.border + ox * stride1;
  const int lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;

  for (int d = threadIdx.x >> 5; d < disp.count; d += warps) {
    const int dy = disp.dy(d);
    const int dx = disp.dx(d);
    acc_t sum = 0;
    for (int wy = -kernel_radius; wy <= kernel_radius; ++wy) {
      for (int wx = -kernel_radius; wx <= kernel_radius; ++wx) {
        const scalar_t* pa =
            a + ((static_cast<long long>(n) * padded_height + cy + wy) * padded_width + cx + wx) * channels;
        const scalar_t* pb =
            b + ((static_cast<long long>(n) * padded_height + cy + wy + dy) * padded_width + cx + wx + dx) * channels;
        for (int c = lane; c < channels; c += 32) sum += to_acc(pa[c]) * to_acc(pb[c]);
      }
    }
    sum = warp_reduce_sum(sum);
    if (lane == 0) {
      output[((static_cast<long long>(n) * disp.count + d) * out_height + oy) * out_width + ox] =
          from_acc<scalar_t>(sum * disp.inv_count);
    }
  }
}

// One block per (unpadded) input pixel, one thread per channel: each thread
// gathers every output that read its element, so no atomics are needed and
// the result is deterministic. Gradients are written NCHW, unpadded.
template <typename scalar_t>
__global__ void correlation_backward_kernel(const scalar_t* __restrict__ grad_output, const scalar_t* __restrict__ a,
                                            const scalar_t* __restrict__ b, scalar_t* __restrict__ grad_a,
                                            scalar_t* __restrict__ grad_b, int channels, int height, int width,
                                            int pad, int out_height, int out_width, int kernel_radius,
                                            int max_displacement, int stride1, int stride2) {
  typedef typename acc_type<scalar_t>::type acc_t;
  const Displacements<acc_t> disp(channels, kernel_radius, max_displacement, stride2);
  const int padded_height = height + 2 * pad;
  const int padded_width = width + 2 * pad;

  const long long pixel = blockIdx.x;
  const int x = static_cast<int>(pixel % width);
  const int y = static_cast<int>((pixel / width) % height);
  const int n = static_cast<int>(pixel / (static_cast<long long>(width) * height));
  const int py = y + pad;
  const int px = x + pad;
  const long long image = static_cast<long long>(n) * padded_height;
  const scalar_t* grad_n = grad_output + static_cast<long long>(n) * disp.count * out_height * out_width;

  for (int c = threadIdx.x; c < channels; c += blockDim.x) {
    acc_t ga = 0, gb = 0;
    for (int d = 0; d < disp.count; ++d) {
      const int dy = disp.dy(d);
      const int dx = disp.dx(d);
      const scalar_t* grad_d = grad_n + static_cast<long long>(d) * out_height * out_width;
      for (int wy = -kernel_radius; wy <= kernel_radius; ++wy) {
        for (int wx = -kernel_radius; wx <= kernel_radius; ++wx) {
          // a[p] meets b[p + d] in the window centred at p - w.
          int oy = output_index(py - wy, disp.border, stride1, out_height);
          int ox = output_index(px - wx, disp.border, stride1, out_width);
          if (oy >= 0 && ox >= 0) {
            ga += to_acc(grad_d[oy * out_width + ox]) *
                  to_acc(b[((image + py + dy) * padded_width + px + dx) * channels + c]);
          }
          // b[p] meets a[p - d] in the window centred at p - d - w.
          oy = output_index(py - dy - wy, disp.border, stride1, out_height);
          ox = output_index(px - dx - wx, disp.border, stride1, out_width);
          if (oy >= 0 && ox >= 0) {
            gb += to_acc(grad_d[oy * out_width + ox]) *
                  to_acc(a[((image + py - dy) * padded_width + px - dx) * channels + c]);
          }
        }
      }
    }
    const long long out_offset = ((static_cast<long long>(n) * channels + c) * height + y) * width + x;
    grad_a[out_offset] = from_acc<scalar_t>(ga * disp.inv_count);
    grad_b[out_offset] = from_acc<scalar_t>(gb * disp.inv_count);
  }
}

#endif  // CUDA

}  // namespace vid2vid
