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

// The sample of pixel (x, y) of one image, whose flow planes start at `flow`.
template <typename acc_t, typename scalar_t>
V2V_HOST_DEVICE BilinearSample<acc_t> sample_at(const scalar_t* flow, int x, int y, int width, int height) {
  const long long p = static_cast<long long>(y) * width + x;
  const long long plane = static_cast<long long>(height) * width;
  return bilinear_sample<acc_t>(x, y, to_acc(flow[p]), to_acc(flow[plane + p]), width, height);
}

// The same for pixel p (flat index y * width + x).
template <typename acc_t, typename scalar_t>
V2V_HOST_DEVICE BilinearSample<acc_t> sample_pixel(const scalar_t* flow, long long p, int width, int height) {
  const PlaneIndex at = split_plane_index(p, width, static_cast<long long>(height) * width);  // (row, column)
  return sample_at<acc_t>(flow, static_cast<int>(at.p), at.b, width, height);
}

// Channels whose loads the warp kernels issue together (see warp_forward_kernel); the backward, which
// holds more per pixel, two (four spill its registers at three blocks an SM).
constexpr int kWarpChannelBatch = 4;
constexpr int kWarpBackwardChannelBatch = 2;

// The forward: a grid-stride loop over the pixels (b, y, x).
V2V_HOST_DEVICE LaunchConfig warp_launch(long long pixels, long long max_blocks = kMaxGridStrideBlocks) {
  return grid_stride_launch(pixels, max_blocks);
}

// The backward's warps each take a tile of kWarpTileColumns columns by 2 rows of one image, lane l at row
// l / 16 and column l % 16 of its tile (see InputGradientScatter), in a grid-stride loop over the tiles
// (b, tile row, tile column), in blocks of whole warps.
constexpr int kWarpTileColumns = 16;
static_assert(kGridStrideThreads % 32 == 0, "the warp backward's blocks are whole warps");

V2V_HOST_DEVICE long long warp_backward_tiles(long long batch, int height, int width) {
  return batch * ((height + 1) / 2) * ((width + kWarpTileColumns - 1) / kWarpTileColumns);
}

V2V_HOST_DEVICE LaunchConfig warp_backward_launch(long long batch, int height, int width,
                                                  long long max_blocks = kMaxGridStrideBlocks) {
  return grid_stride_launch(32 * warp_backward_tiles(batch, height, width), max_blocks);
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
// Where the flow is smooth, a pixel's corners are its neighbours' corners too: its right corners (x1) the
// right neighbour's left ones (x0), its bottom corners (y1) the top ones (y0) of the pixel below. Scattered
// as they are, each of those input values takes an atomicAdd from every lane that samples it, four per
// pixel and channel in all (where the forward makes one store), and the backward is bound by the L2's
// atomic throughput. So the lanes of a warp, which cover 16 x 2 pixels, fold what they share before they
// add: across columns, each lane folds its right neighbour's left-corner contributions into its own right
// corners where they are the same input pixels, and a lane whose left neighbour does that skips its left
// corners; then across rows, each top-row lane folds the top-corner sums of the lane below (as that lane
// would have added them, its own right neighbour's share included) into its bottom corners, where they are
// the same input pixels, and the lane below skips them. For a smooth flow that leaves 51 atomics for a
// tile's 32 pixels (3 rows of 17 columns of corners), 1.6 per pixel and channel; wherever neighbours sample
// apart, nothing is folded and all are still correct. The decisions are made once per pixel; per channel
// only output gradients and top-corner sums cross lanes (three shuffles).
template <typename acc_t>
struct InputGradientScatter {
  acc_t right00, right10;    // the right neighbour's left-corner weights where this lane takes them, else 0
  bool left_taken;           // the left neighbour adds this lane's left corners
  bool below_left, below_right;  // this top-row lane adds the lane below's top-left / top-right sums
  bool above_left, above_right;  // the lane above adds this lane's top-left / top-right sums
  bool active;               // an idle lane (outside the image) adds nothing
};

// Every lane of the warp must call this together (shuffles). `image_base` is b * height: a corner's input
// pixel is (image_base + row, column).
template <typename acc_t>
__device__ __forceinline__ InputGradientScatter<acc_t> fold_with_neighbours(const BilinearSample<acc_t>& s,
                                                                          long long image_base, bool active) {
  const unsigned int all = 0xffffffffu;
  const int lane = threadIdx.x & 31;
  InputGradientScatter<acc_t> f;
  f.active = active;
  // across columns: a lane's left corners are its left neighbour's right corners where the image, the row
  // y0 and the column agree (the rows below, y1, then agree too)
  const long long top = image_base + s.y0, bottom = image_base + s.y1;
  const long long left_top = __shfl_up_sync(all, top, 1);
  const int left_x1 = __shfl_up_sync(all, s.x1, 1);
  const int left_active = __shfl_up_sync(all, static_cast<int>(active), 1);
  f.left_taken = lane > 0 && left_active && active && left_top == top && left_x1 == s.x0;
  // every lane shuffles (no short circuit); the last lane's shuffle down answers with its own values, and
  // it has no right neighbour to take from
  const int right_taken = __shfl_down_sync(all, static_cast<int>(f.left_taken), 1);
  const bool take_right = lane < 31 && right_taken;
  const acc_t right00 = __shfl_down_sync(all, (1 - s.wx) * (1 - s.wy), 1);
  const acc_t right10 = __shfl_down_sync(all, (1 - s.wx) * s.wy, 1);
  f.right00 = take_right ? right00 : acc_t(0);
  f.right10 = take_right ? right10 : acc_t(0);
  // across rows: a top-row lane's bottom corners are the top corners of the lane below (16 lanes on) where
  // the image, the row and the column agree; the top-left is taken only where both lanes add their own
  // (neither's left neighbour takes it)
  const long long below_top = __shfl_down_sync(all, top, 16);
  const int below_x0 = __shfl_down_sync(all, s.x0, 16);
  const int below_active = __shfl_down_sync(all, static_cast<int>(active), 16);
  const int below_left_free = __shfl_down_sync(all, static_cast<int>(!f.left_taken), 16);
  f.below_right = lane < 16 && active && below_active && below_top == bottom && below_x0 == s.x0;
  f.below_left = f.below_right && !f.left_taken && below_left_free;
  const int above_right = __shfl_up_sync(all, static_cast<int>(f.below_right), 16);
  const int above_left = __shfl_up_sync(all, static_cast<int>(f.below_left), 16);
  f.above_right = lane >= 16 && above_right;
  f.above_left = lane >= 16 && above_left;
  return f;
}

// One channel: the output gradient g of this lane's pixel scattered into that channel's plane `gi`.
template <typename acc_t>
__device__ __forceinline__ void scatter_input_gradient(acc_t g, const BilinearSample<acc_t>& s,
                                                       const InputGradientScatter<acc_t>& f, acc_t* gi,
                                                       int width) {
  const unsigned int all = 0xffffffffu;
  const acc_t g_right = __shfl_down_sync(all, g, 1);
  // the corner weights, recomputed per channel: four multiplies cost less than the registers to keep them
  const acc_t gx1 = g * s.wx, gx0 = g - gx1;  // g wx, g (1 - wx)
  // this lane's top corners as it would add them: the top-left unless the left neighbour takes it, the
  // top-right with the right neighbour's top-left where it takes that
  const acc_t top_left = f.left_taken ? acc_t(0) : gx0 - gx0 * s.wy;
  const acc_t top_right = gx1 - gx1 * s.wy + g_right * f.right00;
  const acc_t below_top_left = __shfl_down_sync(all, top_left, 16);
  const acc_t below_top_right = __shfl_down_sync(all, top_right, 16);
  if (!f.active) return;
  if (!f.left_taken) {
    if (!f.above_left) atomicAdd(gi + s.y0 * width + s.x0, top_left);
    atomicAdd(gi + s.y1 * width + s.x0, gx0 * s.wy + (f.below_left ? below_top_left : acc_t(0)));
  }
  if (!f.above_right) atomicAdd(gi + s.y0 * width + s.x1, top_right);
  atomicAdd(gi + s.y1 * width + s.x1,
            gx1 * s.wy + g_right * f.right10 + (f.below_right ? below_top_right : acc_t(0)));
}

// One thread per pixel, in warps of 16 x 2 pixels that go through the grid-stride loop together (the
// shuffles above): the flow gradient is a per-pixel sum over channels; the input gradient is scattered with
// atomics into a zeroed acc_t buffer (so its order of summation, and its last bits, may vary between runs).
// Needs blocks of whole warps (warp_backward_launch). Bounded to three blocks of an SM, a float thread takes
// 70 registers with two channels' loads in flight (kWarpBackwardChannelBatch), without spills (nvcc 13,
// sm_90). Doubles need two registers a value and would spill there: two blocks for them (96 registers).
template <typename scalar_t>
__global__ void __launch_bounds__(kGridStrideThreads, sizeof(typename acc_type<scalar_t>::type) == 8 ? 2 : 3)
    warp_backward_kernel(const scalar_t* __restrict__ grad_output, const scalar_t* __restrict__ input,
                                     const scalar_t* __restrict__ flow,
                                     typename acc_type<scalar_t>::type* __restrict__ grad_input,
                                     scalar_t* __restrict__ grad_flow, int batch, int channels, int height,
                                     int width) {
  typedef typename acc_type<scalar_t>::type acc_t;
  const long long plane = static_cast<long long>(height) * width;
  const int tile_columns = (width + kWarpTileColumns - 1) / kWarpTileColumns;
  const long long tiles_per_image = static_cast<long long>((height + 1) / 2) * tile_columns;
  const long long tiles = warp_backward_tiles(batch, height, width);
  const int lane = threadIdx.x & 31;
  // The loop runs on the warp's first index, so all 32 lanes go round it the same number of times.
  for (long long first = blockIdx.x * static_cast<long long>(blockDim.x) + (threadIdx.x & ~31);
       first < 32 * tiles; first += static_cast<long long>(blockDim.x) * gridDim.x) {
    const PlaneIndex tile = split_plane_index(first / 32, tiles_per_image, tiles);  // (image, its tile)
    const int b = tile.b;
    const int tile_row = static_cast<int>(tile.p / tile_columns);
    const int tile_column = static_cast<int>(tile.p - static_cast<long long>(tile_row) * tile_columns);
    const int y = 2 * tile_row + lane / kWarpTileColumns;
    const int x = tile_column * kWarpTileColumns + lane % kWarpTileColumns;
    const bool active = y < height && x < width;
    // a lane outside the image samples the image's last pixel and adds nothing
    const BilinearSample<acc_t> s = sample_at<acc_t>(flow + b * 2 * plane, active ? x : width - 1,
                                                     active ? y : height - 1, width, height);
    const long long p = active ? static_cast<long long>(y) * width + x : plane - 1;
    const InputGradientScatter<acc_t> fold = fold_with_neighbours(s, static_cast<long long>(b) * height, active);
    acc_t g_fx = 0, g_fy = 0;
    const long long image = static_cast<long long>(b) * channels * plane;
    int c = 0;
    // the loads of kWarpBackwardChannelBatch channels in flight together, as in the forward
    for (; c + kWarpBackwardChannelBatch <= channels; c += kWarpBackwardChannelBatch) {
      acc_t g[kWarpBackwardChannelBatch];
      Corners<acc_t> v[kWarpBackwardChannelBatch];
#pragma unroll
      for (int k = 0; k < kWarpBackwardChannelBatch; ++k) {
        g[k] = to_acc(grad_output[image + (c + k) * plane + p]);
        v[k] = load_corners<acc_t>(input + image + (c + k) * plane, width, s);
      }
#pragma unroll
      for (int k = 0; k < kWarpBackwardChannelBatch; ++k) {
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
