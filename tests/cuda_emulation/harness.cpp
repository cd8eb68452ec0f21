// The tests' build of the CUDA kernels for the emulator (emulator.h): every
// kernel of csrc/**/*_kernel.cuh in every element type, callable through one C
// function with the kernel's name expression (as the CuPy backend names it),
// the launch geometry, and the arguments as 64-bit integers (pointers as
// addresses). Built and loaded by tests/cuda_emulation/__init__.py.
#include "emulator.h"  // first: the CUDA keywords and types the kernels use

#include <cstddef>
#include <cstdio>
#include <map>
#include <string>
#include <type_traits>
#include <utility>

#include "channel_norm/channel_norm_kernel.cuh"
#include "correlation/correlation_kernel.cuh"
#include "warp/warp_kernel.cuh"

// A kernel that tests the emulator itself: a block-wide sum of blockDim.x values per block
// through __shared__ memory and __syncthreads. Were the barrier not kept, thread 0 would
// add up the slots before the others had written theirs.
__global__ void emulator_block_sum(const float* in, float* out) {
  __shared__ float partial[1024];
  const int t = threadIdx.x;
  partial[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

// A kernel that tests the emulator's shuffles (no kernel of csrc uses them now): the sum of
// each warp's 32 values by a shuffle-down reduction, written by its lane 0.
__global__ void emulator_warp_sum(const float* in, float* out) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  float v = in[t];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  if ((threadIdx.x & 31) == 0) out[t / 32] = v;
}

// A kernel with a bug the emulator must report: half of the warp leaves before a full-mask
// shuffle that the other half waits in (undefined on a GPU; a deadlock error here, not a hang).
__global__ void emulator_divergent_shuffle(float* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, out[threadIdx.x], 1);
}

namespace {

using Invoker = std::function<void(long long, int, const long long*)>;

template <typename T>
T argument(long long value) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<T>(static_cast<std::uintptr_t>(value));
  } else {
    return static_cast<T>(value);
  }
}

template <typename... P, std::size_t... I>
void call(void (*kernel)(P...), const long long* args, std::index_sequence<I...>) {
  kernel(argument<P>(args[I])...);
}

template <typename... P>
std::pair<Invoker, int> invoker(void (*kernel)(P...)) {
  Invoker run = [kernel](long long blocks, int threads, const long long* args) {
    v2v_emu::launch(blocks, threads, [&] { call(kernel, args, std::index_sequence_for<P...>{}); });
  };
  return {run, static_cast<int>(sizeof...(P))};
}

#define V2V_KERNEL(kernel, type) {"vid2vid::" #kernel "<" #type ">", invoker(&vid2vid::kernel<type>)}
#define V2V_KERNEL_ALL_TYPES(kernel)                                                     \
  V2V_KERNEL(kernel, float), V2V_KERNEL(kernel, double), V2V_KERNEL(kernel, __half), \
      V2V_KERNEL(kernel, __nv_bfloat16)

const std::map<std::string, std::pair<Invoker, int>>& kernels() {
  static const std::map<std::string, std::pair<Invoker, int>> table = {
      V2V_KERNEL_ALL_TYPES(warp_forward_kernel),        V2V_KERNEL_ALL_TYPES(warp_backward_kernel),
      V2V_KERNEL_ALL_TYPES(correlation_forward_kernel), V2V_KERNEL_ALL_TYPES(correlation_backward_kernel),
      V2V_KERNEL_ALL_TYPES(channel_norm_forward_kernel), V2V_KERNEL_ALL_TYPES(channel_norm_backward_kernel),
      {"emulator_block_sum", invoker(&emulator_block_sum)},
      {"emulator_warp_sum", invoker(&emulator_warp_sum)},
      {"emulator_divergent_shuffle", invoker(&emulator_divergent_shuffle)},
  };
  return table;
}

}  // namespace

// Runs a kernel; 0 on success, else 1 with the reason in `error`.
extern "C" int v2v_emulate(const char* name, long long blocks, int threads, const long long* args, int count,
                           char* error, int error_size) {
  try {
    const auto found = kernels().find(name);
    if (found == kernels().end()) throw std::invalid_argument(std::string("no emulated kernel ") + name);
    if (found->second.second != count) {
      throw std::invalid_argument(std::string(name) + " takes " + std::to_string(found->second.second) +
                                  " arguments, got " + std::to_string(count));
    }
    v2v_emu::atomic_adds = 0;
    found->second.first(blocks, threads, args);
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(error, error_size, "%s", e.what());
    return 1;
  }
}

extern "C" long long v2v_atomic_adds() { return v2v_emu::atomic_adds; }
