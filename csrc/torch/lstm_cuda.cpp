// CUDA dispatch-key implementations of the LSTM ops (schemas:
// bigkernels/ops/lstm.py). Compiled only where torch has CUDA: device guard,
// torch's current stream; the tensor side is torch/lstm_cuda_glue.h.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "torch/lstm_cuda_glue.h"

namespace {

using bk::glue::LstmTensors5;

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "bigkernels: ", what, " launch failed: ", cudaGetErrorString(err));
}

template <typename Call>
void bind_device(Call& call) {
  for (auto& b : call.bindings) b.bind(b.t.data_ptr());
}

LstmTensors5 lstm_layer_cuda(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0,
                             const at::Tensor& w_hh, const std::optional<at::Tensor>& w_hr, bool reverse, bool train) {
  c10::cuda::CUDAGuard guard(x_proj.device());
  bk::glue::LstmForwardCall call(x_proj, h0, c0, w_hh, w_hr, reverse, train);
  bind_device(call);
  check_launch(bk::cuda::lstm_forward(call.p, call.w, bk::glue::lstm_forced_path(),
                                      c10::cuda::getCurrentCUDAStream(x_proj.device().index()).stream()),
               "lstm_layer");
  return call.outputs();
}

LstmTensors5 lstm_layer_backward_cuda(const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& grad_cT,
                                      const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                                      const std::optional<at::Tensor>& w_hr, const at::Tensor& y,
                                      const at::Tensor& gates, const at::Tensor& cs, bool reverse) {
  c10::cuda::CUDAGuard guard(grad_y.device());
  bk::glue::LstmBackwardCall call(grad_y, grad_hT, grad_cT, h0, c0, w_hh, w_hr, y, gates, cs, reverse);
  bind_device(call);
  check_launch(bk::cuda::lstm_backward(call.p, call.w, bk::glue::lstm_forced_path(),
                                       c10::cuda::getCurrentCUDAStream(grad_y.device().index()).stream()),
               "lstm_layer_backward");
  return call.outputs();
}

// Both directions of a bidirectional layer in one launch where they fit (lstm_plan).
LstmTensors5 lstm_bidir_layer_cuda(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0,
                                   const at::Tensor& w_hh, const std::optional<at::Tensor>& w_hr, bool train) {
  c10::cuda::CUDAGuard guard(x_proj.device());
  bk::glue::LstmBidirForwardCall call(x_proj, h0, c0, w_hh, w_hr, train);
  bind_device(call.dirs);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x_proj.device().index()).stream();
  check_launch(call.dirs.launch([&](const bk::LstmParams* p, const bk::cuda::LstmCudaWork* w) {
                 return bk::cuda::lstm_forward_bidir(p, w, bk::glue::lstm_forced_path(), stream);
               }),
               "lstm_bidir_layer");
  return call.outputs();
}

LstmTensors5 lstm_bidir_layer_backward_cuda(const at::Tensor& grad_y, const at::Tensor& grad_hT,
                                            const at::Tensor& grad_cT, const at::Tensor& h0, const at::Tensor& c0,
                                            const at::Tensor& w_hh, const std::optional<at::Tensor>& w_hr,
                                            const at::Tensor& y, const at::Tensor& gates, const at::Tensor& cs) {
  c10::cuda::CUDAGuard guard(grad_y.device());
  bk::glue::BidirCall<bk::glue::LstmBackwardCall> call([&](int64_t d) {
    return bk::glue::LstmBackwardCall(grad_y[d], grad_hT[d], grad_cT[d], h0[d], c0[d], w_hh[d],
                                      bk::glue::dir_of(w_hr, d), y[d], gates[d], cs[d], d == 1);
  });
  bind_device(call);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(grad_y.device().index()).stream();
  check_launch(call.launch([&](const bk::LstmParams* p, const bk::cuda::LstmCudaWork* w) {
                 return bk::cuda::lstm_backward_bidir(p, w, bk::glue::lstm_forced_path(), stream);
               }),
               "lstm_bidir_layer_backward");
  return bk::glue::stack_dirs(call.d0.outputs(), call.d1.outputs());
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CUDA, m) {
  m.impl("lstm_layer", &lstm_layer_cuda);
  m.impl("lstm_layer_backward", &lstm_layer_backward_cuda);
  m.impl("lstm_bidir_layer", &lstm_bidir_layer_cuda);
  m.impl("lstm_bidir_layer_backward", &lstm_bidir_layer_backward_cuda);
}
