// BK_LAUNCH under the emulator: packs the kernel and its arguments into one
// closure that every fiber calls; the scheduler sets the fiber's indices.
#pragma once
#include <string>
#include <tuple>
#include <utility>
#include "sim/api.h"

namespace bk {
namespace sim {

// The kernel's full name with its template arguments, for reports
// ("bk::cuda::{anonymous}::bias_act_kernel<float, (bk::Act)4, false>"),
// taken from __PRETTY_FUNCTION__ once per instantiation.
template <auto K>
const char* kernel_name() {
  static const std::string name = [](std::string s) {
    const size_t i = s.find("K = ");
    if (i == std::string::npos) return s;
    s = s.substr(i + 4);
    if (!s.empty() && s.back() == ']') s.pop_back();
    return s;
  }(__PRETTY_FUNCTION__);
  return name.c_str();
}

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
