// CUDA dispatch-key implementations of the GRU layer ops (schemas:
// bigkernels/ops/gru.py). Compiled only where torch has CUDA; the tensor side
// is torch/gru_cuda_glue.h.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "torch/gru_cuda_glue.h"

namespace {

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "bigkernels: ", what, " launch failed: ", cudaGetErrorString(err));
}

template <typename Call>
void bind_device(Call& call) {
  for (auto& b : call.bindings) b.bind(b.t.data_ptr());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_layer_cuda(const at::Tensor& x_proj, const at::Tensor& h0,
                                                              const at::Tensor& w_hh,
                                                              const std::optional<at::Tensor>& b_hh, bool reverse,
                                                              bool train) {
  c10::cuda::CUDAGuard guard(x_proj.device());
  bk::glue::GruForwardCall call(x_proj, h0, w_hh, b_hh, reverse, train);
  bind_device(call);
  check_launch(bk::cuda::gru_forward(call.p, call.w, bk::glue::lstm_forced_path(),
                                     c10::cuda::getCurrentCUDAStream(x_proj.device().index()).stream()),
               "gru_layer");
  return call.outputs();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_layer_backward_cuda(
    const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& h0, const at::Tensor& w_hh,
    const std::optional<at::Tensor>& b_hh, const at::Tensor& y, const at::Tensor& ws, bool reverse) {
  c10::cuda::CUDAGuard guard(grad_y.device());
  bk::glue::GruBackwardCall call(grad_y, grad_hT, h0, w_hh, b_hh, y, ws, reverse);
  bind_device(call);
  check_launch(bk::cuda::gru_backward(call.p, call.w, bk::glue::lstm_forced_path(),
                                      c10::cuda::getCurrentCUDAStream(grad_y.device().index()).stream()),
               "gru_layer_backward");
  return call.outputs();
}

// Both directions of a bidirectional layer (stacked on a leading dim of 2), in one launch where they fit.
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_bidir_layer_cuda(const at::Tensor& x_proj, const at::Tensor& h0,
                                                                    const at::Tensor& w_hh,
                                                                    const std::optional<at::Tensor>& b_hh,
                                                                    bool train) {
  c10::cuda::CUDAGuard guard(x_proj.device());
  bk::glue::BidirCall<bk::glue::GruForwardCall> call([&](int64_t d) {
    return bk::glue::GruForwardCall(x_proj[d], h0[d], w_hh[d], bk::glue::dir_of(b_hh, d), d == 1, train);
  });
  bind_device(call);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x_proj.device().index()).stream();
  check_launch(call.launch([&](const bk::GruParams* p, const bk::cuda::GruCudaWork* w) {
                 return bk::cuda::gru_forward_bidir(p, w, bk::glue::lstm_forced_path(), stream);
               }),
               "gru_bidir_layer");
  return bk::glue::stack_dirs(call.d0.outputs(), call.d1.outputs());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_bidir_layer_backward_cuda(
    const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& h0, const at::Tensor& w_hh,
    const std::optional<at::Tensor>& b_hh, const at::Tensor& y, const at::Tensor& ws) {
  c10::cuda::CUDAGuard guard(grad_y.device());
  bk::glue::BidirCall<bk::glue::GruBackwardCall> call([&](int64_t d) {
    return bk::glue::GruBackwardCall(grad_y[d], grad_hT[d], h0[d], w_hh[d], bk::glue::dir_of(b_hh, d), y[d], ws[d],
                                     d == 1);
  });
  bind_device(call);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(grad_y.device().index()).stream();
  check_launch(call.launch([&](const bk::GruParams* p, const bk::cuda::GruCudaWork* w) {
                 return bk::cuda::gru_backward_bidir(p, w, bk::glue::lstm_forced_path(), stream);
               }),
               "gru_bidir_layer_backward");
  return bk::glue::stack_dirs(call.d0.outputs(), call.d1.outputs());
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CUDA, m) {
  m.impl("gru_layer", &gru_layer_cuda);
  m.impl("gru_layer_backward", &gru_layer_backward_cuda);
  m.impl("gru_bidir_layer", &gru_bidir_layer_cuda);
  m.impl("gru_bidir_layer_backward", &gru_bidir_layer_backward_cuda);
}
