// CUDA dispatch-key implementations of the fused cell ops (schemas:
// bigkernels/ops/lstm.py, gru.py). Compiled only where torch has CUDA; the
// tensor side is torch/cell_cuda_glue.h.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "torch/cell_cuda_glue.h"

namespace {

using Opt = std::optional<at::Tensor>;

void launch(bk::glue::CellCall& call, const at::Tensor& x, bool lstm) {
  for (auto& b : call.bindings) b.bind(b.t.data_ptr());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  const cudaError_t err = lstm ? bk::cuda::lstm_cell_forward(call.p, stream) : bk::cuda::gru_cell_forward(call.p, stream);
  TORCH_CHECK(err == cudaSuccess, "bigkernels: ", lstm ? "lstm_cell_fused" : "gru_cell_fused", " launch failed: ",
              cudaGetErrorString(err));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lstm_cell_fused_cuda(
    const at::Tensor& x, const at::Tensor& h, const at::Tensor& c, const at::Tensor& w_ih, const at::Tensor& w_hh,
    const Opt& b_ih, const Opt& b_hh, bool train) {
  c10::cuda::CUDAGuard guard(x.device());
  bk::glue::CellCall call(4, x, h, c, w_ih, w_hh, b_ih, b_hh, train);
  launch(call, x, true);
  return {call.h1, call.c1, call.gates, call.cs};
}

std::tuple<at::Tensor, at::Tensor> gru_cell_fused_cuda(const at::Tensor& x, const at::Tensor& h,
                                                       const at::Tensor& w_ih, const at::Tensor& w_hh,
                                                       const Opt& b_ih, const Opt& b_hh, bool train) {
  c10::cuda::CUDAGuard guard(x.device());
  bk::glue::CellCall call(3, x, h, std::nullopt, w_ih, w_hh, b_ih, b_hh, train);
  launch(call, x, false);
  return {call.h1, call.gates};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CUDA, m) {
  m.impl("lstm_cell_fused", &lstm_cell_fused_cuda);
  m.impl("gru_cell_fused", &gru_cell_fused_cuda);
}
