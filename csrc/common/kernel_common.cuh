// Helpers shared by the CPU and CUDA kernels of every operator.
//
// This header must stay free of torch headers: it is compiled by g++ (CPU
// kernels), by nvcc (CUDA kernels) and at run time by NVRTC (the CuPy backend).
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define V2V_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define V2V_HOST_DEVICE inline
#endif

#if !defined(__CUDACC_RTC__)
#include <math.h>
#endif

namespace vid2vid {

// Type used to accumulate: float for float/half/bfloat16, double for double.
template <typename T>
struct acc_type {
  typedef float type;
};
template <>
struct acc_type<double> {
  typedef double type;
};

V2V_HOST_DEVICE float floor_acc(float v) { return floorf(v); }
V2V_HOST_DEVICE double floor_acc(double v) { return floor(v); }

V2V_HOST_DEVICE int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace vid2vid
