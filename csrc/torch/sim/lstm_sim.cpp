// cuda_sim implementations of the LSTM ops: the CUDA kernels of
// csrc/cuda/lstm under the emulator, on CPU tensors, every buffer in a
// guard-page copy (tensor side shared with the CUDA glue: torch/lstm_cuda_glue.h).
#include <torch/library.h>

#include "torch/lstm_cuda_glue.h"
#include "torch/sim/guarded_call.h"

namespace {

using bk::glue::LstmTensors5;
using bk::simglue::run_guarded;

LstmTensors5 lstm_layer_sim(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0,
                            const at::Tensor& w_hh, const std::optional<at::Tensor>& w_hr, bool reverse, bool train) {
  bk::glue::LstmForwardCall call(x_proj, h0, c0, w_hh, w_hr, reverse, train);
  const auto path = bk::glue::lstm_forced_path();
  run_guarded(call, [&] { return bk::cuda::lstm_forward(call.p, call.w, path, nullptr); }, "lstm_layer");
  return call.outputs();
}

LstmTensors5 lstm_layer_backward_sim(const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& grad_cT,
                                     const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                                     const std::optional<at::Tensor>& w_hr, const at::Tensor& y,
                                     const at::Tensor& gates, const at::Tensor& cs, bool reverse) {
  bk::glue::LstmBackwardCall call(grad_y, grad_hT, grad_cT, h0, c0, w_hh, w_hr, y, gates, cs, reverse);
  const auto path = bk::glue::lstm_forced_path();
  run_guarded(call, [&] { return bk::cuda::lstm_backward(call.p, call.w, path, nullptr); }, "lstm_layer_backward");
  return call.outputs();
}

LstmTensors5 lstm_bidir_layer_sim(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0,
                                  const at::Tensor& w_hh, const std::optional<at::Tensor>& w_hr, bool train) {
  bk::glue::LstmBidirForwardCall call(x_proj, h0, c0, w_hh, w_hr, train);
  const auto path = bk::glue::lstm_forced_path();
  run_guarded(call.dirs, [&] {
    return call.dirs.launch([&](const bk::LstmParams* p, const bk::cuda::LstmCudaWork* w) {
      return bk::cuda::lstm_forward_bidir(p, w, path, nullptr);
    });
  }, "lstm_bidir_layer");
  return call.outputs();
}

LstmTensors5 lstm_bidir_layer_backward_sim(const at::Tensor& grad_y, const at::Tensor& grad_hT,
                                           const at::Tensor& grad_cT, const at::Tensor& h0, const at::Tensor& c0,
                                           const at::Tensor& w_hh, const std::optional<at::Tensor>& w_hr,
                                           const at::Tensor& y, const at::Tensor& gates, const at::Tensor& cs) {
  bk::glue::BidirCall<bk::glue::LstmBackwardCall> call([&](int64_t d) {
    return bk::glue::LstmBackwardCall(grad_y[d], grad_hT[d], grad_cT[d], h0[d], c0[d], w_hh[d],
                                      bk::glue::dir_of(w_hr, d), y[d], gates[d], cs[d], d == 1);
  });
  const auto path = bk::glue::lstm_forced_path();
  run_guarded(call, [&] {
    return call.launch([&](const bk::LstmParams* p, const bk::cuda::LstmCudaWork* w) {
      return bk::cuda::lstm_backward_bidir(p, w, path, nullptr);
    });
  }, "lstm_bidir_layer_backward");
  return bk::glue::stack_dirs(call.d0.outputs(), call.d1.outputs());
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("lstm_layer_sim", &lstm_layer_sim);
  m.impl("lstm_layer_backward_sim", &lstm_layer_backward_sim);
  m.impl("lstm_bidir_layer_sim", &lstm_bidir_layer_sim);
  m.impl("lstm_bidir_layer_backward_sim", &lstm_bidir_layer_backward_sim);
}
