// Helpers shared by the CPU and CUDA kernels of every operator.
//
// This header must stay free of torch headers: it is compiled by g++ (CPU
// kernels), by nvcc (CUDA kernels), at run time by NVRTC (the CuPy backend),
// and by g++ again with V2V_CUDA_EMULATION for the tests' CPU emulation of CUDA.
#pragma once

// V2V_DEVICE_CODE: whether the __global__ kernels are compiled: by nvcc, by NVRTC,
// and by the tests' CPU emulation of CUDA (tests/cuda_emulation/).
#if defined(__CUDACC__) || defined(__CUDACC_RTC__) || defined(V2V_CUDA_EMULATION)
#define V2V_DEVICE_CODE 1
#define V2V_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define V2V_DEVICE_CODE 0
#define V2V_HOST_DEVICE inline
#endif

#if !defined(__CUDACC_RTC__)
#include <math.h>
#endif

#if V2V_DEVICE_CODE
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

#if V2V_DEVICE_CODE
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

V2V_HOST_DEVICE int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }
V2V_HOST_DEVICE int min_int(int a, int b) { return a < b ? a : b; }

// The grid and block of a kernel launch (1-D). Each kernel has one function that
// computes its LaunchConfig, called by its CUDA launcher (*_cuda.cu), by the CuPy
// backend (through the op vid2vid_C::launch_config) and by the tests' emulator,
// so that all three launch it alike.
struct LaunchConfig {
  long long blocks;
  int threads;
};

// Default cap on the blocks of grid-stride loops: enough to fill any GPU. Tests lower it
// so that the loops go round more than once.
constexpr long long kMaxGridStrideBlocks = 65535LL * 32;
constexpr int kGridStrideThreads = 256;

// Blocks for a grid-stride loop over n items: enough to fill the GPU, never more than needed.
V2V_HOST_DEVICE LaunchConfig grid_stride_launch(long long n, long long max_blocks) {
  const long long blocks = (n + kGridStrideThreads - 1) / kGridStrideThreads;
  return {blocks < 1 ? 1 : (blocks > max_blocks ? max_blocks : blocks), kGridStrideThreads};
}

// A flat index over (image, pixel of its plane), split. Where every index of the
// grid fits in 32 bits (`count`, the number of indices, at most 2^31 - 1: the
// same answer for every thread) the division is a 32-bit one, a few instructions,
// where a 64-bit division is a software routine of some seventy on a GPU.
struct PlaneIndex {
  int b;
  long long p;
};

V2V_HOST_DEVICE PlaneIndex split_plane_index(long long i, long long plane, long long count) {
  if (count <= 0x7fffffffLL) {
    const unsigned int narrow = static_cast<unsigned int>(i), narrow_plane = static_cast<unsigned int>(plane);
    const unsigned int b = narrow / narrow_plane;
    return {static_cast<int>(b), static_cast<long long>(narrow - b * narrow_plane)};
  }
  const long long b = i / plane;
  return {static_cast<int>(b), i - b * plane};
}

// The next digit of a mixed-radix index (the lowest first), taken off it: how a kernel
// whose blocks enumerate several dimensions finds its place in each.
V2V_HOST_DEVICE int next_digit(long long& index, long long radix) {
  const long long digit = index % radix;
  index /= radix;
  return static_cast<int>(digit);
}

}  // namespace vid2vid
