// A CPU emulation of CUDA's execution model, so that the tests run the device
// code of csrc/**/*_kernel.cuh (the very source nvcc and NVRTC compile) on the
// CPU, where there is no GPU.
//
// What it emulates:
//   * the grid: blocks run one after another; blockIdx, blockDim, gridDim;
//   * the threads of a block: each a fiber (ucontext) with its own stack and
//     threadIdx, run in turn on one OS thread; a thread runs until it finishes
//     or waits at a barrier;
//   * warps of 32 lanes in lock-step at every __shfl_*_sync: all 32 lanes must
//     reach the shuffle (a lane that has exited, or a partial warp, is an
//     error, as it is undefined behaviour on a GPU), deposit their values, then
//     read their partner's;
//   * __syncthreads() (a barrier of the block's live threads) and __shared__
//     (one static variable, shared by the block's fibers; blocks run one at a time);
//   * atomicAdd on float and double (fibers never run at once, so a plain
//     read-modify-write is atomic), counted per launch;
//   * __half and __nv_bfloat16 without implicit conversions, as nvcc compiles
//     them under torch's -D__CUDA_NO_HALF_CONVERSIONS__, with the intrinsics
//     that convert them (round to nearest even).
// A deadlock (threads waiting at a barrier that can never complete) is an error
// that names the block, instead of a hang.
#pragma once

#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#define __global__
#define __launch_bounds__(...)
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static

struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
};

namespace v2v_emu {

constexpr int kWarpSize = 32;
constexpr std::size_t kStackBytes = 64 * 1024;

// Indices of the emulated thread that runs now (set at every switch).
inline dim3 thread_index, block_index, block_dim, grid_dim;

struct Barrier {
  int arrived = 0;
  long generation = 0;
};

struct Fiber {
  ucontext_t context;
  std::vector<char> stack;
  bool done = false;
};

struct Warp {
  Barrier barrier;
  int lanes = 0;
  unsigned char slots[kWarpSize][8];
};

struct Block {
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  Barrier sync;
  ucontext_t scheduler;
  int current = 0;
  int live = 0;
  long progress = 0;  // arrivals at barriers and finished threads: a round without any is a deadlock
  const std::function<void()>* body = nullptr;
  std::exception_ptr error;
};

inline Block* running = nullptr;

inline void yield() { swapcontext(&running->fibers[running->current].context, &running->scheduler); }

inline void wait(Barrier& barrier, int participants) {
  const long generation = barrier.generation;
  ++running->progress;
  if (++barrier.arrived == participants) {
    barrier.arrived = 0;
    ++barrier.generation;
    return;
  }
  while (barrier.generation == generation) yield();
}

inline void fiber_main(int index) {
  try {
    (*running->body)();
  } catch (...) {
    if (!running->error) running->error = std::current_exception();
  }
  running->fibers[index].done = true;
  --running->live;
  ++running->progress;
}  // returns to uc_link: the scheduler

// Runs body as every thread of a grid of `blocks` blocks of `threads` threads.
inline void launch(long long blocks, int threads, const std::function<void()>& body) {
  if (blocks < 1 || threads < 1 || threads > 1024) {
    throw std::invalid_argument("invalid launch: " + std::to_string(blocks) + " blocks of " +
                                std::to_string(threads) + " threads");
  }
  Block block;
  block.body = &body;
  block.fibers.resize(threads);
  for (Fiber& f : block.fibers) f.stack.resize(kStackBytes);
  grid_dim = {static_cast<unsigned int>(blocks), 1, 1};
  block_dim = {static_cast<unsigned int>(threads), 1, 1};
  running = &block;
  for (long long b = 0; b < blocks; ++b) {
    block_index = {static_cast<unsigned int>(b), 0, 0};
    block.warps.assign((threads + kWarpSize - 1) / kWarpSize, Warp{});
    for (std::size_t w = 0; w < block.warps.size(); ++w) {
      block.warps[w].lanes = std::min<int>(kWarpSize, threads - static_cast<int>(w) * kWarpSize);
    }
    block.sync = Barrier{};
    block.live = threads;
    for (int t = 0; t < threads; ++t) {
      Fiber& f = block.fibers[t];
      f.done = false;
      getcontext(&f.context);
      f.context.uc_stack.ss_sp = f.stack.data();
      f.context.uc_stack.ss_size = f.stack.size();
      f.context.uc_link = &block.scheduler;
      makecontext(&f.context, reinterpret_cast<void (*)()>(&fiber_main), 1, t);
    }
    while (block.live > 0) {
      const long before = block.progress;
      for (int t = 0; t < threads; ++t) {
        if (block.fibers[t].done) continue;
        block.current = t;
        thread_index = {static_cast<unsigned int>(t), 0, 0};
        swapcontext(&block.scheduler, &block.fibers[t].context);
        if (block.error) {
          running = nullptr;
          std::rethrow_exception(block.error);
        }
      }
      if (block.live > 0 && block.progress == before) {
        running = nullptr;
        throw std::runtime_error("deadlock in block " + std::to_string(b) + ": " + std::to_string(block.live) +
                                 " threads wait at a barrier or shuffle that the others never reach");
      }
    }
  }
  running = nullptr;
}

// One lock-step exchange of a warp: every lane deposits `value`, then reads lane source(lane)'s.
template <typename T, typename Source>
T exchange(unsigned int mask, T value, Source source, const char* name) {
  static_assert(sizeof(T) <= 8, "shuffles of at most 8 bytes");
  const int t = running->current;
  Warp& warp = running->warps[t / kWarpSize];
  const int lane = t % kWarpSize;
  if (mask != 0xffffffffu || warp.lanes != kWarpSize) {
    throw std::runtime_error(std::string(name) + ": the emulator supports full masks in full warps only (mask " +
                             std::to_string(mask) + ", " + std::to_string(warp.lanes) + " lanes)");
  }
  std::memcpy(warp.slots[lane], &value, sizeof(T));
  wait(warp.barrier, kWarpSize);
  const int from = source(lane);
  T out = value;
  if (from >= 0 && from < kWarpSize) std::memcpy(&out, warp.slots[from], sizeof(T));
  wait(warp.barrier, kWarpSize);  // every lane has read before the slots are written again
  return out;
}

}  // namespace v2v_emu

#define threadIdx v2v_emu::thread_index
#define blockIdx v2v_emu::block_index
#define blockDim v2v_emu::block_dim
#define gridDim v2v_emu::grid_dim

template <typename T>
T __shfl_down_sync(unsigned int mask, T value, unsigned int delta, int = 32) {
  return v2v_emu::exchange(mask, value, [delta](int lane) { return lane + static_cast<int>(delta); },
                           "__shfl_down_sync");
}
template <typename T>
T __shfl_up_sync(unsigned int mask, T value, unsigned int delta, int = 32) {
  return v2v_emu::exchange(mask, value, [delta](int lane) { return lane - static_cast<int>(delta); },
                           "__shfl_up_sync");
}
template <typename T>
T __shfl_xor_sync(unsigned int mask, T value, int lane_mask, int = 32) {
  return v2v_emu::exchange(mask, value, [lane_mask](int lane) { return lane ^ lane_mask; }, "__shfl_xor_sync");
}
template <typename T>
T __shfl_sync(unsigned int mask, T value, int source_lane, int = 32) {
  return v2v_emu::exchange(mask, value, [source_lane](int) { return source_lane; }, "__shfl_sync");
}

inline void __syncthreads() { v2v_emu::wait(v2v_emu::running->sync, v2v_emu::running->live); }

namespace v2v_emu {
inline long long atomic_adds = 0;  // atomicAdds made by the last launch (v2v_atomic_adds): what a design saves
}  // namespace v2v_emu

inline float atomicAdd(float* address, float value) {
  ++v2v_emu::atomic_adds;
  const float old = *address;
  *address = old + value;
  return old;
}
inline double atomicAdd(double* address, double value) {
  ++v2v_emu::atomic_adds;
  const double old = *address;
  *address = old + value;
  return old;
}

// The CUDA half types: bits only, no implicit conversions.
struct __half {
  std::uint16_t bits;
};
struct __nv_bfloat16 {
  std::uint16_t bits;
};

inline float __half2float(__half h) {
  _Float16 value;
  std::memcpy(&value, &h.bits, 2);
  return static_cast<float>(value);
}
inline __half __float2half(float f) {
  const _Float16 value = static_cast<_Float16>(f);  // round to nearest even
  __half h;
  std::memcpy(&h.bits, &value, 2);
  return h;
}
inline float __bfloat162float(__nv_bfloat16 b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b.bits) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline __nv_bfloat16 __float2bfloat16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  __nv_bfloat16 b;
  if (std::isnan(f)) {
    b.bits = 0x7fc0;
  } else {
    bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
    b.bits = static_cast<std::uint16_t>(bits >> 16);
  }
  return b;
}
