// The one way a kernel is launched: BK_LAUNCH(kernel, grid, block, smem, stream, args...)
// expands to <<<...>>> under nvcc. Under the SIMT emulator (csrc/sim, host
// compiler, BK_SIM defined) it runs the kernel's blocks and threads on the CPU.
#pragma once
#include "device/primitives.cuh"

#if defined(__CUDACC__)
#define BK_LAUNCH(kernel, grid, block, smem, stream, ...) \
  (kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__), cudaGetLastError())
// All blocks resident at once (grid_sync); refused when the GPU cannot hold them.
#define BK_LAUNCH_COOPERATIVE(kernel, grid, block, smem, stream, ...) \
  ::bk::dev::launch_cooperative((kernel), (grid), (block), (smem), (stream), __VA_ARGS__)
namespace bk {
namespace dev {
template <typename T> struct Same { using type = T; };
// Arguments are taken as the kernel's own parameter types (non-deduced), so
// cudaLaunchCooperativeKernel gets pointers to exactly what the kernel reads.
template <typename... KArgs>
cudaError_t launch_cooperative(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                               cudaStream_t stream, typename Same<KArgs>::type... args) {
  void* ptrs[] = {static_cast<void*>(&args)...};
  return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), grid, block, ptrs, smem, stream);
}
}  // namespace dev
}  // namespace bk
#elif defined(BK_SIM)
#include "sim/launch.h"
#define BK_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::bk::sim::launch(::bk::sim::kernel_name<kernel>(), (grid), (block), (smem), (stream), kernel, __VA_ARGS__)
#define BK_LAUNCH_COOPERATIVE(kernel, grid, block, smem, stream, ...) \
  ::bk::sim::launch_cooperative(::bk::sim::kernel_name<kernel>(), (grid), (block), (smem), (stream), kernel, \
                                __VA_ARGS__)
#else
#error "csrc/device/launch.cuh: compile with nvcc, or with the host compiler and -DBK_SIM"
#endif
