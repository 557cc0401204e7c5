// Tensor side of the CUDA BN + residual + activation kernels, shared by the
// CUDA glue (bn_act_cuda.cpp) and the emulator's (sim/bn_act_sim.cpp). The
// per-channel terms (invstd, scale, shift: C values) are torch ops on the
// device in float64, so nothing is copied to the host (no sync; capturable).
// `Backend` provides: Scope (in(t) / out(t) give a kernel pointer for a
// tensor; the emulator's copies outputs back when the scope closes),
// stream(t) and check(err, what).
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/ones_like.h>
#include <c10/util/Exception.h>

#include <array>
#include <optional>
#include <tuple>

#include "common/conv_bn_params.h"
#include "cuda/conv/bn_act.h"
#include "torch/epilogue_params.h"

namespace bk {
namespace glue {

struct BnChannel {
  at::Tensor scale, shift, mean, invstd;  // compute type
};

inline at::ScalarType bn_acc_type(const at::Tensor& z) {
  return z.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

inline BnChannel bn_channel_terms(const at::Tensor& mean, const at::Tensor& var,
                                  const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
                                  double eps, at::ScalarType acc) {
  at::Tensor m = mean.to(at::kDouble), invstd = var.to(at::kDouble).add(eps).rsqrt();
  at::Tensor scale = weight.has_value() ? weight->to(at::kDouble).mul(invstd) : invstd;
  at::Tensor shift = m.mul(scale).neg();
  if (bias.has_value()) shift = shift.add(bias->to(at::kDouble));
  return {scale.to(acc).contiguous(), shift.to(acc).contiguous(), m.to(acc).contiguous(),
          invstd.to(acc).contiguous()};
}

inline BnActParams bn_base_params(const at::Tensor& z, const std::optional<at::Tensor>& residual,
                                  int64_t activation, double alpha) {
  TORCH_CHECK(z.dim() >= 2, "bigkernels: bn_act needs (N, C, ...) input");
  // The epilogue's params carry the layout checks (dense NCHW or channels-last).
  auto e = make_bias_act_params(z, std::nullopt, residual, activation, alpha, 1);
  BnActParams p;
  p.numel = e.numel, p.channels = e.channels, p.inner = e.inner;
  p.act = e.act, p.alpha = e.alpha, p.dtype = e.dtype;
  return p;
}

inline at::Tensor doubles(const at::Tensor& like, int64_t n) {
  return at::empty({n}, like.options().dtype(at::kDouble));
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor, at::Tensor> bn_act_forward(
    const at::Tensor& z, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& residual, const std::optional<at::Tensor>& mean,
    const std::optional<at::Tensor>& var, double eps, int64_t activation, double alpha) {
  const BnActParams base = bn_base_params(z, residual, activation, alpha);
  const auto acc = bn_acc_type(z);
  at::Tensor m, v;
  if (mean.has_value() && var.has_value()) {
    m = *mean, v = *var;
  } else {
    m = doubles(z, base.channels), v = doubles(z, base.channels);
    at::Tensor ws = doubles(z, bk::cuda::bn_workspace_size(base));
    typename Backend::Scope s;
    BnActParams p = base;
    p.z = s.in(z);
    p.out0 = static_cast<double*>(s.out(m)), p.out1 = static_cast<double*>(s.out(v));
    p.workspace = static_cast<double*>(s.out(ws));
    Backend::check(bk::cuda::bn_stats(p, Backend::stream(z)), "bn_act (statistics)");
  }
  BnChannel ch = bn_channel_terms(m, v, weight, bias, eps, acc);
  at::Tensor y = at::empty_like(z);
  {
    typename Backend::Scope s;
    BnActParams p = base;
    p.z = s.in(z);
    p.residual = residual.has_value() ? s.in(*residual) : nullptr;
    p.scale = s.in(ch.scale), p.shift = s.in(ch.shift);
    p.y = s.out(y);
    Backend::check(bk::cuda::bn_act_forward(p, Backend::stream(z)), "bn_act");
  }
  return {y, ch.mean, v.to(acc)};
}

template <typename Backend>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> bn_act_backward(
    const at::Tensor& grad_y, const at::Tensor& z, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual, const at::Tensor& mean,
    const at::Tensor& var, double eps, int64_t activation, double alpha, bool batch_stats,
    std::array<bool, 4> mask) {
  const BnActParams base = bn_base_params(z, residual, activation, alpha);
  TORCH_CHECK(grad_y.sizes() == z.sizes(), "bigkernels: grad_y must have z's shape");
  at::Tensor gy = grad_y.strides() == z.strides() ? grad_y : at::empty_like(z).copy_(grad_y);
  BnChannel ch = bn_channel_terms(mean, var, weight, bias, eps, bn_acc_type(z));
  at::Tensor sum_g = doubles(z, base.channels), sum_gx = doubles(z, base.channels);
  at::Tensor ws = doubles(z, bk::cuda::bn_workspace_size(base));
  at::Tensor gz = mask[0] ? at::empty_like(z) : at::empty({0}, z.options());
  at::Tensor gres = mask[3] && residual.has_value() ? at::empty_like(z) : at::empty({0}, z.options());
  {
    typename Backend::Scope s;
    BnActParams p = base;
    p.z = s.in(z), p.grad_y = s.in(gy);
    p.residual = residual.has_value() ? s.in(*residual) : nullptr;
    p.scale = s.in(ch.scale), p.shift = s.in(ch.shift), p.mean = s.in(ch.mean), p.invstd = s.in(ch.invstd);
    p.out0 = static_cast<double*>(s.out(sum_g)), p.out1 = static_cast<double*>(s.out(sum_gx));
    p.workspace = static_cast<double*>(s.out(ws));
    p.grad_z = gz.numel() ? s.out(gz) : nullptr;
    p.grad_residual = gres.numel() ? s.out(gres) : nullptr;
    p.batch_stats = batch_stats;
    Backend::check(bk::cuda::bn_act_backward(p, Backend::stream(z)), "bn_act_backward");
  }
  auto param_grad = [&](const at::Tensor& sums, const std::optional<at::Tensor>& like, bool want) {
    return want && like.has_value() ? sums.to(like->scalar_type()) : at::empty({0}, z.options());
  };
  return {gz, param_grad(sum_gx, weight, mask[1]), param_grad(sum_g, bias, mask[2]), gres};
}

}  // namespace glue
}  // namespace bk
