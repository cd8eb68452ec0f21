// Registers the compiled kernels as the raw operators vid2vid_C::*. The public
// operators vid2vid::* (vid2vid/ops/) wrap these with argument checks,
// autograd, fake tensors and the choice of backend.
#include <Python.h>
#include <torch/library.h>

#include "channel_norm/channel_norm.h"
#include "correlation/correlation.h"
#include "warp/warp.h"

namespace vid2vid {

bool cuda_enabled() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

TORCH_LIBRARY(vid2vid_C, m) {
  m.def("cuda_enabled() -> bool", &cuda_enabled);
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
