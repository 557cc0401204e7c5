// cuda_sim implementations of the epilogue ops: the CUDA kernels of
// csrc/cuda/epilogue, compiled for the SIMT emulator, on CPU tensors.
#include <torch/library.h>

#include "cuda/epilogue/bias_act.h"
#include "torch/epilogue_params.h"
#include "torch/sim/guarded.h"

namespace {

using bk::simglue::Guarded;

at::Tensor bias_act_sim(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                        const std::optional<at::Tensor>& residual, int64_t activation, double alpha,
                        int64_t channel_dim) {
  auto p = bk::glue::make_bias_act_params(x, bias, residual, activation, alpha, channel_dim);
  at::Tensor y = at::empty_like(x);
  {
    Guarded gx(x, Guarded::kIn), gy(y, Guarded::kOut);
    auto gb = bk::simglue::guard_in(bias), gr = bk::simglue::guard_in(residual);
    p.x = gx.get();
    p.y = gy.get();
    p.bias = gb ? gb->get() : nullptr;
    p.residual = gr ? gr->get() : nullptr;
    bk::simglue::check(bk::cuda::bias_act_forward(p, nullptr), "bias_act");
  }
  return y;
}

at::Tensor bias_act_backward_sim(const at::Tensor& grad_y, const at::Tensor& x,
                                 const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual,
                                 int64_t activation, double alpha, int64_t channel_dim) {
  auto p = bk::glue::make_bias_act_params(x, bias, residual, activation, alpha, channel_dim);
  TORCH_CHECK(grad_y.sizes() == x.sizes() && grad_y.strides() == x.strides(),
              "bigkernels: grad_y must match x in shape and strides");
  at::Tensor grad_z = at::empty_like(x);
  {
    Guarded gx(x, Guarded::kIn), gg(grad_y, Guarded::kIn), gz(grad_z, Guarded::kOut);
    auto gb = bk::simglue::guard_in(bias), gr = bk::simglue::guard_in(residual);
    p.x = gx.get();
    p.grad_y = gg.get();
    p.grad_z = gz.get();
    p.bias = gb ? gb->get() : nullptr;
    p.residual = gr ? gr->get() : nullptr;
    bk::simglue::check(bk::cuda::bias_act_backward(p, nullptr), "bias_act_backward");
  }
  return grad_z;
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("bias_act_sim", &bias_act_sim);
  m.impl("bias_act_backward_sim", &bias_act_backward_sim);
}
