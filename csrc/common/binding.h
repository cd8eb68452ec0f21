// What every operator's torch binding needs: argument checks and the mapping
// from torch's dtypes to the launchers' ScalarKind. The Python layer has
// already validated the arguments with friendlier messages; these checks keep
// the raw ops safe when called directly.
#pragma once

#include <ATen/ATen.h>

#include "common/scalar_kind.h"

#ifdef WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace vid2vid {

inline void check_tensor(const at::Tensor& t, const char* name, int64_t dim) {
  TORCH_CHECK(t.dim() == dim, name, " must have ", dim, " dimensions, got shape ", t.sizes());
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), name, " must be floating point, got ", t.scalar_type());
}

inline void check_same(const at::Tensor& a, const char* a_name, const at::Tensor& b, const char* b_name) {
  TORCH_CHECK(a.device() == b.device(), a_name, " is on ", a.device(), " but ", b_name, " is on ", b.device());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), a_name, " is ", a.scalar_type(), " but ", b_name, " is ",
              b.scalar_type());
}

// Half-precision inputs accumulate in float32; double stays double.
inline at::ScalarType acc_scalar_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

inline ScalarKind scalar_kind(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return ScalarKind::Float32;
    case at::kDouble: return ScalarKind::Float64;
    case at::kHalf: return ScalarKind::Float16;
    case at::kBFloat16: return ScalarKind::BFloat16;
    default: TORCH_CHECK(false, "unsupported dtype ", t);
  }
}

#ifdef WITH_CUDA
inline void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, " CUDA launch failed: ", cudaGetErrorString(err));
}
#endif

}  // namespace vid2vid
