// CPU dispatch-key implementations of the epilogue ops (schemas: bigkernels/ops/epilogue.py).
#include <torch/library.h>

#include "cpu/epilogue/bias_act.h"
#include "torch/epilogue_params.h"

namespace {

at::Tensor bias_act_cpu(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                        const std::optional<at::Tensor>& residual, int64_t activation, double alpha,
                        int64_t channel_dim) {
  auto p = bk::glue::make_bias_act_params(x, bias, residual, activation, alpha, channel_dim);
  at::Tensor y = at::empty_like(x);
  p.y = y.data_ptr();
  bk::cpu::bias_act_forward(p);
  return y;
}

at::Tensor bias_act_backward_cpu(const at::Tensor& grad_y, const at::Tensor& x,
                                 const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual,
                                 int64_t activation, double alpha, int64_t channel_dim) {
  auto p = bk::glue::make_bias_act_params(x, bias, residual, activation, alpha, channel_dim);
  TORCH_CHECK(grad_y.sizes() == x.sizes() && grad_y.strides() == x.strides(),
              "bigkernels: grad_y must match x in shape and strides");
  at::Tensor grad_z = at::empty_like(x);
  p.grad_y = grad_y.data_ptr();
  p.grad_z = grad_z.data_ptr();
  bk::cpu::bias_act_backward(p);
  return grad_z;
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("bias_act", &bias_act_cpu);
  m.impl("bias_act_backward", &bias_act_backward_cpu);
}
