// CPU kernels of the flow warp, parallel over image rows (forward, flow
// gradient) and over channel planes (input gradient, so that the scatter
// needs no atomics and is deterministic).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "warp/warp.h"
#include "warp/warp_kernel.cuh"

namespace vid2vid {
namespace {

// Rows or planes per parallel task: enough work per task to amortise the scheduling.
int64_t grain(int64_t work_per_item) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work_per_item)); }

// The samples of row y of image b, written to row[0 .. width).
template <typename scalar_t, typename acc_t>
void sample_row(const scalar_t* flow, int64_t b, int y, int height, int width, BilinearSample<acc_t>* row) {
  const int64_t plane = static_cast<int64_t>(height) * width;
  for (int x = 0; x < width; ++x) {
    row[x] = sample_pixel<acc_t>(flow + b * 2 * plane, static_cast<int64_t>(y) * width + x, width, height);
  }
}

template <typename scalar_t>
void forward(const scalar_t* input, const scalar_t* flow, scalar_t* output, int64_t batch, int64_t channels,
             int height, int width) {
  using acc_t = typename acc_type<scalar_t>::type;
  const int64_t plane = static_cast<int64_t>(height) * width;
  at::parallel_for(0, batch * height, grain(channels * width), [&](int64_t begin, int64_t end) {
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

template <typename scalar_t>
void backward(const scalar_t* grad_output, const scalar_t* input, const scalar_t* flow,
              typename acc_type<scalar_t>::type* grad_input, scalar_t* grad_flow, int64_t batch, int64_t channels,
              int height, int width) {
  using acc_t = typename acc_type<scalar_t>::type;
  const int64_t plane = static_cast<int64_t>(height) * width;

  // Both passes below read every sample position many times (once per
  // channel): compute them once.
  std::vector<BilinearSample<acc_t>> samples(batch * plane);
  at::parallel_for(0, batch * height, grain(width), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      sample_row(flow, r / height, static_cast<int>(r % height), height, width, samples.data() + r * width);
    }
  });

  at::parallel_for(0, batch * channels, grain(plane), [&](int64_t begin, int64_t end) {
    for (int64_t bc = begin; bc < end; ++bc) {
      const BilinearSample<acc_t>* s = samples.data() + (bc / channels) * plane;
      const scalar_t* g_plane = grad_output + bc * plane;
      acc_t* gi = grad_input + bc * plane;
      for (int64_t p = 0; p < plane; ++p) {
        const acc_t g = static_cast<acc_t>(g_plane[p]);
        gi[s[p].y0 * width + s[p].x0] += g * (1 - s[p].wx) * (1 - s[p].wy);
        gi[s[p].y0 * width + s[p].x1] += g * s[p].wx * (1 - s[p].wy);
        gi[s[p].y1 * width + s[p].x0] += g * (1 - s[p].wx) * s[p].wy;
        gi[s[p].y1 * width + s[p].x1] += g * s[p].wx * s[p].wy;
      }
    }
  });

  at::parallel_for(0, batch * height, grain(channels * width), [&](int64_t begin, int64_t end) {
    std::vector<acc_t> g_fx(width), g_fy(width);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / height;
      const int64_t row_start = (r % height) * width;
      const BilinearSample<acc_t>* s = samples.data() + b * plane + row_start;
      std::fill(g_fx.begin(), g_fx.end(), acc_t(0));
      std::fill(g_fy.begin(), g_fy.end(), acc_t(0));
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t offset = (b * channels + c) * plane;
        const scalar_t* g_row = grad_output + offset + row_start;
        for (int x = 0; x < width; ++x) {
          const Corners<acc_t> v = load_corners<acc_t>(input + offset, width, s[x]);
          const acc_t g = static_cast<acc_t>(g_row[x]);
          g_fx[x] += g * d_interpolate_dx(v, s[x]);
          g_fy[x] += g * d_interpolate_dy(v, s[x]);
        }
      }
      scalar_t* gf = grad_flow + b * 2 * plane + row_start;
      for (int x = 0; x < width; ++x) {
        gf[x] = static_cast<scalar_t>(g_fx[x]);
        gf[plane + x] = static_cast<scalar_t>(g_fy[x]);
      }
    }
  });
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
    using acc_t = typename acc_type<scalar_t>::type;
    backward<scalar_t>(grad_output.const_data_ptr<scalar_t>(), input.const_data_ptr<scalar_t>(),
                       flow.const_data_ptr<scalar_t>(), grad_input_acc.mutable_data_ptr<acc_t>(),
                       grad_flow.mutable_data_ptr<scalar_t>(), input.size(0), input.size(1),
                       static_cast<int>(input.size(2)), static_cast<int>(input.size(3)));
  });
}

}  // namespace vid2vid
