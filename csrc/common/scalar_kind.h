// The element types the operators accept, named without torch headers so that
// the .cpp bindings can tell the CUDA launchers (.cu files) what a void* holds.
#pragma once

namespace vid2vid {

enum class ScalarKind { Float32, Float64, Float16, BFloat16 };

}  // namespace vid2vid
