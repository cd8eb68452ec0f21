// CPU kernels of the flow warp. Both run row by row, and within a row channel
// by channel, over samples computed once per pixel. The backward is one pass:
// the flow gradient and the scatter of the input gradient together.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "warp/warp.h"
#include "warp/warp_kernel.cuh"

namespace vid2vid {
namespace {

// The samples of row y of image b, written to row[0 .. width).
template <typename scalar_t, typename acc_t>
void sample_row(const scalar_t* flow, int64_t b, int y, int height, int width, BilinearSample<acc_t>* row) {
  const int64_t plane = static_cast<int64_t>(height) * width;
  for (int x = 0; x < width; ++x) {
    row[x] = sample_at<acc_t>(flow + b * 2 * plane, x, y, width, height);
  }
}

// Parallel over image rows.
template <typename scalar_t>
void forward(const scalar_t* input, const scalar_t* flow, scalar_t* output, int64_t batch, int64_t channels,
             int height, int width) {
  using acc_t = typename acc_type<scalar_t>::type;
  const int64_t plane = static_cast<int64_t>(height) * width;
  // Enough rows per task to amortise the scheduling.
  const int64_t rows_per_task = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, channels * width));
  at::parallel_for(0, batch * height, rows_per_task, [&](int64_t begin, int64_t end) {
    std::vector<BilinearSample<acc_t>> row(width);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / height;
      const int y = static_cast<int>(r % height);
      sample_row(flow, b, y, height, width, row.data());
      for (int64_t c = 0; c < channels; ++c) {
        const scalar_t* in_plane = input + (b * channels + c) * plane;
        scalar_t* out_row = output + (b * channels + c) * plane + static_cast<int64_t>(y) * width;
        for (int x = 0; x < width; ++x) {
          out_row[x] = static_cast<scalar_t>(interpolate(load_corners<acc_t>(in_plane, width, row[x]), row[x]));
        }
      }
    }
  });
}

// One pass over rows [row_begin, row_end) of image b: the flow gradient of
// each pixel (a sum over channels), and its input gradient scattered into
// `grad_input` (zeroed, acc_t, the layout of the input). Row by row, and
// within a row channel by channel, so that the rows being read and written
// stay in cache however many channels there are.
template <typename scalar_t>
void backward_rows(const scalar_t* grad_output, const scalar_t* input, const scalar_t* flow,
                   typename acc_type<scalar_t>::type* grad_input, scalar_t* grad_flow, int64_t b, int64_t channels,
                   int height, int width, int row_begin, int row_end) {
  using acc_t = typename acc_type<scalar_t>::type;
  const int64_t plane = static_cast<int64_t>(height) * width;
  std::vector<BilinearSample<acc_t>> s(width);
  std::vector<acc_t> g_fx(width), g_fy(width);
  for (int y = row_begin; y < row_end; ++y) {
    const int64_t row_start = static_cast<int64_t>(y) * width;
    sample_row(flow, b, y, height, width, s.data());
    std::fill(g_fx.begin(), g_fx.end(), acc_t(0));
    std::fill(g_fy.begin(), g_fy.end(), acc_t(0));
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t offset = (b * channels + c) * plane;
      const scalar_t* g_row = grad_output + offset + row_start;
      acc_t* gi = grad_input + offset;
      for (int x = 0; x < width; ++x) {
        const Corners<acc_t> v = load_corners<acc_t>(input + offset, width, s[x]);
        const acc_t g = static_cast<acc_t>(g_row[x]);
        g_fx[x] += g * d_interpolate_dx(v, s[x]);
        g_fy[x] += g * d_interpolate_dy(v, s[x]);
        gi[s[x].y0 * width + s[x].x0] += g * (1 - s[x].wx) * (1 - s[x].wy);
        gi[s[x].y0 * width + s[x].x1] += g * s[x].wx * (1 - s[x].wy);
        gi[s[x].y1 * width + s[x].x0] += g * (1 - s[x].wx) * s[x].wy;
        gi[s[x].y1 * width + s[x].x1] += g * s[x].wx * s[x].wy;
      }
    }
    scalar_t* gf = grad_flow + b * 2 * plane + row_start;
    for (int x = 0; x < width; ++x) {
      gf[x] = static_cast<scalar_t>(g_fx[x]);
      gf[plane + x] = static_cast<scalar_t>(g_fy[x]);
    }
  }
}

// One pass over the pixels, parallel over bands of rows. A band's samples may
// land anywhere in its image, so each band of an image scatters into its own
// copy of the input gradient (no atomics, a fixed order of summation), and
// the copies are summed at the end. Images are split into bands only when
// there are fewer images than threads.
template <typename scalar_t>
void backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& flow,
              at::Tensor& grad_input, at::Tensor& grad_flow) {
  using acc_t = typename acc_type<scalar_t>::type;
  const int64_t batch = input.size(0), channels = input.size(1);
  const int height = static_cast<int>(input.size(2)), width = static_cast<int>(input.size(3));
  const int64_t bands = std::clamp<int64_t>((at::get_num_threads() + batch - 1) / batch, 1, height);
  const at::Tensor copies = at::zeros({bands - 1, batch, channels, height, width}, grad_input.options());
  std::vector<acc_t*> targets{grad_input.mutable_data_ptr<acc_t>()};
  for (int64_t band = 1; band < bands; ++band) targets.push_back(copies[band - 1].mutable_data_ptr<acc_t>());
  at::parallel_for(0, batch * bands, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / bands, band = task % bands;
      backward_rows(grad_output.const_data_ptr<scalar_t>(), input.const_data_ptr<scalar_t>(),
                    flow.const_data_ptr<scalar_t>(), targets[band], grad_flow.mutable_data_ptr<scalar_t>(), b,
                    channels, height, width, static_cast<int>(band * height / bands),
                    static_cast<int>((band + 1) * height / bands));
    }
  });
  if (bands > 1) grad_input.add_(copies.sum(0));
}

}  // namespace

void warp_forward_cpu(const at::Tensor& input, const at::Tensor& flow, at::Tensor& output) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "warp_forward_cpu", [&] {
    forward<scalar_t>(input.const_data_ptr<scalar_t>(), flow.const_data_ptr<scalar_t>(),
                      output.mutable_data_ptr<scalar_t>(), input.size(0), input.size(1),
                      static_cast<int>(input.size(2)), static_cast<int>(input.size(3)));
  });
}

void warp_backward_cpu(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& flow,
                       at::Tensor& grad_input_acc, at::Tensor& grad_flow) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "warp_backward_cpu", [&] {
    backward<scalar_t>(grad_output, input, flow, grad_input_acc, grad_flow);
  });
}

}  // namespace vid2vid
