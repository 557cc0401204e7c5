// BK_LAUNCH under the emulator: packs the kernel and its arguments into one
// closure that every fiber calls; the scheduler sets the fiber's indices.
#pragma once
#include <tuple>
#include <utility>
#include "sim/api.h"

namespace bk {
namespace sim {

template <typename Kernel, typename... Args>
cudaError_t launch(const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t,
                   Kernel kernel, Args&&... args) {
  // Arguments are copied once, as a GPU launch copies them to constant memory.
  auto packed = std::make_tuple(std::decay_t<Args>(std::forward<Args>(args))...);
  std::function<void()> body = [&] { std::apply(kernel, packed); };
  return launch_body(name, grid, block, smem, false, body);
}

template <typename Kernel, typename... Args>
cudaError_t launch_cooperative(const char* name, dim3 grid, dim3 block, size_t smem,
                               cudaStream_t, Kernel kernel, Args&&... args) {
  auto packed = std::make_tuple(std::decay_t<Args>(std::forward<Args>(args))...);
  std::function<void()> body = [&] { std::apply(kernel, packed); };
  return launch_body(name, grid, block, smem, true, body);
}

}  // namespace sim
}  // namespace bk
