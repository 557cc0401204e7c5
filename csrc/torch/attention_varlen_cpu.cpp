// CPU implementations of the packed-sequence (varlen) and KV-cache (decode)
// attention ops (schemas: bigkernels/ops/attention_varlen.py). Same kernels
// as the dense op, with per-sequence lengths in the params.
#include <ATen/ops/add.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "cpu/attention/attention.h"
#include "torch/attention_params.h"

namespace {

// (total, H, D) with a contiguous head dim, in the compute type.
at::Tensor packed(const at::Tensor& t, at::ScalarType compute, const char* name) {
  TORCH_CHECK(t.dim() == 3, "bigkernels: ", name, " must be 3-D (total, H, D)");
  at::Tensor x = t.scalar_type() == compute ? t : t.to(compute);
  const bool ok = x.stride(2) == 1 && x.stride(0) >= x.size(2) && x.stride(0) < std::numeric_limits<int32_t>::max();
  return ok ? x : x.contiguous();
}

void set_packed(int64_t* dst, const at::Tensor& t) {
  dst[0] = 0;  // the sequence's first row comes from cu_seqlens
  dst[1] = t.stride(1);
  dst[2] = t.stride(0);
}

bk::AttentionParams varlen_params(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const at::Tensor& cu_q, const at::Tensor& cu_k, int64_t max_q, int64_t max_k,
                                  bool causal, double scale) {
  TORCH_CHECK(cu_q.scalar_type() == at::kLong && cu_k.scalar_type() == at::kLong && cu_q.is_contiguous() &&
                  cu_k.is_contiguous() && cu_q.numel() == cu_k.numel() && cu_q.numel() >= 2,
              "bigkernels: cu_seqlens must be contiguous int64 of equal length >= 2");
  TORCH_CHECK(k.sizes() == v.sizes() && q.size(2) == k.size(2) && q.size(1) % k.size(1) == 0,
              "bigkernels: varlen q/k/v shapes do not match");
  bk::AttentionParams p;
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  set_packed(p.q_stride, q);
  set_packed(p.k_stride, k);
  set_packed(p.v_stride, v);
  p.batch = cu_q.numel() - 1;
  p.heads_q = q.size(1);
  p.heads_kv = k.size(1);
  p.seqlen_q = max_q;
  p.seqlen_kv = max_k;
  p.head_dim = q.size(2);
  p.total_q = q.size(0);
  p.cu_seqlens_q = cu_q.data_ptr<int64_t>();
  p.cu_seqlens_k = cu_k.data_ptr<int64_t>();
  p.causal = causal;
  p.scale = scale;
  p.fp64 = q.scalar_type() == at::kDouble;
  return p;
}

std::tuple<at::Tensor, at::Tensor> attention_varlen_cpu(const at::Tensor& q_in, const at::Tensor& k_in,
                                                        const at::Tensor& v_in, const at::Tensor& cu_q,
                                                        const at::Tensor& cu_k, int64_t max_q, int64_t max_k,
                                                        bool causal, double scale) {
  const auto compute = bk::glue::attention_compute_type(q_in);
  at::Tensor q = packed(q_in, compute, "q"), k = packed(k_in, compute, "k"), v = packed(v_in, compute, "v");
  auto p = varlen_params(q, k, v, cu_q, cu_k, max_q, max_k, causal, scale);
  at::Tensor o = at::empty(q.sizes(), q.options());
  at::Tensor lse = at::empty({q.size(1), q.size(0)}, q.options());
  p.o = o.data_ptr();
  set_packed(p.o_stride, o);
  p.lse = lse.data_ptr();
  if (o.numel() > 0) bk::cpu::attention_forward(p);
  return {o.to(q_in.scalar_type()), lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_varlen_backward_cpu(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_lse, const at::Tensor& q_in,
    const at::Tensor& k_in, const at::Tensor& v_in, const at::Tensor& out, const at::Tensor& lse,
    const at::Tensor& cu_q, const at::Tensor& cu_k, int64_t max_q, int64_t max_k, bool causal, double scale) {
  const auto compute = bk::glue::attention_compute_type(q_in);
  at::Tensor q = packed(q_in, compute, "q"), k = packed(k_in, compute, "k"), v = packed(v_in, compute, "v");
  at::Tensor o = packed(out, compute, "out"), g = packed(grad_out, compute, "grad_out");
  at::Tensor l = lse.to(compute).contiguous();
  auto p = varlen_params(q, k, v, cu_q, cu_k, max_q, max_k, causal, scale);
  TORCH_CHECK(l.dim() == 2 && l.size(0) == q.size(1) && l.size(1) == q.size(0), "bigkernels: lse must be (Hq, total_q)");
  at::Tensor dlse;
  if (grad_lse.has_value()) {
    dlse = grad_lse->to(compute).contiguous();
    p.dlse = dlse.data_ptr();
  }
  at::Tensor dq = at::zeros(q.sizes(), q.options());
  at::Tensor dk = at::zeros(k.sizes(), k.options());  // rows of no sequence keep 0
  at::Tensor dv = at::zeros(v.sizes(), v.options());
  p.o = o.data_ptr();
  set_packed(p.o_stride, o);
  p.lse = l.data_ptr();
  p.dout = g.data_ptr();
  set_packed(p.do_stride, g);
  p.dq = dq.data_ptr();
  set_packed(p.dq_stride, dq);
  p.dk = dk.data_ptr();
  set_packed(p.dk_stride, dk);
  p.dv = dv.data_ptr();
  set_packed(p.dv_stride, dv);
  if (q.numel() > 0 && k.numel() > 0) bk::cpu::attention_backward(p);
  const auto t = q_in.scalar_type();
  return {dq.to(t), dk.to(t), dv.to(t)};
}

// The append of a decode step: k_new/v_new (B, Hkv, Sn, D) into the caches at
// positions cache_seqlens[b] .. + Sn (the same scatter as the Python
// backends' append_to_cache; the op's CPU key is this C++ glue).
void append_to_cache(const at::Tensor& cache, const at::Tensor& fresh, const int64_t* lens, const char* name) {
  TORCH_CHECK(fresh.dim() == 4 && fresh.size(0) == cache.size(0) && fresh.size(1) == cache.size(1) &&
                  fresh.size(3) == cache.size(3) && fresh.scalar_type() == cache.scalar_type(),
              "bigkernels: ", name, " must be (B, Hkv, Sn, D) of the caches in their dtype, got ", fresh.sizes(), " ",
              fresh.scalar_type());
  const int64_t sn = fresh.size(2);
  for (int64_t b = 0; b < cache.size(0); ++b) {
    TORCH_CHECK(lens[b] >= 0 && lens[b] + sn <= cache.size(2), "bigkernels: cache_seqlens + ", sn,
                " new positions exceed the cache length ", cache.size(2));
    cache.select(0, b).narrow(1, lens[b], sn).copy_(fresh.select(0, b));
  }
}

// Decode: q (B, Hq, Sq, D) against the first cache_seqlens[b] (+ Sn appended)
// keys of the caches, causal bottom-right (the new queries are the last Sq positions).
at::Tensor attention_decode_cpu(const at::Tensor& q_in, at::Tensor& k_cache, at::Tensor& v_cache,
                                const at::Tensor& cache_seqlens, const std::optional<at::Tensor>& k_new,
                                const std::optional<at::Tensor>& v_new, double scale) {
  const int64_t sn = bk::glue::check_decode_args(q_in, cache_seqlens, k_new, v_new);
  const at::Tensor seqused = cache_seqlens.to(at::kLong).contiguous();
  if (k_new.has_value()) {
    append_to_cache(k_cache, *k_new, seqused.data_ptr<int64_t>(), "k_new");
    append_to_cache(v_cache, *v_new, seqused.data_ptr<int64_t>(), "v_new");
  }
  const at::Tensor used = at::add(seqused, sn);
  const auto compute = bk::glue::attention_compute_type(q_in);
  at::Tensor q = bk::glue::attention_operand(q_in, compute, "q");
  at::Tensor k = bk::glue::attention_operand(k_cache, compute, "k_cache");
  at::Tensor v = bk::glue::attention_operand(v_cache, compute, "v_cache");
  auto p = bk::glue::make_attention_params(q, k, v, std::nullopt, /*causal=*/true, scale);
  p.seqused_k = used.data_ptr<int64_t>();
  at::Tensor o = at::empty(q.sizes(), q.options());
  at::Tensor lse = at::empty({q.size(0), q.size(1), q.size(2)}, q.options());
  p.o = o.data_ptr();
  bk::glue::set_strides(p.o_stride, o);
  p.lse = lse.data_ptr();
  if (o.numel() > 0) bk::cpu::attention_forward(p);
  return o.to(q_in.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("attention_varlen", &attention_varlen_cpu);
  m.impl("attention_varlen_backward", &attention_varlen_backward_cpu);
  m.impl("attention_decode", &attention_decode_cpu);
}
