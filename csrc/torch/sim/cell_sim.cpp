// cuda_sim implementations of the fused cell ops (csrc/cuda/lstm/cell.cu
// under the emulator, on CPU tensors; tensor side: torch/cell_cuda_glue.h).
#include <torch/library.h>

#include "torch/cell_cuda_glue.h"
#include "torch/sim/guarded_call.h"

namespace {

using Opt = std::optional<at::Tensor>;

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lstm_cell_fused_sim(
    const at::Tensor& x, const at::Tensor& h, const at::Tensor& c, const at::Tensor& w_ih, const at::Tensor& w_hh,
    const Opt& b_ih, const Opt& b_hh, bool train) {
  bk::glue::CellCall call(4, x, h, c, w_ih, w_hh, b_ih, b_hh, train);
  bk::simglue::run_guarded(call, [&] { return bk::cuda::lstm_cell_forward(call.p, nullptr); }, "lstm_cell_fused");
  return {call.h1, call.c1, call.gates, call.cs};
}

std::tuple<at::Tensor, at::Tensor> gru_cell_fused_sim(const at::Tensor& x, const at::Tensor& h,
                                                      const at::Tensor& w_ih, const at::Tensor& w_hh,
                                                      const Opt& b_ih, const Opt& b_hh, bool train) {
  bk::glue::CellCall call(3, x, h, std::nullopt, w_ih, w_hh, b_ih, b_hh, train);
  bk::simglue::run_guarded(call, [&] { return bk::cuda::gru_cell_forward(call.p, nullptr); }, "gru_cell_fused");
  return {call.h1, call.gates};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("lstm_cell_fused_sim", &lstm_cell_fused_sim);
  m.impl("gru_cell_fused_sim", &gru_cell_fused_sim);
}
