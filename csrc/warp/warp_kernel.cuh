// Bilinear flow warping (FlowNet2's Resample2d with kernel_size 1).
//
//   out[b, c, y, x] = bilinear sample of in[b, c] at (x + flow[b, 0, y, x], y + flow[b, 1, y, x])
//
// with the sample position clamped to the image, i.e. the values of
// grid_sample(mode="bilinear", padding_mode="border", align_corners=True).
// The sampling maths below is shared by the CPU kernels (warp_cpu.cpp), the
// CUDA kernels (warp_cuda.cu) and the CuPy backend, which compiles this file.
#pragma once

#include "common/kernel_common.cuh"

namespace vid2vid {

// Where one output pixel samples its input, and how the sample moves with the flow.
template <typename acc_t>
struct BilinearSample {
  int x0, x1, y0, y1;        // corners, already inside the image
  acc_t wx, wy;              // weights of the x1 column and the y1 row
  acc_t x_inside, y_inside;  // d(clamped position)/d(flow): 1 inside, 0 where the border clamps it
};

template <typename acc_t>
V2V_HOST_DEVICE BilinearSample<acc_t> bilinear_sample(int x, int y, acc_t flow_x, acc_t flow_y, int width,
                                                      int height) {
  BilinearSample<acc_t> s;
  const acc_t x_max = static_cast<acc_t>(width - 1);
  const acc_t y_max = static_cast<acc_t>(height - 1);
  acc_t xs = static_cast<acc_t>(x) + flow_x;
  acc_t ys = static_cast<acc_t>(y) + flow_y;
  // Like grid_sample's border mode, the gradient of the clamped position is 0
  // on and beyond the border. Written so that a NaN position lands on 0.
  s.x_inside = (xs > 0 && xs < x_max) ? acc_t(1) : acc_t(0);
  s.y_inside = (ys > 0 && ys < y_max) ? acc_t(1) : acc_t(0);
  xs = xs > 0 ? (xs < x_max ? xs : x_max) : acc_t(0);
  ys = ys > 0 ? (ys < y_max ? ys : y_max) : acc_t(0);
  // The clamped position is not negative, so truncation is its floor (and,
  // unlike floor, needs no libm call on baseline x86-64).
  s.x0 = static_cast<int>(xs);
  s.y0 = static_cast<int>(ys);
  const acc_t x0f = static_cast<acc_t>(s.x0);
  const acc_t y0f = static_cast<acc_t>(s.y0);
  s.x1 = s.x0 + 1 < width ? s.x0 + 1 : width - 1;
  s.y1 = s.y0 + 1 < height ? s.y0 + 1 : height - 1;
  s.wx = xs - x0f;
  s.wy = ys - y0f;
  return s;
}

// The four input values around a sample, from one channel plane.
template <typename acc_t>
struct Corners {
  acc_t v00, v01, v10, v11;  // v<row><column>: (y0, x0), (y0, x1), (y1, x0), (y1, x1)
};

template <typename acc_t, typename scalar_t>
V2V_HOST_DEVICE Corners<acc_t> load_corners(const scalar_t* plane, int width, const BilinearSample<acc_t>& s) {
  Corners<acc_t> v;
  v.v00 = to_acc(plane[s.y0 * width + s.x0]);
  v.v01 = to_acc(plane[s.y0 * width + s.x1]);
  v.v10 = to_acc(plane[s.y1 * width + s.x0]);
  v.v11 = to_acc(plane[s.y1 * width + s.x1]);
  return v;
}

template <typename acc_t>
V2V_HOST_DEVICE acc_t interpolate(const Corners<acc_t>& v, const BilinearSample<acc_t>& s) {
  const acc_t top = v.v00 + s.wx * (v.v01 - v.v00);
  const acc_t bottom = v.v10 + s.wx * (v.v11 - v.v10);
  return top + s.wy * (bottom - top);
}

// d(interpolated value)/d(flow_x) and d/d(flow_y) for one channel.
template <typename acc_t>
V2V_HOST_DEVICE acc_t d_interpolate_dx(const Corners<acc_t>& v, const BilinearSample<acc_t>& s) {
  return s.x_inside * ((1 - s.wy) * (v.v01 - v.v00) + s.wy * (v.v11 - v.v10));
}
template <typename acc_t>
V2V_HOST_DEVICE acc_t d_interpolate_dy(const Corners<acc_t>& v, const BilinearSample<acc_t>& s) {
  return s.y_inside * ((1 - s.wx) * (v.v10 - v.v00) + s.wx * (v.v11 - v.v01));
}

// The sample of pixel p (flat index y * width + x) of one image, whose flow
// planes start at `flow`.
template <typename acc_t, typename scalar_t>
V2V_HOST_DEVICE BilinearSample<acc_t> sample_pixel(const scalar_t* flow, long long p, int width, int height) {
  const long long plane = static_cast<long long>(height) * width;
  const PlaneIndex at = split_plane_index(p, width, plane);  // (row, column), in 32 bits where they fit
  const int y = at.b;
  const int x = static_cast<int>(at.p);
  return bilinear_sample<acc_t>(x, y, to_acc(flow[p]), to_acc(flow[plane + p]), width,
                                height);
}

// Channels whose loads the warp kernels issue together (see warp_forward_kernel).
constexpr int kWarpChannelBatch = 4;

// Both warp kernels: a grid-stride loop over the pixels (b, y, x), in blocks of whole warps (the backward
// shuffles).
static_assert(kGridStrideThreads % 32 == 0, "the warp backward's blocks are whole warps");
V2V_HOST_DEVICE LaunchConfig warp_launch(long long pixels, long long max_blocks = kMaxGridStrideBlocks) {
  return grid_stride_launch(pixels, max_blocks);
}

#if V2V_DEVICE_CODE

// One thread per output pixel (b, y, x), looping over channels, so the
// sample position is computed once per pixel. Tensors are contiguous NCHW.
template <typename scalar_t>
__global__ void warp_forward_kernel(const scalar_t* __restrict__ input, const scalar_t* __restrict__ flow,
                                    scalar_t* __restrict__ output, int batch, int channels, int height, int width) {
  typedef typename acc_type<scalar_t>::type acc_t;
  const long long plane = static_cast<long long>(height) * width;
  const long long n = batch * plane;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(blockDim.x) * gridDim.x) {
    const PlaneIndex at = split_plane_index(i, plane, n);
    const int b = at.b;
    const long long p = at.p;
    const BilinearSample<acc_t> s = sample_pixel<acc_t>(flow + b * 2 * plane, p, width, height);
    const scalar_t* in_b = input + b * channels * plane;
    scalar_t* out_b = output + b * channels * plane + p;
    // The corners of kWarpChannelBatch channels are loaded before any is stored: without it the compiler
    // keeps each channel's store before the next channel's loads, and a thread waits out one memory
    // latency per channel with only its four loads in flight.
    int c = 0;
    for (; c + kWarpChannelBatch <= channels; c += kWarpChannelBatch) {
      Corners<acc_t> v[kWarpChannelBatch];
#pragma unroll
      for (int k = 0; k < kWarpChannelBatch; ++k) v[k] = load_corners<acc_t>(in_b + (c + k) * plane, width, s);
#pragma unroll
      for (int k = 0; k < kWarpChannelBatch; ++k) out_b[(c + k) * plane] = from_acc<scalar_t>(interpolate(v[k], s));
    }
    for (; c < channels; ++c) {
      out_b[c * plane] = from_acc<scalar_t>(interpolate(load_corners<acc_t>(in_b + c * plane, width, s), s));
    }
  }
}

// How one lane scatters its pixel's input gradient, the same for every channel.
//
// Where the flow is smooth, a lane's right corners (x1) are the next lane's left corners (x0): scattered
// as they are, each of those input values takes two atomicAdds from neighbouring lanes of one warp, four
// per pixel and channel in all (where the forward makes one store), and the backward is bound by the L2's
// atomic throughput. So each lane folds its right neighbour's left-corner contributions into its own right
// corners where they are the same input pixels, and a lane whose left neighbour does that skips its left
// corners: two atomics per pixel and channel for a smooth flow, and still four, all correct, wherever
// neighbours sample apart. The weights fold once per pixel; per channel only the output gradient crosses
// lanes (one shuffle).
template <typename acc_t>
struct InputGradientScatter {
  acc_t w00, w01, w10, w11;  // the pixel's own corner weights
  acc_t right00, right10;    // the right neighbour's left-corner weights where this lane takes them, else 0
  bool left_taken;           // the left neighbour adds this lane's left corners
  bool active;               // an idle lane (past the last pixel) adds nothing
};

// Every lane of the warp must call this together (shuffles). `image_row` names the sample's image and row
// y0: a lane's left corners are its left neighbour's right corners where image_row and column agree (the
// rows below, y1, then agree too).
template <typename acc_t>
__device__ __forceinline__ InputGradientScatter<acc_t> fold_with_neighbours(const BilinearSample<acc_t>& s,
                                                                          long long image_row, bool active) {
  const int lane = threadIdx.x & 31;
  InputGradientScatter<acc_t> f;
  f.w00 = (1 - s.wx) * (1 - s.wy);
  f.w01 = s.wx * (1 - s.wy);
  f.w10 = (1 - s.wx) * s.wy;
  f.w11 = s.wx * s.wy;
  f.active = active;
  const long long left_row = __shfl_up_sync(0xffffffffu, image_row, 1);
  const int left_x1 = __shfl_up_sync(0xffffffffu, s.x1, 1);
  const int left_active = __shfl_up_sync(0xffffffffu, static_cast<int>(active), 1);
  f.left_taken = lane > 0 && left_active && active && left_row == image_row && left_x1 == s.x0;
  // every lane shuffles (no short circuit); the last lane's shuffle down answers with its own values, and
  // it has no right neighbour to take from
  const int right_taken = __shfl_down_sync(0xffffffffu, static_cast<int>(f.left_taken), 1);
  const bool take_right = lane < 31 && right_taken;
  const acc_t right00 = __shfl_down_sync(0xffffffffu, f.w00, 1);
  const acc_t right10 = __shfl_down_sync(0xffffffffu, f.w10, 1);
  f.right00 = take_right ? right00 : acc_t(0);
  f.right10 = take_right ? right10 : acc_t(0);
  return f;
}

// One channel: the output gradient g of this lane's pixel scattered into that channel's plane `gi`.
template <typename acc_t>
__device__ __forceinline__ void scatter_input_gradient(acc_t g, const BilinearSample<acc_t>& s,
                                                       const InputGradientScatter<acc_t>& f, acc_t* gi,
                                                       int width) {
  const acc_t g_right = __shfl_down_sync(0xffffffffu, g, 1);
  if (!f.active) return;
  if (!f.left_taken) {
    atomicAdd(gi + s.y0 * width + s.x0, g * f.w00);
    atomicAdd(gi + s.y1 * width + s.x0, g * f.w10);
  }
  atomicAdd(gi + s.y0 * width + s.x1, g * f.w01 + g_right * f.right00);
  atomicAdd(gi + s.y1 * width + s.x1, g * f.w11 + g_right * f.right10);
}

// One thread per pixel, in warps that go through the grid-stride loop together (the shuffles above): the
// flow gradient is a per-pixel sum over channels; the input gradient is scattered with atomics into a zeroed
// acc_t buffer (so its order of summation, and its last bits, may vary between runs). Needs blocks of whole
// warps (warp_launch). Left to itself, nvcc gives a float thread 128 registers (two blocks of an SM
// resident); bounded to three blocks it takes 80, without spills (nvcc 13, sm_90). Doubles need two
// registers a value and would spill there: two blocks for them.
template <typename scalar_t>
__global__ void __launch_bounds__(kGridStrideThreads, sizeof(typename acc_type<scalar_t>::type) == 8 ? 2 : 3)
    warp_backward_kernel(const scalar_t* __restrict__ grad_output, const scalar_t* __restrict__ input,
                                     const scalar_t* __restrict__ flow,
                                     typename acc_type<scalar_t>::type* __restrict__ grad_input,
                                     scalar_t* __restrict__ grad_flow, int batch, int channels, int height,
                                     int width) {
  typedef typename acc_type<scalar_t>::type acc_t;
  const long long plane = static_cast<long long>(height) * width;
  const long long n = batch * plane;
  const int lane = threadIdx.x & 31;
  // The loop runs on the warp's first index, so all 32 lanes go round it the same number of times.
  for (long long first = blockIdx.x * static_cast<long long>(blockDim.x) + (threadIdx.x & ~31); first < n;
       first += static_cast<long long>(blockDim.x) * gridDim.x) {
    const bool active = first + lane < n;
    const long long i = active ? first + lane : n - 1;  // an idle lane samples the last pixel and adds nothing
    const PlaneIndex at = split_plane_index(i, plane, n);
    const int b = at.b;
    const long long p = at.p;
    const BilinearSample<acc_t> s = sample_pixel<acc_t>(flow + b * 2 * plane, p, width, height);
    const InputGradientScatter<acc_t> fold =
        fold_with_neighbours(s, static_cast<long long>(b) * height + s.y0, active);
    acc_t g_fx = 0, g_fy = 0;
    const long long image = static_cast<long long>(b) * channels * plane;
    int c = 0;
    for (; c + kWarpChannelBatch <= channels; c += kWarpChannelBatch) {  // loads in flight together, as forward
      acc_t g[kWarpChannelBatch];
      Corners<acc_t> v[kWarpChannelBatch];
#pragma unroll
      for (int k = 0; k < kWarpChannelBatch; ++k) {
        g[k] = to_acc(grad_output[image + (c + k) * plane + p]);
        v[k] = load_corners<acc_t>(input + image + (c + k) * plane, width, s);
      }
#pragma unroll
      for (int k = 0; k < kWarpChannelBatch; ++k) {
        g_fx += g[k] * d_interpolate_dx(v[k], s);
        g_fy += g[k] * d_interpolate_dy(v[k], s);
        scatter_input_gradient(g[k], s, fold, grad_input + image + (c + k) * plane, width);
      }
    }
    for (; c < channels; ++c) {
      const long long offset = image + c * plane;
      const acc_t g = to_acc(grad_output[offset + p]);
      const Corners<acc_t> v = load_corners<acc_t>(input + offset, width, s);
      g_fx += g * d_interpolate_dx(v, s);
      g_fy += g * d_interpolate_dy(v, s);
      scatter_input_gradient(g, s, fold, grad_input + offset, width);
    }
    if (active) {
      scalar_t* gf = grad_flow + b * 2 * plane + p;
      gf[0] = from_acc<scalar_t>(g_fx);
      gf[plane] = from_acc<scalar_t>(g_fy);
    }
  }
}

#endif  // CUDA

}  // namespace vid2vid
