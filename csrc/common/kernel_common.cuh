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

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
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

// Element <-> accumulator conversions. Every kernel converts through these,
// never with a bare cast: torch's extension build compiles CUDA with
// -D__CUDA_NO_HALF_CONVERSIONS__ and -D__CUDA_NO_BFLOAT16_CONVERSIONS__, which
// remove __half's and __nv_bfloat16's implicit conversions, so the CUDA half
// types convert through their intrinsics. On the CPU, c10::Half and
// c10::BFloat16 convert with a plain cast.
template <typename T>
V2V_HOST_DEVICE typename acc_type<T>::type to_acc(T v) {
  return static_cast<typename acc_type<T>::type>(v);
}
template <typename T>
V2V_HOST_DEVICE T from_acc(typename acc_type<T>::type v) {
  return static_cast<T>(v);
}

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
template <>
V2V_HOST_DEVICE float to_acc<__half>(__half v) {
  return __half2float(v);
}
template <>
V2V_HOST_DEVICE __half from_acc<__half>(float v) {
  return __float2half(v);
}
template <>
V2V_HOST_DEVICE float to_acc<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
V2V_HOST_DEVICE __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}
#endif

V2V_HOST_DEVICE float floor_acc(float v) { return floorf(v); }
V2V_HOST_DEVICE double floor_acc(double v) { return floor(v); }

V2V_HOST_DEVICE int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace vid2vid
