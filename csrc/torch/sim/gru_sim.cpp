// cuda_sim implementations of the GRU layer ops: csrc/cuda/lstm/gru_layer.cu
// under the emulator, on CPU tensors (tensor side: torch/gru_cuda_glue.h).
#include <torch/library.h>

#include "torch/gru_cuda_glue.h"
#include "torch/sim/guarded_call.h"

namespace {

using bk::simglue::run_guarded;

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_layer_sim(const at::Tensor& x_proj, const at::Tensor& h0,
                                                             const at::Tensor& w_hh,
                                                             const std::optional<at::Tensor>& b_hh, bool reverse,
                                                             bool train) {
  bk::glue::GruForwardCall call(x_proj, h0, w_hh, b_hh, reverse, train);
  const auto path = bk::glue::lstm_forced_path();
  run_guarded(call, [&] { return bk::cuda::gru_forward(call.p, call.w, path, nullptr); }, "gru_layer");
  return call.outputs();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_layer_backward_sim(
    const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& h0, const at::Tensor& w_hh,
    const std::optional<at::Tensor>& b_hh, const at::Tensor& y, const at::Tensor& ws, bool reverse) {
  bk::glue::GruBackwardCall call(grad_y, grad_hT, h0, w_hh, b_hh, y, ws, reverse);
  const auto path = bk::glue::lstm_forced_path();
  run_guarded(call, [&] { return bk::cuda::gru_backward(call.p, call.w, path, nullptr); }, "gru_layer_backward");
  return call.outputs();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_bidir_layer_sim(const at::Tensor& x_proj, const at::Tensor& h0,
                                                                   const at::Tensor& w_hh,
                                                                   const std::optional<at::Tensor>& b_hh, bool train) {
  bk::glue::BidirCall<bk::glue::GruForwardCall> call([&](int64_t d) {
    return bk::glue::GruForwardCall(x_proj[d], h0[d], w_hh[d], bk::glue::dir_of(b_hh, d), d == 1, train);
  });
  const auto path = bk::glue::lstm_forced_path();
  run_guarded(call, [&] {
    return call.launch([&](const bk::GruParams* p, const bk::cuda::GruCudaWork* w) {
      return bk::cuda::gru_forward_bidir(p, w, path, nullptr);
    });
  }, "gru_bidir_layer");
  return bk::glue::stack_dirs(call.d0.outputs(), call.d1.outputs());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_bidir_layer_backward_sim(
    const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& h0, const at::Tensor& w_hh,
    const std::optional<at::Tensor>& b_hh, const at::Tensor& y, const at::Tensor& ws) {
  bk::glue::BidirCall<bk::glue::GruBackwardCall> call([&](int64_t d) {
    return bk::glue::GruBackwardCall(grad_y[d], grad_hT[d], h0[d], w_hh[d], bk::glue::dir_of(b_hh, d), y[d], ws[d],
                                     d == 1);
  });
  const auto path = bk::glue::lstm_forced_path();
  run_guarded(call, [&] {
    return call.launch([&](const bk::GruParams* p, const bk::cuda::GruCudaWork* w) {
      return bk::cuda::gru_backward_bidir(p, w, path, nullptr);
    });
  }, "gru_bidir_layer_backward");
  return bk::glue::stack_dirs(call.d0.outputs(), call.d1.outputs());
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("gru_layer_sim", &gru_layer_sim);
  m.impl("gru_layer_backward_sim", &gru_layer_backward_sim);
  m.impl("gru_bidir_layer_sim", &gru_bidir_layer_sim);
  m.impl("gru_bidir_layer_backward_sim", &gru_bidir_layer_backward_sim);
}
