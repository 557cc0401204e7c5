// Harness: the FlashAttention-2-style kernels of csrc/cuda/attention on a GPU.
//  1. validate: forward (out, lse) and backward (dq, dk, dv) on a small
//     ragged GQA causal case against a double-precision host loop;
//  2. time: forward and backward TFLOP/s over a sweep (16k tokens in total,
//     hidden 2048, bf16, head dims 64/128, causal and not; FLOPs as
//     FlashAttention's benchmarks count them: 4 B H S^2 D forward, x2.5
//     backward, halved when causal), and split-KV decode bandwidth (each step
//     appending one token in the kernel; the cache row is checked).
// Usage: harness_attention [--quick]
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstring>
#include <random>

#include "cuda/attention/attention.h"
#include "harness/harness.cuh"

namespace {

using bf16 = __nv_bfloat16;

struct Dense {
  int64_t B, Hq, Hkv, Sq, Skv, D;
  bool causal;
};

std::vector<bf16> random_bf16(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist;
  std::vector<bf16> v(n);
  for (auto& x : v) x = __float2bfloat16(dist(rng));
  return v;
}

template <typename T>
T* device_zeros(size_t n) {
  T* p = nullptr;
  BK_CHECK_CUDA(cudaMalloc(&p, n * sizeof(T)));
  BK_CHECK_CUDA(cudaMemset(p, 0, n * sizeof(T)));
  return p;
}

template <typename T>
std::vector<T> to_host(const T* p, size_t n) {
  std::vector<T> v(n);
  BK_CHECK_CUDA(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

void set_dense_strides(int64_t* s, int64_t H, int64_t S, int64_t D) {
  s[0] = H * S * D;
  s[1] = S * D;
  s[2] = D;
}

// Device buffers and params of one dense problem (contiguous B, H, S, D).
struct Problem {
  Dense c;
  bk::AttentionParams p;
  bk::cuda::AttentionBwdWorkspace ws;
  std::vector<bf16> q, k, v, dout;

  Problem(const Dense& c_, std::mt19937& rng) : c(c_) {
    const size_t nq = c.B * c.Hq * c.Sq * c.D, nk = c.B * c.Hkv * c.Skv * c.D;
    q = random_bf16(nq, rng);
    k = random_bf16(nk, rng);
    v = random_bf16(nk, rng);
    dout = random_bf16(nq, rng);
    p.q = to_device(q);
    p.k = to_device(k);
    p.v = to_device(v);
    p.dout = to_device(dout);
    set_dense_strides(p.q_stride, c.Hq, c.Sq, c.D);
    set_dense_strides(p.k_stride, c.Hkv, c.Skv, c.D);
    set_dense_strides(p.v_stride, c.Hkv, c.Skv, c.D);
    set_dense_strides(p.o_stride, c.Hq, c.Sq, c.D);
    set_dense_strides(p.do_stride, c.Hq, c.Sq, c.D);
    set_dense_strides(p.dq_stride, c.Hq, c.Sq, c.D);
    set_dense_strides(p.dk_stride, c.Hkv, c.Skv, c.D);
    set_dense_strides(p.dv_stride, c.Hkv, c.Skv, c.D);
    p.batch = c.B;
    p.heads_q = c.Hq;
    p.heads_kv = c.Hkv;
    p.seqlen_q = c.Sq;
    p.seqlen_kv = c.Skv;
    p.head_dim = c.D;
    p.causal = c.causal;
    p.scale = 1.0 / std::sqrt(double(c.D));
    p.o = device_zeros<bf16>(nq);
    p.lse = device_zeros<float>(c.B * c.Hq * c.Sq);
    p.dq = device_zeros<bf16>(nq);
    p.dk = device_zeros<bf16>(nk);
    p.dv = device_zeros<bf16>(nk);
    ws.dq_accum = device_zeros<float>(nq);
    ws.lse_log2 = device_zeros<float>(c.B * c.Hq * c.Sq);
    ws.delta = device_zeros<float>(c.B * c.Hq * c.Sq);
  }
  ~Problem() {
    for (const void* ptr : {p.q, p.k, p.v, p.dout, static_cast<const void*>(p.o), static_cast<const void*>(p.lse),
                            static_cast<const void*>(p.dq), static_cast<const void*>(p.dk),
                            static_cast<const void*>(p.dv), static_cast<const void*>(ws.dq_accum),
                            static_cast<const void*>(ws.lse_log2), static_cast<const void*>(ws.delta)})
      cudaFree(const_cast<void*>(ptr));
  }
  void forward() { BK_CHECK_CUDA(bk::cuda::attention_forward(p, true, nullptr)); }
  void backward() { BK_CHECK_CUDA(bk::cuda::attention_backward(p, ws, true, nullptr)); }
};

double max_abs_diff(const std::vector<bf16>& got, const std::vector<double>& want) {
  double e = 0;
  for (size_t i = 0; i < got.size(); ++i) e = std::max(e, std::fabs(double(__bfloat162float(got[i])) - want[i]));
  return e;
}

// Double-precision forward + backward of one dense problem, as the kernels
// define it (bottom-right causal; rows that see nothing give 0).
bool validate(std::mt19937& rng) {
  const Dense c{2, 8, 2, 77, 143, 128, true};
  Problem pr(c, rng);
  pr.forward();
  pr.backward();
  BK_CHECK_CUDA(cudaDeviceSynchronize());
  const auto f = [](bf16 x) { return double(__bfloat162float(x)); };
  const size_t nq = pr.q.size(), nk = pr.k.size();
  std::vector<double> o(nq, 0), dq(nq, 0), dk(nk, 0), dv(nk, 0);
  const int64_t group = c.Hq / c.Hkv, diag = c.Skv - c.Sq;
  std::vector<double> s(c.Skv), dp(c.Skv);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.Hq; ++h)
      for (int64_t i = 0; i < c.Sq; ++i) {
        const int64_t hk = h / group, qo = ((b * c.Hq + h) * c.Sq + i) * c.D;
        const int64_t visible = std::min<int64_t>(c.Skv, i + diag + 1);
        if (visible <= 0) continue;
        double mx = -INFINITY, l = 0;
        for (int64_t j = 0; j < visible; ++j) {
          const int64_t ko = ((b * c.Hkv + hk) * c.Skv + j) * c.D;
          double acc = 0;
          for (int64_t d = 0; d < c.D; ++d) acc += f(pr.q[qo + d]) * f(pr.k[ko + d]);
          s[j] = acc * pr.p.scale;
          mx = std::max(mx, s[j]);
        }
        for (int64_t j = 0; j < visible; ++j) l += (s[j] = std::exp(s[j] - mx));
        double delta = 0;
        for (int64_t j = 0; j < visible; ++j) {
          s[j] /= l;
          const int64_t ko = ((b * c.Hkv + hk) * c.Skv + j) * c.D;
          double acc = 0;
          for (int64_t d = 0; d < c.D; ++d) {
            o[qo + d] += s[j] * f(pr.v[ko + d]);
            dv[ko + d] += s[j] * f(pr.dout[qo + d]);
            acc += f(pr.dout[qo + d]) * f(pr.v[ko + d]);
          }
          dp[j] = acc;
          delta += s[j] * acc;
        }
        for (int64_t j = 0; j < visible; ++j) {
          const double ds = s[j] * (dp[j] - delta) * pr.p.scale;
          const int64_t ko = ((b * c.Hkv + hk) * c.Skv + j) * c.D;
          for (int64_t d = 0; d < c.D; ++d) {
            dq[qo + d] += ds * f(pr.k[ko + d]);
            dk[ko + d] += ds * f(pr.q[qo + d]);
          }
        }
      }
  const double eo = max_abs_diff(to_host(static_cast<const bf16*>(pr.p.o), nq), o);
  const double eq = max_abs_diff(to_host(static_cast<const bf16*>(pr.p.dq), nq), dq);
  const double ek = max_abs_diff(to_host(static_cast<const bf16*>(pr.p.dk), nk), dk);
  const double ev = max_abs_diff(to_host(static_cast<const bf16*>(pr.p.dv), nk), dv);
  std::printf("validate bf16 B=2 Hq=8 Hkv=2 Sq=77 Skv=143 D=128 causal: max err out %.3g dq %.3g dk %.3g dv %.3g\n",
              eo, eq, ek, ev);
  return eo < 3e-2 && eq < 6e-2 && ek < 6e-2 && ev < 6e-2;
}

void time_dense(bool quick) {
  std::mt19937 rng(1);
  const int64_t tokens = 16384, hidden = 2048;
  for (int64_t D : {64, 128})
    for (bool causal : {false, true})
      for (int64_t S : {512, 1024, 2048, 4096, 8192, 16384}) {
        if (quick && S != 4096) continue;
        const int64_t B = tokens / S, H = hidden / D;
        Problem pr({B, H, H, S, S, D, causal}, rng);
        const double flops = 4.0 * B * H * S * S * D * (causal ? 0.5 : 1.0);
        const float fwd = median_ms([&] { pr.forward(); });
        const float bwd = median_ms([&] { pr.backward(); });
        std::printf("bf16 D=%lld causal=%d B=%lld H=%lld S=%lld: fwd %.3f ms %.1f TFLOP/s, bwd %.3f ms %.1f TFLOP/s\n",
                    (long long)D, int(causal), (long long)B, (long long)H, (long long)S, fwd, flops / fwd * 1e-9,
                    bwd, 2.5 * flops / bwd * 1e-9);
      }
}

void time_decode(bool quick) {
  std::mt19937 rng(2);
  const int64_t Hq = 32, Hkv = 8, D = 128;
  for (int64_t B : {1, 4, 8})
    for (int64_t S : {8192, 16384, 32768}) {
      if (quick && S != 16384) continue;
      Problem pr({B, Hq, Hkv, 1, S, D, true}, rng);
      std::vector<int64_t> used(B, S);
      pr.p.seqused_k = to_device(used);
      auto ws = bk::cuda::attention_decode_plan(pr.p);
      ws.o_partial = device_zeros<float>(size_t(ws.num_splits) * B * Hq * D);
      ws.lse_partial = device_zeros<float>(size_t(ws.num_splits) * B * Hq);
      // The step appends its token's key/value at position S - 1, in the kernel.
      const std::vector<bf16> k_new = random_bf16(size_t(B) * Hkv * D, rng), v_new = random_bf16(k_new.size(), rng);
      bk::cuda::AttentionCacheAppend ap;
      ap.k_new = to_device(k_new);
      ap.v_new = to_device(v_new);
      set_dense_strides(ap.k_new_stride, Hkv, 1, D);
      set_dense_strides(ap.v_new_stride, Hkv, 1, D);
      ap.seqlen_new = 1;
      ap.k_cache = const_cast<void*>(pr.p.k);
      ap.v_cache = const_cast<void*>(pr.p.v);
      const float ms = median_ms([&] { BK_CHECK_CUDA(bk::cuda::attention_decode(pr.p, ws, true, nullptr, ap)); });
      bool appended = true;  // the cache's last row of every (b, kv head) is the new key
      for (int64_t bh = 0; bh < B * Hkv; ++bh) {
        const auto row = to_host(static_cast<const bf16*>(pr.p.k) + (bh * S + S - 1) * D, size_t(D));
        appended = appended && std::memcmp(row.data(), k_new.data() + bh * D, D * sizeof(bf16)) == 0;
      }
      const double bytes = 2.0 * B * Hkv * S * D * sizeof(bf16);
      std::printf("decode bf16 B=%lld Hq=%d Hkv=%d D=%d cache=%lld splits=%d: %.3f ms %.0f GB/s (K+V reads), "
                  "append %s\n", (long long)B, int(Hq), int(Hkv), int(D), (long long)S, ws.num_splits, ms,
                  bytes / ms * 1e-6, appended ? "ok" : "WRONG");
      cudaFree(const_cast<void*>(ap.k_new));
      cudaFree(const_cast<void*>(ap.v_new));
      cudaFree(ws.o_partial);
      cudaFree(ws.lse_partial);
      cudaFree(const_cast<int64_t*>(pr.p.seqused_k));
      pr.p.seqused_k = nullptr;
    }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::mt19937 rng(0);
  const bool ok = validate(rng);
  time_dense(quick);
  time_decode(quick);
  return ok ? 0 : 1;
}
