// CPU dispatch-key implementations of the fused BN + residual + activation
// ops that follow a convolution (schemas: bigkernels/ops/batchnorm.py).
// Per-channel arithmetic (invstd, scale, shift) is done here in float64 over
// C values; the passes over the tensor are in csrc/cpu/conv/bn_act.cpp.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "cpu/conv/bn_act.h"
#include "torch/epilogue_params.h"

namespace {

using Vec = std::vector<double>;

// Per-channel values in and out of small tensors. float32/float64 ones are
// read and written in place: a Tensor.to per value set (about ten per call,
// each a trip through the dispatcher and an allocation) cost more than the
// passes over a small feature map. Other dtypes convert through float64.
Vec to_vec(const std::optional<at::Tensor>& t, int64_t C, double fill) {
  if (!t.has_value()) return Vec(C, fill);
  TORCH_CHECK(t->numel() == C, "bigkernels: per-channel tensor of ", t->numel(), " values for ", C, " channels");
  const at::Tensor d = t->is_contiguous() && (t->scalar_type() == at::kFloat || t->scalar_type() == at::kDouble)
                           ? *t
                           : t->to(at::kDouble).contiguous();
  if (d.scalar_type() == at::kFloat) return Vec(d.data_ptr<float>(), d.data_ptr<float>() + C);
  return Vec(d.data_ptr<double>(), d.data_ptr<double>() + C);
}

at::Tensor to_tensor(const Vec& v, at::ScalarType dtype) {
  const int64_t C = int64_t(v.size());
  if (dtype == at::kFloat || dtype == at::kDouble) {
    at::Tensor t = at::empty({C}, at::TensorOptions().dtype(dtype));
    if (dtype == at::kFloat) {
      std::copy(v.begin(), v.end(), t.data_ptr<float>());
    } else {
      std::copy(v.begin(), v.end(), t.data_ptr<double>());
    }
    return t;
  }
  at::Tensor t = at::empty({C}, at::TensorOptions().dtype(at::kDouble));
  std::copy(v.begin(), v.end(), t.data_ptr<double>());
  return t.to(dtype);
}

at::ScalarType acc_type(const at::Tensor& z) { return z.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// scale, shift, invstd (and mean) as tensors of the compute type, kept alive
// by the caller while the kernel reads their pointers.
struct Channel {
  at::Tensor scale, shift, mean, invstd;
};

Channel channel_terms(const Vec& mean, const Vec& var, const std::optional<at::Tensor>& weight,
                      const std::optional<at::Tensor>& bias, double eps, at::ScalarType acc) {
  const int64_t C = int64_t(mean.size());
  Vec gamma = to_vec(weight, C, 1.0), beta = to_vec(bias, C, 0.0), invstd(C), scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    invstd[c] = 1.0 / std::sqrt(var[c] + eps);
    scale[c] = gamma[c] * invstd[c];
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  return {to_tensor(scale, acc), to_tensor(shift, acc), to_tensor(mean, acc), to_tensor(invstd, acc)};
}

bk::BnActParams base_params(const at::Tensor& z, const std::optional<at::Tensor>& residual, int64_t activation,
                            double alpha) {
  // The epilogue's params carry the layout checks (dense NCHW or channels-last).
  auto e = bk::glue::make_bias_act_params(z, std::nullopt, residual, activation, alpha, 1);
  bk::BnActParams p;
  p.z = e.x;
  p.residual = e.residual;
  p.numel = e.numel;
  p.channels = e.channels;
  p.inner = e.inner;
  p.act = e.act;
  p.alpha = e.alpha;
  p.dtype = e.dtype;
  return p;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> bn_act_cpu(
    const at::Tensor& z, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& residual, const std::optional<at::Tensor>& mean,
    const std::optional<at::Tensor>& var, double eps, int64_t activation, double alpha) {
  TORCH_CHECK(z.dim() >= 2, "bigkernels: bn_act needs (N, C, ...) input");
  auto p = base_params(z, residual, activation, alpha);
  const int64_t C = p.channels;
  Vec m(C), v(C);
  if (mean.has_value() && var.has_value()) {
    m = to_vec(mean, C, 0.0);
    v = to_vec(var, C, 1.0);
  } else {
    p.out0 = m.data();
    p.out1 = v.data();
    bk::cpu::bn_stats(p);
    p.out0 = p.out1 = nullptr;
  }
  const auto acc = acc_type(z);
  Channel ch = channel_terms(m, v, weight, bias, eps, acc);
  at::Tensor y = at::empty_like(z);
  p.scale = ch.scale.data_ptr();
  p.shift = ch.shift.data_ptr();
  p.y = y.data_ptr();
  bk::cpu::bn_act_forward(p);
  return {y, ch.mean, to_tensor(v, acc)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> bn_act_backward_cpu(
    const at::Tensor& grad_y, const at::Tensor& z, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual, const at::Tensor& mean,
    const at::Tensor& var, double eps, int64_t activation, double alpha, bool batch_stats,
    std::array<bool, 4> output_mask) {
  auto p = base_params(z, residual, activation, alpha);
  const int64_t C = p.channels;
  TORCH_CHECK(grad_y.sizes() == z.sizes(), "bigkernels: grad_y must have z's shape");
  at::Tensor gy = grad_y.strides() == z.strides() ? grad_y : grad_y.contiguous(z.suggest_memory_format());
  TORCH_CHECK(gy.strides() == z.strides(), "bigkernels: grad_y must match z's layout");
  const auto acc = acc_type(z);
  Channel ch = channel_terms(to_vec(mean, C, 0.0), to_vec(var, C, 1.0), weight, bias, eps, acc);
  Vec sum_g(C), sum_gx(C);
  at::Tensor gz = output_mask[0] ? at::empty_like(z) : at::empty({0}, z.options());
  at::Tensor gres = output_mask[3] && residual.has_value() ? at::empty_like(z) : at::empty({0}, z.options());
  p.grad_y = gy.data_ptr();
  p.scale = ch.scale.data_ptr();
  p.shift = ch.shift.data_ptr();
  p.mean = ch.mean.data_ptr();
  p.invstd = ch.invstd.data_ptr();
  p.out0 = sum_g.data();
  p.out1 = sum_gx.data();
  p.grad_z = gz.numel() ? gz.data_ptr() : nullptr;
  p.grad_residual = gres.numel() ? gres.data_ptr() : nullptr;
  p.batch_stats = batch_stats;
  if (z.numel() > 0) bk::cpu::bn_act_backward(p);
  auto param_grad = [&](const Vec& v, const std::optional<at::Tensor>& like, bool want) {
    return want && like.has_value() ? to_tensor(v, like->scalar_type()) : at::empty({0}, z.options());
  };
  return {gz, param_grad(sum_gx, weight, output_mask[1]), param_grad(sum_g, bias, output_mask[2]), gres};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("bn_act", &bn_act_cpu);
  m.impl("bn_act_backward", &bn_act_backward_cpu);
}
