// cuda_sim implementations of the BN + residual + activation ops: the CUDA
// kernels of csrc/cuda/conv/bn_*.cu under the emulator, on CPU tensors.
#include <torch/library.h>

#include <deque>

#include "torch/bn_glue.h"
#include "torch/sim/guarded.h"

namespace {

using bk::simglue::Guarded;

struct Sim {
  // Guard-page copies of every tensor a launch touches; outputs are copied
  // back into their tensors when the scope closes.
  struct Scope {
    std::deque<Guarded> guards;
    const void* in(const at::Tensor& t) { return guards.emplace_back(t, Guarded::kIn).get(); }
    void* out(const at::Tensor& t) { return guards.emplace_back(t, Guarded::kOut).get(); }
  };
  static cudaStream_t stream(const at::Tensor&) { return nullptr; }
  static void check(cudaError_t err, const char* what) { bk::simglue::check(err, what); }
};

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("bn_act_sim", &bk::glue::bn_act_forward<Sim>);
  m.impl("bn_act_backward_sim", &bk::glue::bn_act_backward<Sim>);
}
