// Registers the compiled kernels as the raw operators vid2vid_C::*. The public
// operators vid2vid::* (vid2vid/ops/) wrap these with argument checks,
// autograd, fake tensors and the choice of backend.
#include <Python.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <vector>

#include "channel_norm/channel_norm.h"
#include "channel_norm/channel_norm_kernel.cuh"
#include "correlation/correlation.h"
#include "correlation/correlation_kernel.cuh"
#include "warp/warp.h"
#include "warp/warp_kernel.cuh"

namespace vid2vid {

bool cuda_enabled() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

// Which compiler built this file, and with which C++ library: the one-time check that errors
// reach Python (vid2vid/ops/extension.py) names it when they do not.
std::string build_info() {
  std::string info;
#if defined(__clang__)
  info = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  info = std::string("GCC ") + __VERSION__;
#else
  info = "an unknown compiler";
#endif
#ifdef __GLIBCXX__
  info += ", libstdc++ " + std::to_string(__GLIBCXX__);
#endif
#ifdef _GLIBCXX_USE_CXX11_ABI
  info += ", _GLIBCXX_USE_CXX11_ABI=" + std::to_string(_GLIBCXX_USE_CXX11_ABI);
#endif
  return info;
}

// [blocks, threads] of a kernel's launch, from the same function its CUDA launcher calls:
// the CuPy backend launches with these (see LaunchConfig in common/kernel_common.cuh).
std::vector<int64_t> launch_config(const std::string& kernel, const std::vector<int64_t>& sizes,
                                   std::optional<int64_t> max_blocks_) {
  TORCH_CHECK(!sizes.empty(), "launch_config: no sizes for ", kernel);
  const int64_t max_blocks = max_blocks_.value_or(kMaxGridStrideBlocks);
  LaunchConfig c;
  if (kernel == "warp") {
    c = warp_launch(sizes[0], max_blocks);
  } else if (kernel == "warp_backward") {
    TORCH_CHECK(sizes.size() == 3, "launch_config: warp_backward takes [batch, height, width]");
    c = warp_backward_launch(sizes[0], static_cast<int>(sizes[1]), static_cast<int>(sizes[2]), max_blocks);
  } else if (kernel == "channel_norm") {
    TORCH_CHECK(sizes.size() == 2, "launch_config: channel_norm takes [pixels, channels]");
    c = channel_norm_launch(sizes[0], static_cast<int>(sizes[1]), max_blocks);
  } else if (kernel == "correlation_forward") {
    TORCH_CHECK(sizes.size() == 6,
                "launch_config: correlation_forward takes [batch, out_height, out_width, max_displacement, "
                "stride1, stride2]");
    c = correlation_forward_launch(sizes[0], static_cast<int>(sizes[1]), static_cast<int>(sizes[2]),
                                   static_cast<int>(sizes[3]), static_cast<int>(sizes[4]), static_cast<int>(sizes[5]));
  } else if (kernel == "correlation_backward") {
    TORCH_CHECK(sizes.size() == 7,
                "launch_config: correlation_backward takes [batch, height, width, channels, max_displacement, "
                "stride2, element bytes]");
    c = correlation_backward_launch(sizes[0], static_cast<int>(sizes[1]), static_cast<int>(sizes[2]),
                                    static_cast<int>(sizes[3]), static_cast<int>(sizes[4]), static_cast<int>(sizes[5]),
                                    static_cast<int>(sizes[6]));
  } else {
    TORCH_CHECK(false, "launch_config: unknown kernel ", kernel);
  }
  return {c.blocks, c.threads};
}

TORCH_LIBRARY(vid2vid_C, m) {
  m.def("cuda_enabled() -> bool", &cuda_enabled);
  m.def("build_info() -> str", &build_info);
  m.def("launch_config(str kernel, int[] sizes, int? max_blocks=None) -> int[]", &launch_config);
  m.def("warp_forward(Tensor input, Tensor flow) -> Tensor");
  m.def("warp_backward(Tensor grad_output, Tensor input, Tensor flow) -> (Tensor, Tensor)");
  m.def(
      "correlation_forward(Tensor input1, Tensor input2, int pad_size, int kernel_size, int max_displacement, "
      "int stride1, int stride2) -> Tensor");
  m.def(
      "correlation_backward(Tensor grad_output, Tensor input1, Tensor input2, int pad_size, int kernel_size, "
      "int max_displacement, int stride1, int stride2) -> (Tensor, Tensor)");
  m.def("channel_norm_forward(Tensor input) -> Tensor");
  m.def("channel_norm_backward(Tensor grad_output, Tensor input, Tensor output) -> Tensor");
}

// The entry points branch on the device themselves, so one function serves both keys.
#define V2V_REGISTER_KERNELS(m)                                \
  m.impl("warp_forward", &warp_forward);                       \
  m.impl("warp_backward", &warp_backward);                     \
  m.impl("correlation_forward", &correlation_forward);         \
  m.impl("correlation_backward", &correlation_backward);       \
  m.impl("channel_norm_forward", &channel_norm_forward);       \
  m.impl("channel_norm_backward", &channel_norm_backward);

TORCH_LIBRARY_IMPL(vid2vid_C, CPU, m) { V2V_REGISTER_KERNELS(m) }

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(vid2vid_C, CUDA, m) { V2V_REGISTER_KERNELS(m) }
#endif

}  // namespace vid2vid

// Importing vid2vid._C runs the registrations above; the module itself is empty.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
