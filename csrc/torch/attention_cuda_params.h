// Tensor -> AttentionParams for the CUDA attention kernels (the CUDA glue
// and its cuda_sim twin): fp16/bf16 operands with 16-byte aligned rows, the
// mask broadcast as a view (additive masks as float32), fp32 lse.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/add.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>

#include <array>
#include <cstdint>

#include "cuda/attention/attention.h"
#include "torch/attention_params.h"

namespace bk {
namespace glue {

inline void check_tensor_core_dtypes(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  TORCH_CHECK(q.scalar_type() == at::kHalf || q.scalar_type() == at::kBFloat16,
              "bigkernels: the cuda attention kernels take float16/bfloat16 q, got ", q.scalar_type());
  TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "bigkernels: k and v must have q's dtype (", q.scalar_type(), "), got ", k.scalar_type(), " and ",
              v.scalar_type());
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "bigkernels: q, k, v must be 4-D (B, H, S, D)");
}

// cp.async moves 16-byte chunks: the head dim contiguous, the base pointer
// and the batch/head/sequence strides multiples of 8 elements; else a copy.
inline at::Tensor tensor_core_operand(const at::Tensor& t) {
  const bool ok = t.stride(3) == 1 && t.stride(0) % 8 == 0 && t.stride(1) % 8 == 0 && t.stride(2) % 8 == 0 &&
                  reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
  return ok || t.numel() == 0 ? t : t.clone(at::MemoryFormat::Contiguous);
}

// Params of the forward with o and lse allocated (o contiguous, q's dtype).
struct AttentionForwardArgs {
  at::Tensor q, k, v, o, lse, seqused;  // seqused: decode only
  std::optional<at::Tensor> mask;
  AttentionParams p;
};

inline AttentionForwardArgs make_attention_forward(const at::Tensor& q_in, const at::Tensor& k_in,
                                                   const at::Tensor& v_in, const std::optional<at::Tensor>& mask,
                                                   bool causal, double scale, double dropout_p, int64_t seed,
                                                   int64_t offset) {
  check_tensor_core_dtypes(q_in, k_in, v_in);
  TORCH_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, "bigkernels: dropout_p must be in [0, 1)");
  AttentionForwardArgs a;
  a.q = tensor_core_operand(q_in);
  a.k = tensor_core_operand(k_in);
  a.v = tensor_core_operand(v_in);
  a.mask = attention_mask(mask, a.q, a.k.size(2), at::kFloat);
  a.p = make_attention_params(a.q, a.k, a.v, a.mask, causal, scale);
  set_dropout(a.p, dropout_p, seed, offset);
  a.o = at::empty(a.q.sizes(), a.q.options());
  a.lse = at::empty({a.q.size(0), a.q.size(1), a.q.size(2)}, a.q.options().dtype(at::kFloat));
  a.p.o = a.o.data_ptr();
  set_strides(a.p.o_stride, a.o);
  a.p.lse = a.lse.data_ptr();
  return a;
}

// dq, dk, dv (contiguous, q's dtype). With no query or no key at all (varlen
// with only empty sequences) the kernels launch nothing: zeros then.
inline void alloc_grads(at::Tensor& dq, at::Tensor& dk, at::Tensor& dv, const at::Tensor& q, const at::Tensor& k,
                        const at::Tensor& v, const AttentionParams& p) {
  const bool none = p.seqlen_q == 0 || p.seqlen_kv == 0;
  dq = none ? at::zeros(q.sizes(), q.options()) : at::empty(q.sizes(), q.options());
  dk = none ? at::zeros(k.sizes(), k.options()) : at::empty(k.sizes(), k.options());
  dv = none ? at::zeros(v.sizes(), v.options()) : at::empty(v.sizes(), v.options());
}

// Params of the backward with dq/dk/dv (contiguous, q's dtype) and the fp32
// scratch of bk::cuda::AttentionBwdWorkspace allocated.
struct AttentionBackwardArgs {
  at::Tensor q, k, v, o, g, lse, dlse, dq, dk, dv, dq_accum, lse_log2, delta;
  std::optional<at::Tensor> mask;
  AttentionParams p;
};

inline AttentionBackwardArgs make_attention_backward(const at::Tensor& grad_out,
                                                     const std::optional<at::Tensor>& grad_lse,
                                                     const at::Tensor& q_in, const at::Tensor& k_in,
                                                     const at::Tensor& v_in, const at::Tensor& out,
                                                     const at::Tensor& lse, const std::optional<at::Tensor>& mask,
                                                     bool causal, double scale, double dropout_p, int64_t seed,
                                                     int64_t offset) {
  check_tensor_core_dtypes(q_in, k_in, v_in);
  TORCH_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, "bigkernels: dropout_p must be in [0, 1)");
  TORCH_CHECK(out.sizes() == q_in.sizes() && grad_out.sizes() == q_in.sizes(),
              "bigkernels: out and grad_out must have q's shape ", q_in.sizes());
  TORCH_CHECK(lse.dim() == 3 && lse.size(0) == q_in.size(0) && lse.size(1) == q_in.size(1) &&
                  lse.size(2) == q_in.size(2),
              "bigkernels: lse must be (B, Hq, Sq)");
  AttentionBackwardArgs a;
  const auto dtype = q_in.scalar_type();
  a.q = tensor_core_operand(q_in);
  a.k = tensor_core_operand(k_in);
  a.v = tensor_core_operand(v_in);
  a.o = tensor_core_operand(out.to(dtype));
  a.g = tensor_core_operand(grad_out.to(dtype));
  a.lse = lse.to(at::kFloat).contiguous();
  a.mask = attention_mask(mask, a.q, a.k.size(2), at::kFloat);
  a.p = make_attention_params(a.q, a.k, a.v, a.mask, causal, scale);
  set_dropout(a.p, dropout_p, seed, offset);
  if (grad_lse.has_value()) {
    TORCH_CHECK(grad_lse->sizes() == lse.sizes(), "bigkernels: grad_lse must match lse's shape");
    a.dlse = grad_lse->to(at::kFloat).contiguous();
    a.p.dlse = a.dlse.data_ptr();
  }
  alloc_grads(a.dq, a.dk, a.dv, a.q, a.k, a.v, a.p);
  const auto f32 = a.q.options().dtype(at::kFloat);
  a.dq_accum = at::empty(a.q.sizes(), f32);
  a.lse_log2 = at::empty(a.lse.sizes(), f32);
  a.delta = at::empty(a.lse.sizes(), f32);
  a.p.o = a.o.data_ptr();
  set_strides(a.p.o_stride, a.o);
  a.p.lse = a.lse.data_ptr();
  a.p.dout = a.g.data_ptr();
  set_strides(a.p.do_stride, a.g);
  a.p.dq = a.dq.data_ptr();
  set_strides(a.p.dq_stride, a.dq);
  a.p.dk = a.dk.data_ptr();
  set_strides(a.p.dk_stride, a.dk);
  a.p.dv = a.dv.data_ptr();
  set_strides(a.p.dv_stride, a.dv);
  return a;
}

// ---- varlen: packed (total, H, D) operands, sequences from cu_seqlens ----

inline at::Tensor packed_operand(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 3, "bigkernels: ", name, " must be 3-D (total, H, D)");
  const bool ok = t.stride(2) == 1 && t.stride(0) % 8 == 0 && t.stride(1) % 8 == 0 &&
                  reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
  return ok || t.numel() == 0 ? t : t.clone(at::MemoryFormat::Contiguous);
}

// Row b of a sequence comes from cu_seqlens: batch stride 0.
inline void set_packed_strides(int64_t* dst, const at::Tensor& t) {
  dst[0] = 0;
  dst[1] = t.stride(1);
  dst[2] = t.stride(0);
}

struct VarlenArgs {
  at::Tensor q, k, v, cu_q, cu_k, o, lse, g, dlse, dq, dk, dv, dq_accum, lse_log2, delta;
  AttentionParams p;
};

inline VarlenArgs make_varlen(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
                              const at::Tensor& cu_q, const at::Tensor& cu_k, int64_t max_q, int64_t max_k,
                              bool causal, double scale) {
  TORCH_CHECK(q_in.dim() == 3 && k_in.dim() == 3 && v_in.dim() == 3, "bigkernels: varlen q, k, v must be 3-D");
  check_tensor_core_dtypes(q_in.unsqueeze(0), k_in.unsqueeze(0), v_in.unsqueeze(0));
  TORCH_CHECK(cu_q.scalar_type() == at::kLong && cu_k.scalar_type() == at::kLong && cu_q.dim() == 1 &&
                  cu_q.numel() == cu_k.numel() && cu_q.numel() >= 2,
              "bigkernels: cu_seqlens_q/k must be int64 (batch + 1,)");
  TORCH_CHECK(k_in.sizes() == v_in.sizes() && q_in.size(2) == k_in.size(2) && k_in.size(1) > 0 &&
                  q_in.size(1) % k_in.size(1) == 0,
              "bigkernels: varlen q/k/v shapes do not match");
  VarlenArgs a;
  a.q = packed_operand(q_in, "q");
  a.k = packed_operand(k_in, "k");
  a.v = packed_operand(v_in, "v");
  a.cu_q = cu_q.contiguous();
  a.cu_k = cu_k.contiguous();
  AttentionParams& p = a.p;
  p.q = a.q.data_ptr();
  p.k = a.k.data_ptr();
  p.v = a.v.data_ptr();
  set_packed_strides(p.q_stride, a.q);
  set_packed_strides(p.k_stride, a.k);
  set_packed_strides(p.v_stride, a.v);
  p.batch = a.cu_q.numel() - 1;
  p.heads_q = a.q.size(1);
  p.heads_kv = a.k.size(1);
  p.seqlen_q = max_q;
  p.seqlen_kv = max_k;
  p.head_dim = a.q.size(2);
  p.total_q = a.q.size(0);
  p.cu_seqlens_q = a.cu_q.data_ptr<int64_t>();
  p.cu_seqlens_k = a.cu_k.data_ptr<int64_t>();
  p.causal = causal;
  p.scale = scale;
  a.o = at::empty(a.q.sizes(), a.q.options());
  a.lse = at::empty({a.q.size(1), a.q.size(0)}, a.q.options().dtype(at::kFloat));
  p.o = a.o.data_ptr();
  set_packed_strides(p.o_stride, a.o);
  p.lse = a.lse.data_ptr();
  return a;
}

// The backward's extra operands and outputs, on top of make_varlen's (whose o/lse are replaced).
inline void add_varlen_backward(VarlenArgs& a, const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_lse,
                                const at::Tensor& out, const at::Tensor& lse) {
  const auto dtype = a.q.scalar_type();
  TORCH_CHECK(out.sizes() == a.q.sizes() && grad_out.sizes() == a.q.sizes(),
              "bigkernels: out and grad_out must have q's shape");
  TORCH_CHECK(lse.dim() == 2 && lse.size(0) == a.q.size(1) && lse.size(1) == a.q.size(0),
              "bigkernels: lse must be (Hq, total_q)");
  a.o = packed_operand(out.to(dtype), "out");
  a.g = packed_operand(grad_out.to(dtype), "grad_out");
  a.lse = lse.to(at::kFloat).contiguous();
  AttentionParams& p = a.p;
  p.o = a.o.data_ptr();
  set_packed_strides(p.o_stride, a.o);
  p.dout = a.g.data_ptr();
  set_packed_strides(p.do_stride, a.g);
  p.lse = a.lse.data_ptr();
  if (grad_lse.has_value()) {
    TORCH_CHECK(grad_lse->sizes() == lse.sizes(), "bigkernels: grad_lse must match lse's shape");
    a.dlse = grad_lse->to(at::kFloat).contiguous();
    p.dlse = a.dlse.data_ptr();
  }
  alloc_grads(a.dq, a.dk, a.dv, a.q, a.k, a.v, a.p);
  set_packed_strides(p.dq_stride, a.dq);
  set_packed_strides(p.dk_stride, a.dk);
  set_packed_strides(p.dv_stride, a.dv);
  p.dq = a.dq.data_ptr();
  p.dk = a.dk.data_ptr();
  p.dv = a.dv.data_ptr();
  const auto f32 = a.q.options().dtype(at::kFloat);
  a.dq_accum = at::empty({a.q.size(1), a.q.size(0), a.q.size(2)}, f32);
  a.lse_log2 = at::empty(a.lse.sizes(), f32);
  a.delta = at::empty(a.lse.sizes(), f32);
}

// ---- decode: q (B, Hq, Sq, D) against the first cache_seqlens[b] (+ Sn new) keys of the caches ----

struct DecodeArgs {
  AttentionForwardArgs f;  // f.seqused = cache_seqlens + Sn: the kernel's key counts
  at::Tensor k_new, v_new;
  cuda::AttentionCacheAppend append;
};

// The kernel writes the new rows into f.k/f.v: the caches themselves, or
// copies when their layout needed one (finish_decode copies those back).
inline DecodeArgs make_decode(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                              const at::Tensor& cache_seqlens, const std::optional<at::Tensor>& k_new,
                              const std::optional<at::Tensor>& v_new, double scale) {
  const int64_t sn = check_decode_args(q, cache_seqlens, k_new, v_new);
  DecodeArgs a;
  a.f = make_attention_forward(q, k_cache, v_cache, std::nullopt, /*causal=*/true, scale, 0.0, 0, 0);
  if (k_new.has_value()) {
    const std::array<int64_t, 4> want{k_cache.size(0), k_cache.size(1), sn, k_cache.size(3)};
    TORCH_CHECK(k_new->dim() == 4 && k_new->sizes() == at::IntArrayRef(want) && v_new->sizes() == at::IntArrayRef(want),
                "bigkernels: k_new and v_new must be (B, Hkv, Sn, D) of the caches, got ", k_new->sizes(), " and ",
                v_new->sizes());
    TORCH_CHECK(k_new->scalar_type() == k_cache.scalar_type() && v_new->scalar_type() == k_cache.scalar_type(),
                "bigkernels: k_new and v_new must have the caches' dtype (", k_cache.scalar_type(), ")");
    a.k_new = tensor_core_operand(*k_new);
    a.v_new = tensor_core_operand(*v_new);
    a.append.k_new = a.k_new.data_ptr();
    a.append.v_new = a.v_new.data_ptr();
    set_strides(a.append.k_new_stride, a.k_new);
    set_strides(a.append.v_new_stride, a.v_new);
    a.append.seqlen_new = sn;
    a.append.k_cache = a.f.k.data_ptr();
    a.append.v_cache = a.f.v.data_ptr();
  }
  a.f.seqused = at::add(cache_seqlens.to(at::kLong), sn).contiguous();
  a.f.p.seqused_k = a.f.seqused.data_ptr<int64_t>();
  return a;
}

// After the kernel: caches that were copied for the kernel get the copies' rows.
inline void finish_decode(const DecodeArgs& a, const at::Tensor& k_cache, const at::Tensor& v_cache) {
  if (a.append.seqlen_new == 0) return;
  if (!a.f.k.is_same(k_cache)) k_cache.copy_(a.f.k);
  if (!a.f.v.is_same(v_cache)) v_cache.copy_(a.f.v);
}

}  // namespace glue
}  // namespace bk
