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

// The CUDA kernels work on tiles held in shared memory, so that each value loaded
// from global memory serves many pixels and displacements (the forward and both
// gradients are each a correlation of one tensor with another at shifted
// positions). A block takes a row segment of up to kCorrelationTileWidth pixels and
// a group of up to kCorrelationGroup displacements of one displacement row; the
// positions of the shifted tensor that these meet form one contiguous span of
// columns, which must fit the shared tile of kCorrelationSpan columns.
constexpr int kCorrelationThreads = 256;  // 8 warps
constexpr int kCorrelationTileWidth = 32;  // pixels per block: one per lane
constexpr int kCorrelationGroup = 24;  // displacements per group: 3 per warp in the forward
constexpr int kCorrelationSpan = 96;  // columns of a shifted tile (FlowNetC needs 32 + 40)

// Shared tiles hold words of one channel in float or double, or two channels of a
// 16-bit type (kept in it: half the shared-memory loads of floats per channel, the
// limit of these kernels, for one conversion per value). A row of a tile has 32
// words (one per lane and bank) of 4 bytes, 16 of doubles: its channels, the chunk,
// are 32 for float, 16 for double and 64 for half and bfloat16.
V2V_HOST_DEVICE constexpr int correlation_channel_chunk(int element_bytes) {
  return element_bytes == 8 ? 16 : (element_bytes == 2 ? 64 : 32);
}

// Pixels per block and displacements per group for `size` displacements per row,
// whose tiles' pixels are `pixel_step` padded columns apart (stride1 for the
// forward's output pixels, 1 for the backward's input pixels): the largest that
// keep the span (tile - 1) * pixel_step + 1 + (group - 1) * stride2 in a tile.
struct CorrelationTiling {
  int tile_width;
  int group;
};

V2V_HOST_DEVICE CorrelationTiling correlation_tiling(int size, int pixel_step, int stride2) {
  int group = size < kCorrelationGroup ? size : kCorrelationGroup;
  const int widest_group = (kCorrelationSpan - 1) / stride2 + 1;
  if (group > widest_group) group = widest_group;
  const int widest_tile = (kCorrelationSpan - 1 - (group - 1) * stride2) / pixel_step + 1;
  return {widest_tile < kCorrelationTileWidth ? widest_tile : kCorrelationTileWidth, group};
}

V2V_HOST_DEVICE long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

// Forward: one block per (image, output row, tile of output columns, displacement
// row, group of displacements in that row).
V2V_HOST_DEVICE LaunchConfig correlation_forward_launch(long long batch, int out_height, int out_width,
                                                        int max_displacement, int stride1, int stride2) {
  const int size = 2 * (max_displacement / stride2) + 1;
  const CorrelationTiling t = correlation_tiling(size, stride1, stride2);
  return {batch * out_height * ceil_div(out_width, t.tile_width) * size * ceil_div(size, t.group),
          kCorrelationThreads};
}

// Backward: one block per (image, input row, tile of input columns, chunk of
// channels); channel chunks of the element type (correlation_channel_chunk).
V2V_HOST_DEVICE LaunchConfig correlation_backward_launch(long long batch, int height, int width, int channels,
                                                         int max_displacement, int stride2, int element_bytes) {
  const int size = 2 * (max_displacement / stride2) + 1;
  const CorrelationTiling t = correlation_tiling(size, 1, stride2);
  const int chunk = correlation_channel_chunk(element_bytes);
  return {batch * height * ceil_div(width, t.tile_width) * ceil_div(channels, chunk), kCorrelationThreads};
}

#if V2V_DEVICE_CODE

// One word of a shared tile (see correlation_channel_chunk): `channels` channels,
// read as the accumulator type.
template <typename scalar_t, bool packed = sizeof(scalar_t) == 2>
struct TileWord {
  typedef typename acc_type<scalar_t>::type acc_t;
  static constexpr int channels = 1;
  acc_t value[1];
  __device__ __forceinline__ acc_t get(int i) const { return value[i]; }
  __device__ __forceinline__ void set(int i, scalar_t v) { value[i] = to_acc(v); }
};
template <typename scalar_t>
struct alignas(4) TileWord<scalar_t, true> {
  static constexpr int channels = 2;
  scalar_t value[2];
  __device__ __forceinline__ float get(int i) const { return to_acc(value[i]); }
  __device__ __forceinline__ void set(int i, scalar_t v) { value[i] = v; }
};

// Copies `count` pixels of one padded NHWC row, at columns column + p * step, channels
// [c0, c0 + words * channels per word), into tile[count][words + 1] (one word of
// padding, so that lanes reading consecutive pixels of one word hit different
// banks), as zeros where the row, a column or a channel is outside the input.
// Consecutive threads read consecutive channels: coalesced.
template <typename scalar_t, int words>
__device__ __forceinline__ void load_tile(TileWord<scalar_t> (*tile)[words + 1], const scalar_t* __restrict__ image,
                                          int row, int column, int step, int count, int c0, int channels,
                                          int padded_height, int padded_width) {
  constexpr int per_word = TileWord<scalar_t>::channels;
  for (int i = threadIdx.x; i < count * words; i += blockDim.x) {
    const int p = i / words;
    const int w = i - p * words;
    const int x = column + p * step;
    const bool inside = row >= 0 && row < padded_height && x >= 0 && x < padded_width;
    const scalar_t* pixel = image + (static_cast<long long>(row) * padded_width + x) * channels;
    TileWord<scalar_t> word;
#pragma unroll
    for (int k = 0; k < per_word; ++k) {
      const int c = c0 + w * per_word + k;
      word.set(k, inside && c < channels ? pixel[c] : from_acc<scalar_t>(0));
    }
    tile[p][w] = word;
  }
}

// Lane = output pixel of the tile, warp = three displacements of the group. Per
// word of a chunk each thread reads one word of a's tile and three of b's for
// three multiply-adds per channel; a's and b's tiles serve the whole block.
template <typename scalar_t>
__global__ void correlation_forward_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                           scalar_t* __restrict__ output, int channels, int padded_height,
                                           int padded_width, int out_height, int out_width, int kernel_radius,
                                           int max_displacement, int stride1, int stride2) {
  typedef typename acc_type<scalar_t>::type acc_t;
  typedef TileWord<scalar_t> word_t;
  constexpr int chunk = correlation_channel_chunk(sizeof(scalar_t));
  constexpr int words = chunk / word_t::channels;
  constexpr int per_warp = kCorrelationGroup / (kCorrelationThreads / 32);
  __shared__ word_t a_tile[kCorrelationTileWidth][words + 1];
  __shared__ word_t b_tile[kCorrelationSpan][words + 1];

  const Displacements<acc_t> disp(channels, kernel_radius, max_displacement, stride2);
  const CorrelationTiling tiling = correlation_tiling(disp.size, stride1, stride2);
  const int tiles = static_cast<int>(ceil_div(out_width, tiling.tile_width));
  const int groups = static_cast<int>(ceil_div(disp.size, tiling.group));
  long long block = blockIdx.x;
  const int group = next_digit(block, groups);
  const int j = next_digit(block, disp.size);  // displacement row
  const int tile = next_digit(block, tiles);
  const int oy = next_digit(block, out_height);
  const int n = static_cast<int>(block);

  const int ox0 = tile * tiling.tile_width;
  const int pixels = min_int(tiling.tile_width, out_width - ox0);
  const int k0 = group * tiling.group;  // first displacement column of the group
  const int group_count = min_int(tiling.group, disp.size - k0);
  const int dy = (j - disp.radius) * stride2;
  const int dx0 = (k0 - disp.radius) * stride2;
  const int cy = disp.border + oy * stride1;
  const int cx0 = disp.border + ox0 * stride1;
  const int span = (pixels - 1) * stride1 + 1 + (group_count - 1) * stride2;
  const scalar_t* a_n = a + static_cast<long long>(n) * padded_height * padded_width * channels;
  const scalar_t* b_n = b + static_cast<long long>(n) * padded_height * padded_width * channels;

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  // b's tile row of each of this thread's displacements; a thread whose last ones lie past the group
  // repeats the group's last (its sums are not written), so the channel loop has no branches
  int b_row[per_warp];
#pragma unroll
  for (int r = 0; r < per_warp; ++r) {
    b_row[r] = lane * stride1 + min_int(warp + r * (kCorrelationThreads / 32), group_count - 1) * stride2;
  }
  acc_t sum[per_warp] = {};
  for (int wy = -kernel_radius; wy <= kernel_radius; ++wy) {
    for (int wx = -kernel_radius; wx <= kernel_radius; ++wx) {
      for (int c0 = 0; c0 < channels; c0 += chunk) {
        __syncthreads();  // the previous tiles have been read
        load_tile<scalar_t, words>(a_tile, a_n, cy + wy, cx0 + wx, stride1, pixels, c0, channels, padded_height,
                                   padded_width);
        load_tile<scalar_t, words>(b_tile, b_n, cy + wy + dy, cx0 + wx + dx0, 1, span, c0, channels,
                                   padded_height, padded_width);
        __syncthreads();
        if (lane < pixels) {
#pragma unroll
          for (int w = 0; w < words; ++w) {  // channels past the last are zeros
            const word_t av = a_tile[lane][w];
#pragma unroll
            for (int r = 0; r < per_warp; ++r) {
              const word_t bv = b_tile[b_row[r]][w];
#pragma unroll
              for (int k = 0; k < word_t::channels; ++k) sum[r] += av.get(k) * bv.get(k);
            }
          }
        }
      }
    }
  }
  if (lane < pixels) {
#pragma unroll
    for (int r = 0; r < per_warp; ++r) {
      const int k = warp + r * (kCorrelationThreads / 32);
      if (k < group_count) {
        const int d = j * disp.size + k0 + k;
        output[((static_cast<long long>(n) * disp.count + d) * out_height + oy) * out_width + ox0 + lane] =
            from_acc<scalar_t>(sum[r] * disp.inv_count);
      }
    }
  }
}

// Both gradients, gathered (no atomics: deterministic), written NCHW unpadded.
// With p a padded input position, w a window offset and d a displacement,
//   grad_a[p] = sum over w, d of grad[d, out(p - w)]     * b[p + d]
//   grad_b[p] = sum over w, d of grad[d, out(p - d - w)] * a[p - d]
// where out(centre) is the output pixel whose window is centred there (if any).
// A block takes a row segment of input pixels (lane = pixel) and a chunk of
// channels (each warp a share); for each window offset and group of
// displacements it stages the two gradient tiles (one value per pixel and
// displacement, which serves every channel of the chunk) and the spans of b and
// a that they meet.
template <typename scalar_t>
__global__ void correlation_backward_kernel(const scalar_t* __restrict__ grad_output, const scalar_t* __restrict__ a,
                                            const scalar_t* __restrict__ b, scalar_t* __restrict__ grad_a,
                                            scalar_t* __restrict__ grad_b, int channels, int height, int width,
                                            int pad, int out_height, int out_width, int kernel_radius,
                                            int max_displacement, int stride1, int stride2) {
  typedef typename acc_type<scalar_t>::type acc_t;
  typedef TileWord<scalar_t> word_t;
  constexpr int chunk = correlation_channel_chunk(sizeof(scalar_t));
  constexpr int words = chunk / word_t::channels;
  constexpr int warps = kCorrelationThreads / 32;
  constexpr int per_warp = words / warps;  // words per thread: warp, warp + warps, ...
  __shared__ acc_t grad_a_tile[kCorrelationGroup][kCorrelationTileWidth];
  __shared__ acc_t grad_b_tile[kCorrelationGroup][kCorrelationTileWidth];
  __shared__ word_t b_tile[kCorrelationSpan][words + 1];
  __shared__ word_t a_tile[kCorrelationSpan][words + 1];

  const Displacements<acc_t> disp(channels, kernel_radius, max_displacement, stride2);
  const CorrelationTiling tiling = correlation_tiling(disp.size, 1, stride2);
  const int padded_height = height + 2 * pad;
  const int padded_width = width + 2 * pad;
  const int tiles = static_cast<int>(ceil_div(width, tiling.tile_width));
  const int chunks = static_cast<int>(ceil_div(channels, chunk));
  long long block = blockIdx.x;
  const int c0 = next_digit(block, chunks) * chunk;
  const int tile = next_digit(block, tiles);
  const int y = next_digit(block, height);
  const int n = static_cast<int>(block);

  const int x0 = tile * tiling.tile_width;
  const int pixels = min_int(tiling.tile_width, width - x0);
  const int py = y + pad;
  const int px0 = x0 + pad;
  const long long plane = static_cast<long long>(out_height) * out_width;
  const scalar_t* grad_n = grad_output + static_cast<long long>(n) * disp.count * plane;
  const scalar_t* a_n = a + static_cast<long long>(n) * padded_height * padded_width * channels;
  const scalar_t* b_n = b + static_cast<long long>(n) * padded_height * padded_width * channels;

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  acc_t ga[per_warp][word_t::channels] = {}, gb[per_warp][word_t::channels] = {};
  for (int wy = -kernel_radius; wy <= kernel_radius; ++wy) {
    const int oy_a = output_index(py - wy, disp.border, stride1, out_height);
    for (int wx = -kernel_radius; wx <= kernel_radius; ++wx) {
      for (int j = 0; j < disp.size; ++j) {
        const int dy = (j - disp.radius) * stride2;
        const int oy_b = output_index(py - dy - wy, disp.border, stride1, out_height);
        if (oy_a < 0 && oy_b < 0) continue;  // the same for the whole block
        for (int k0 = 0; k0 < disp.size; k0 += tiling.group) {
          const int group_count = min_int(tiling.group, disp.size - k0);
          const int dx0 = (k0 - disp.radius) * stride2;
          const int dx_last = dx0 + (group_count - 1) * stride2;
          const int span = pixels + (group_count - 1) * stride2;
          __syncthreads();  // the previous tiles have been read
          for (int i = threadIdx.x; i < group_count * kCorrelationTileWidth; i += blockDim.x) {
            const int k = i / kCorrelationTileWidth;
            const int p = i - k * kCorrelationTileWidth;
            const int dx = dx0 + k * stride2;
            const scalar_t* grad_d = grad_n + (j * disp.size + k0 + k) * plane;
            const int ox_a = output_index(px0 + p - wx, disp.border, stride1, out_width);
            const int ox_b = output_index(px0 + p - dx - wx, disp.border, stride1, out_width);
            const bool inside = p < pixels;
            grad_a_tile[k][p] = inside && oy_a >= 0 && ox_a >= 0 ? to_acc(grad_d[oy_a * out_width + ox_a]) : acc_t(0);
            grad_b_tile[k][p] = inside && oy_b >= 0 && ox_b >= 0 ? to_acc(grad_d[oy_b * out_width + ox_b]) : acc_t(0);
          }
          // b from column px0 + dx0 (pixel 0, first displacement), a from px0 - dx_last
          load_tile<scalar_t, words>(b_tile, b_n, oy_a >= 0 ? py + dy : -1, px0 + dx0, 1, span, c0, channels,
                                     padded_height, padded_width);
          load_tile<scalar_t, words>(a_tile, a_n, oy_b >= 0 ? py - dy : -1, px0 - dx_last, 1, span, c0, channels,
                                     padded_height, padded_width);
          __syncthreads();
          if (lane < pixels) {
            for (int k = 0; k < group_count; ++k) {
              const acc_t g_a = grad_a_tile[k][lane];
              const acc_t g_b = grad_b_tile[k][lane];
              const int pb = lane + k * stride2;
              const int pa = lane + (group_count - 1 - k) * stride2;
#pragma unroll
              for (int i = 0; i < per_warp; ++i) {
                const word_t bv = b_tile[pb][warp + i * warps];
                const word_t av = a_tile[pa][warp + i * warps];
#pragma unroll
                for (int c = 0; c < word_t::channels; ++c) {
                  ga[i][c] += g_a * bv.get(c);
                  gb[i][c] += g_b * av.get(c);
                }
              }
            }
          }
        }
      }
    }
  }
  if (lane < pixels) {
#pragma unroll
    for (int i = 0; i < per_warp; ++i) {
#pragma unroll
      for (int k = 0; k < word_t::channels; ++k) {
        const int c = c0 + (warp + i * warps) * word_t::channels + k;
        if (c < channels) {
          const long long out_offset = ((static_cast<long long>(n) * channels + c) * height + y) * width + x0 + lane;
          grad_a[out_offset] = from_acc<scalar_t>(ga[i][k] * disp.inv_count);
          grad_b[out_offset] = from_acc<scalar_t>(gb[i][k] * disp.inv_count);
        }
      }
    }
  }
}

#endif  // CUDA

}  // namespace vid2vid
