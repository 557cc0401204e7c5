// The one way a kernel is launched: BK_LAUNCH(kernel, grid, block, smem, stream, args...)
// expands to <<<...>>> under nvcc. Under the SIMT emulator (csrc/sim, host
// compiler, BK_SIM defined) it runs the kernel's blocks and threads on the CPU.
#pragma once
#include "device/primitives.cuh"

#if defined(__CUDACC__)
#define BK_LAUNCH(kernel, grid, block, smem, stream, ...) \
  (kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__), cudaGetLastError())
#elif defined(BK_SIM)
#include "sim/launch.h"
#define BK_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::bk::sim::launch(#kernel, (grid), (block), (smem), (stream), kernel, __VA_ARGS__)
#else
#error "csrc/device/launch.cuh: compile with nvcc, or with the host compiler and -DBK_SIM"
#endif
