// cuda_sim implementation of the attention forward: the CUDA kernels of
// csrc/cuda/attention under the SIMT emulator, on CPU tensors. Inputs are
// read in place through their strides, as on the GPU: each is guarded as the
// span of memory its strides reach (a transposed view, a broadcast mask with
// stride-0 dims), so a read past that span faults.
#include <torch/library.h>

#include "cuda/attention/attention.h"
#include "torch/attention_cuda_params.h"
#include "torch/sim/guarded.h"

namespace {

using bk::simglue::Guarded;

// A 1-D view over the elements t's strides can reach, from t's first element.
at::Tensor span_of(const at::Tensor& t) {
  int64_t span = 1;
  for (int64_t d = 0; d < t.dim(); ++d) {
    TORCH_CHECK(t.stride(d) >= 0, "bigkernels cuda_sim: negative strides are not supported");
    span += (t.size(d) - 1) * t.stride(d);
  }
  return t.numel() == 0 ? t.reshape({0}) : t.as_strided({span}, {1});
}

std::tuple<at::Tensor, at::Tensor> attention_sim(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                 const std::optional<at::Tensor>& mask, bool causal, double scale,
                                                 double dropout_p, int64_t seed, int64_t offset) {
  auto a = bk::glue::make_attention_forward(q, k, v, mask, causal, scale, dropout_p, seed, offset);
  const char* why = bk::cuda::attention_forward_unsupported(a.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention (cuda_sim): ", why ? why : "");
  {
    Guarded gq(span_of(a.q), Guarded::kIn), gk(span_of(a.k), Guarded::kIn), gv(span_of(a.v), Guarded::kIn);
    Guarded go(a.o, Guarded::kOut), gl(a.lse, Guarded::kOut);
    std::optional<Guarded> gm;
    if (a.mask.has_value()) gm.emplace(span_of(*a.mask), Guarded::kIn);
    bk::AttentionParams p = a.p;
    p.q = gq.get();
    p.k = gk.get();
    p.v = gv.get();
    p.o = go.get();
    p.lse = gl.get();
    p.mask = gm ? gm->get() : nullptr;
    bk::simglue::check(bk::cuda::attention_forward(p, a.q.scalar_type() == at::kBFloat16, nullptr), "attention");
  }
  return {a.o, a.lse};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) { m.impl("attention_sim", &attention_sim); }
