// Host-side helper for the CUDA launchers (.cu files): turn a ScalarKind into
// a concrete element type. No torch headers here.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "common/scalar_kind.h"

namespace vid2vid {

// Calls f(T{}) with T the element type named by kind; f returns cudaError_t.
template <typename F>
cudaError_t dispatch_kind(ScalarKind kind, F&& f) {
  switch (kind) {
    case ScalarKind::Float32: return f(float{});
    case ScalarKind::Float64: return f(double{});
    case ScalarKind::Float16: return f(__half{});
    case ScalarKind::BFloat16: return f(__nv_bfloat16{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace vid2vid
