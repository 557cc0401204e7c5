// Runs a kernel call of the shared CUDA/emulator glue (torch/*_cuda_glue.h)
// with every bound tensor moved into a guard-page buffer (inputs copied in,
// outputs poisoned with 0xFF and copied back when the guards go).
#pragma once
#include <list>

#include "torch/lstm_cuda_glue.h"
#include "torch/sim/guarded.h"

namespace bk {
namespace simglue {

template <typename Call, typename Launch>
void run_guarded(Call& call, Launch launch, const char* op) {
  std::list<Guarded> guards;
  for (auto& b : call.bindings) {
    guards.emplace_back(b.t, b.out ? Guarded::kOut : Guarded::kIn);
    b.bind(guards.back().get());
  }
  check(launch(), op);
}

}  // namespace simglue
}  // namespace bk
