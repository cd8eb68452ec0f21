// The emulator stands in for CUDA's header (see emulator.h).
#pragma once
#include "emulator.h"
