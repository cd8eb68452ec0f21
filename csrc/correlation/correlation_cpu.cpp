// CPU kernels of the correlation: the same loops as the CUDA kernels, on
// padded NHWC inputs already converted to the accumulation type, so that the
// channel loops are contiguous dot products and axpys the compiler vectorises.
// Parallel over output rows (forward) and input rows (backward, a gather:
// deterministic, no atomics).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "correlation/correlation.h"
#include "correlation/correlation_kernel.cuh"

namespace vid2vid {
namespace {

template <typename acc_t>
acc_t dot(const acc_t* a, const acc_t* b, int64_t n) {
  acc_t sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

template <typename acc_t>
void axpy(acc_t* y, acc_t alpha, const acc_t* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <typename acc_t>
void forward(const acc_t* a, const acc_t* b, acc_t* output, int64_t batch, int64_t channels,
             const CorrelationGeometry& g) {
  const Displacements<acc_t> disp(static_cast<int>(channels), g.kernel_radius, g.max_displacement, g.stride2);
  const int64_t displacements = disp.count;
  const int64_t hp = g.padded_height, wp = g.padded_width;
  const int64_t out_plane = static_cast<int64_t>(g.out_height) * g.out_width;

  at::parallel_for(0, batch * g.out_height, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / g.out_height;
      const int oy = static_cast<int>(r % g.out_height);
      const int cy = disp.border + oy * g.stride1;
      for (int ox = 0; ox < g.out_width; ++ox) {
        const int cx = disp.border + ox * g.stride1;
        for (int64_t d = 0; d < displacements; ++d) {
          const int dy = disp.dy(static_cast<int>(d));
          const int dx = disp.dx(static_cast<int>(d));
          acc_t sum = 0;
          for (int wy = -g.kernel_radius; wy <= g.kernel_radius; ++wy) {
            for (int wx = -g.kernel_radius; wx <= g.kernel_radius; ++wx) {
              sum += dot(a + ((n * hp + cy + wy) * wp + cx + wx) * channels,
                         b + ((n * hp + cy + wy + dy) * wp + cx + wx + dx) * channels, channels);
            }
          }
          output[(n * displacements + d) * out_plane + static_cast<int64_t>(oy) * g.out_width + ox] =
              sum * disp.inv_count;
        }
      }
    }
  });
}

template <typename acc_t>
void backward(const acc_t* grad_output, const acc_t* a, const acc_t* b, acc_t* grad_a, acc_t* grad_b,
              int64_t batch, int64_t channels, int height, int width, int pad, const CorrelationGeometry& g) {
  const Displacements<acc_t> disp(static_cast<int>(channels), g.kernel_radius, g.max_displacement, g.stride2);
  const int64_t displacements = disp.count;
  const int64_t hp = g.padded_height, wp = g.padded_width;
  const int64_t out_plane = static_cast<int64_t>(g.out_height) * g.out_width;
  const int64_t plane = static_cast<int64_t>(height) * width;

  at::parallel_for(0, batch * height, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> ga(channels), gb(channels);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / height;
      const int y = static_cast<int>(r % height);
      const int py = y + pad;
      const acc_t* grad_n = grad_output + n * displacements * out_plane;
      for (int x = 0; x < width; ++x) {
        const int px = x + pad;
        std::fill(ga.begin(), ga.end(), acc_t(0));
        std::fill(gb.begin(), gb.end(), acc_t(0));
        for (int64_t d = 0; d < displacements; ++d) {
          const int dy = disp.dy(static_cast<int>(d));
          const int dx = disp.dx(static_cast<int>(d));
          const acc_t* grad_d = grad_n + d * out_plane;
          for (int wy = -g.kernel_radius; wy <= g.kernel_radius; ++wy) {
            for (int wx = -g.kernel_radius; wx <= g.kernel_radius; ++wx) {
              // a[p] meets b[p + d] in the window centred at p - w.
              int oy = output_index(py - wy, disp.border, g.stride1, g.out_height);
              int ox = output_index(px - wx, disp.border, g.stride1, g.out_width);
              if (oy >= 0 && ox >= 0) {
                axpy(ga.data(), grad_d[oy * g.out_width + ox], b + ((n * hp + py + dy) * wp + px + dx) * channels,
                     channels);
              }
              // b[p] meets a[p - d] in the window centred at p - d - w.
              oy = output_index(py - dy - wy, disp.border, g.stride1, g.out_height);
              ox = output_index(px - dx - wx, disp.border, g.stride1, g.out_width);
              if (oy >= 0 && ox >= 0) {
                axpy(gb.data(), grad_d[oy * g.out_width + ox], a + ((n * hp + py - dy) * wp + px - dx) * channels,
                     channels);
              }
            }
          }
        }
        const int64_t offset = n * channels * plane + static_cast<int64_t>(y) * width + x;
        for (int64_t c = 0; c < channels; ++c) {
          grad_a[offset + c * plane] = ga[c] * disp.inv_count;
          grad_b[offset + c * plane] = gb[c] * disp.inv_count;
        }
      }
    }
  });
}

}  // namespace

void correlation_forward_cpu(const at::Tensor& a_padded, const at::Tensor& b_padded, at::Tensor& output,
                             const CorrelationGeometry& geometry) {
  AT_DISPATCH_FLOATING_TYPES(a_padded.scalar_type(), "correlation_forward_cpu", [&] {
    forward<scalar_t>(a_padded.const_data_ptr<scalar_t>(), b_padded.const_data_ptr<scalar_t>(),
                      output.mutable_data_ptr<scalar_t>(), a_padded.size(0), a_padded.size(3), geometry);
  });
}

void correlation_backward_cpu(const at::Tensor& grad_output, const at::Tensor& a_padded, const at::Tensor& b_padded,
                              at::Tensor& grad_a, at::Tensor& grad_b, int pad, const CorrelationGeometry& geometry) {
  AT_DISPATCH_FLOATING_TYPES(a_padded.scalar_type(), "correlation_backward_cpu", [&] {
    backward<scalar_t>(grad_output.const_data_ptr<scalar_t>(), a_padded.const_data_ptr<scalar_t>(),
                       b_padded.const_data_ptr<scalar_t>(), grad_a.mutable_data_ptr<scalar_t>(),
                       grad_b.mutable_data_ptr<scalar_t>(), a_padded.size(0), a_padded.size(3),
                       static_cast<int>(grad_a.size(2)), static_cast<int>(grad_a.size(3)), pad, geometry);
  });
}

}  // namespace vid2vid
