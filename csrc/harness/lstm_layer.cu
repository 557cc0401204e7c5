// Harness: lstm_layer forward, fp32 (persistent FMA and per-step) and bf16
// (persistent on tensor cores, persistent FMA, per-step on tensor cores), against a host loop
// of the same recurrence (double); prints the max error and the time per
// sequence. Then a bidirectional layer per path: both directions in one launch
// (lstm_forward_bidir) against the two single-direction launches, equal bit for
// bit, with both times. Usage: harness_lstm_layer [T B H]   (default 100 16 512)
#include <cuda_bf16.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "cuda/lstm/lstm_cuda.h"
#include "harness/harness.cuh"

namespace {

double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// y[t, b, :] of the plain recurrence (no projection, forward direction).
std::vector<double> host_lstm(const std::vector<float>& xp, const std::vector<float>& w, int64_t T, int64_t B,
                              int64_t H) {
  std::vector<double> h(B * H, 0.0), c(B * H, 0.0), y(T * B * H), z(4 * H);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> hn(B * H);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t r = 0; r < 4 * H; ++r) {
        double acc = xp[(t * B + b) * 4 * H + r];
        for (int64_t k = 0; k < H; ++k) acc += double(w[r * H + k]) * h[b * H + k];
        z[r] = acc;
      }
      for (int64_t u = 0; u < H; ++u) {
        const double i = sig(z[u]), f = sig(z[H + u]), g = std::tanh(z[2 * H + u]), o = sig(z[3 * H + u]);
        c[b * H + u] = f * c[b * H + u] + i * g;
        hn[b * H + u] = o * std::tanh(c[b * H + u]);
      }
    }
    h = hn;
    for (int64_t k = 0; k < B * H; ++k) y[t * B * H + k] = h[k];
  }
  return y;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t T = argc > 3 ? std::atoll(argv[1]) : 100, B = argc > 3 ? std::atoll(argv[2]) : 16,
                H = argc > 3 ? std::atoll(argv[3]) : 512;
  std::mt19937 rng(0);
  std::normal_distribution<float> dist;
  std::vector<float> xp(T * B * 4 * H), w(4 * H * H), zeros(B * H, 0.f);
  for (auto& v : xp) v = dist(rng);
  for (auto& v : w) v = dist(rng) / std::sqrt(float(H));

  bk::LstmParams p;
  p.T = T, p.B = B, p.H = H, p.P = H;
  p.x_proj = to_device(xp);
  p.w_hh = to_device(w);
  bk::cuda::LstmCudaWork work;
  work.h0 = to_device(zeros);
  work.c0 = to_device(zeros);
  float *y = nullptr, *hbuf = nullptr, *cstate = nullptr;
  BK_CHECK_CUDA(cudaMalloc(&y, T * B * H * sizeof(float)));
  BK_CHECK_CUDA(cudaMalloc(&hbuf, 2 * B * H * sizeof(float)));
  BK_CHECK_CUDA(cudaMalloc(&cstate, B * H * sizeof(float)));
  p.y = y;
  work.hbuf = hbuf;
  work.cstate = cstate;

  const std::vector<double> want = host_lstm(xp, w, T, B, H);
  int failures = 0;
  // Runs every path on the current p/work; read_y() returns y as fp32.
  auto run_paths = [&](const char* dtype, double tol, auto read_y) {
    for (auto path :
         {bk::cuda::LstmPath::Persistent, bk::cuda::LstmPath::PersistentFma, bk::cuda::LstmPath::PerStep}) {
      const bk::cuda::LstmPlan plan = bk::cuda::lstm_plan(p, work.storage, false, path);
      const char* name = path == bk::cuda::LstmPath::PerStep ? (plan.mma ? "per-step-mma" : "per-step")
                         : path == bk::cuda::LstmPath::PersistentFma ? "persistent-fma"
                         : plan.mma ? "persistent-mma" : "persistent";
      if (path != bk::cuda::LstmPath::PerStep && !plan.persistent) {
        std::printf("%s %s: does not fit (%zu B of shared memory > %zu)\n", dtype, name, plan.smem, plan.max_smem);
        continue;
      }
      BK_CHECK_CUDA(bk::cuda::lstm_forward(p, work, path, nullptr));
      BK_CHECK_CUDA(cudaDeviceSynchronize());
      const std::vector<float> got = read_y();
      double max_err = 0;
      for (size_t k = 0; k < got.size(); ++k) max_err = std::max(max_err, std::fabs(got[k] - want[k]));
      const float ms = median_ms([&] { BK_CHECK_CUDA(bk::cuda::lstm_forward(p, work, path, nullptr)); });
      std::printf("lstm_layer %s %s T=%lld B=%lld H=%lld blocks=%d units=%d smem=%zu max_err=%.3g time=%.3f ms\n",
                  dtype, name, (long long)T, (long long)B, (long long)H, plan.blocks, plan.units, plan.smem, max_err,
                  ms);
      failures += max_err < tol ? 0 : 1;
    }
  };
  // A reverse direction beside p (same inputs, its own outputs): one launch for both vs two launches.
  auto run_bidir = [&](const char* dtype) {
    const size_t ybytes = size_t(T * B * H) * (work.storage == bk::DType::F32 ? 4 : 2);
    bk::LstmParams d[2] = {p, p};
    bk::cuda::LstmCudaWork wd[2] = {work, work};
    d[1].reverse = true;
    void *y1 = nullptr, *h1 = nullptr, *c1 = nullptr;
    BK_CHECK_CUDA(cudaMalloc(&y1, ybytes));
    BK_CHECK_CUDA(cudaMalloc(&h1, 2 * B * H * sizeof(float)));
    BK_CHECK_CUDA(cudaMalloc(&c1, B * H * sizeof(float)));
    d[1].y = y1;
    wd[1].hbuf = static_cast<float*>(h1);
    wd[1].cstate = static_cast<float*>(c1);
    auto read = [&](int k) {
      std::vector<char> out(ybytes);
      BK_CHECK_CUDA(cudaMemcpy(out.data(), d[k].y, ybytes, cudaMemcpyDeviceToHost));
      return out;
    };
    for (auto path : {bk::cuda::LstmPath::Auto, bk::cuda::LstmPath::PerStep}) {
      const bk::cuda::LstmPlan plan = bk::cuda::lstm_plan(p, work.storage, false, path, 2);
      auto two = [&] {
        BK_CHECK_CUDA(bk::cuda::lstm_forward(d[0], wd[0], path, nullptr));
        BK_CHECK_CUDA(bk::cuda::lstm_forward(d[1], wd[1], path, nullptr));
      };
      two();
      BK_CHECK_CUDA(cudaDeviceSynchronize());
      const std::vector<char> a0 = read(0), a1 = read(1);
      BK_CHECK_CUDA(bk::cuda::lstm_forward_bidir(d, wd, path, nullptr));
      BK_CHECK_CUDA(cudaDeviceSynchronize());
      const bool same = read(0) == a0 && read(1) == a1;
      const float ms1 = median_ms([&] { BK_CHECK_CUDA(bk::cuda::lstm_forward_bidir(d, wd, path, nullptr)); });
      const float ms2 = median_ms(two);
      const char* how = !plan.persistent ? "per-step"
                        : plan.dirs == 2 ? "persistent, both directions at once" : "persistent, one after the other";
      std::printf("lstm bidirectional %s %s: %s, one launch %.3f ms, two launches %.3f ms, bit-equal %s\n", dtype,
                  path == bk::cuda::LstmPath::PerStep ? "per-step" : "auto", how, ms1, ms2, same ? "yes" : "NO");
      failures += same ? 0 : 1;
    }
    BK_CHECK_CUDA(cudaFree(y1));
    BK_CHECK_CUDA(cudaFree(h1));
    BK_CHECK_CUDA(cudaFree(c1));
  };
  run_paths("fp32", 1e-4, [&] {
    std::vector<float> got(T * B * H);
    BK_CHECK_CUDA(cudaMemcpy(got.data(), y, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return got;
  });
  run_bidir("fp32");

  // bf16 storage: the same data rounded; the recurrence stays fp32 (tolerance: bf16's 8 bits over T steps).
  std::vector<__nv_bfloat16> xp16(xp.size()), w16(w.size());
  for (size_t k = 0; k < xp.size(); ++k) xp16[k] = __float2bfloat16(xp[k]);
  for (size_t k = 0; k < w.size(); ++k) w16[k] = __float2bfloat16(w[k]);
  __nv_bfloat16* y16 = nullptr;
  BK_CHECK_CUDA(cudaMalloc(&y16, T * B * H * sizeof(__nv_bfloat16)));
  p.x_proj = to_device(xp16);
  p.w_hh = to_device(w16);
  p.y = y16;
  work.storage = bk::DType::BF16;
  run_paths("bf16", 5e-2, [&] {
    std::vector<__nv_bfloat16> raw(T * B * H);
    BK_CHECK_CUDA(cudaMemcpy(raw.data(), y16, raw.size() * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost));
    std::vector<float> got(raw.size());
    for (size_t k = 0; k < raw.size(); ++k) got[k] = __bfloat162float(raw[k]);
    return got;
  });
  run_bidir("bf16");
  return failures;
}
