// CPU dispatch-key implementations of the attention ops (schemas:
// bigkernels/ops/attention.py). fp16/bf16 inputs are converted to fp32 once
// (O(S) copies) and the results converted back.
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "cpu/attention/attention.h"
#include "torch/attention_params.h"

namespace {

std::tuple<at::Tensor, at::Tensor> attention_cpu(const at::Tensor& q_in, const at::Tensor& k_in,
                                                 const at::Tensor& v_in, const std::optional<at::Tensor>& mask,
                                                 bool causal, double scale, double dropout_p, int64_t seed,
                                                 int64_t offset) {
  TORCH_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, "bigkernels: dropout_p must be in [0, 1)");
  const auto compute = bk::glue::attention_compute_type(q_in);
  at::Tensor q = bk::glue::attention_operand(q_in, compute, "q");
  at::Tensor k = bk::glue::attention_operand(k_in, compute, "k");
  at::Tensor v = bk::glue::attention_operand(v_in, compute, "v");
  auto m = bk::glue::attention_mask(mask, q, k.size(2), compute);
  auto p = bk::glue::make_attention_params(q, k, v, m, causal, scale);
  bk::glue::set_dropout(p, dropout_p, seed, offset);
  at::Tensor o = at::empty(q.sizes(), q.options());
  at::Tensor lse = at::empty({q.size(0), q.size(1), q.size(2)}, q.options());
  p.o = o.data_ptr();
  bk::glue::set_strides(p.o_stride, o);
  p.lse = lse.data_ptr();
  if (o.numel() > 0) bk::cpu::attention_forward(p);
  return {o.to(q_in.scalar_type()), lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_backward_cpu(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_lse, const at::Tensor& q_in,
    const at::Tensor& k_in, const at::Tensor& v_in, const at::Tensor& out, const at::Tensor& lse,
    const std::optional<at::Tensor>& mask, bool causal, double scale, double dropout_p, int64_t seed,
    int64_t offset) {
  TORCH_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, "bigkernels: dropout_p must be in [0, 1)");
  const auto compute = bk::glue::attention_compute_type(q_in);
  at::Tensor q = bk::glue::attention_operand(q_in, compute, "q");
  at::Tensor k = bk::glue::attention_operand(k_in, compute, "k");
  at::Tensor v = bk::glue::attention_operand(v_in, compute, "v");
  at::Tensor o = bk::glue::attention_operand(out, compute, "out");
  at::Tensor g = bk::glue::attention_operand(grad_out, compute, "grad_out");
  at::Tensor l = lse.to(compute).contiguous();
  TORCH_CHECK(o.sizes() == q.sizes() && g.sizes() == q.sizes(), "bigkernels: out/grad_out must match q's shape");
  TORCH_CHECK(l.dim() == 3 && l.size(0) == q.size(0) && l.size(1) == q.size(1) && l.size(2) == q.size(2),
              "bigkernels: lse must be (B, Hq, Sq)");
  auto m = bk::glue::attention_mask(mask, q, k.size(2), compute);
  auto p = bk::glue::make_attention_params(q, k, v, m, causal, scale);
  bk::glue::set_dropout(p, dropout_p, seed, offset);
  at::Tensor dlse;
  if (grad_lse.has_value()) {
    dlse = grad_lse->to(compute).contiguous();
    TORCH_CHECK(dlse.sizes() == l.sizes(), "bigkernels: grad_lse must match lse's shape");
    p.dlse = dlse.data_ptr();
  }
  at::Tensor dq = at::zeros(q.sizes(), q.options());
  at::Tensor dk = at::empty(k.sizes(), k.options());
  at::Tensor dv = at::empty(v.sizes(), v.options());
  p.o = o.data_ptr();
  bk::glue::set_strides(p.o_stride, o);
  p.lse = l.data_ptr();
  p.dout = g.data_ptr();
  bk::glue::set_strides(p.do_stride, g);
  p.dq = dq.data_ptr();
  bk::glue::set_strides(p.dq_stride, dq);
  p.dk = dk.data_ptr();
  bk::glue::set_strides(p.dk_stride, dk);
  p.dv = dv.data_ptr();
  bk::glue::set_strides(p.dv_stride, dv);
  if (q.numel() > 0 && k.numel() > 0) {
    bk::cpu::attention_backward(p);
  } else {
    dk.zero_();
    dv.zero_();
  }
  const auto t = q_in.scalar_type();
  return {dq.to(t), dk.to(t), dv.to(t)};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("attention", &attention_cpu);
  m.impl("attention_backward", &attention_backward_cpu);
}
