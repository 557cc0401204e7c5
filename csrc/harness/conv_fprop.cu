// Harness: implicit-GEMM conv forward (fp16, NHWC, ResNet-50 layer1 3x3
// 64->64 @56, batch 8) + bias + residual + relu, against a host loop on 2000
// sampled outputs; prints the max error and the achieved TFLOP/s.
#include <cuda_fp16.h>

#include <cmath>
#include <random>

#include "cuda/conv/conv_fprop.h"
#include "harness/harness.cuh"

int main() {
  const int N = 8, C = 64, H = 56, W = 56, K = 64, R = 3, S = 3, P = 56, Q = 56;
  std::mt19937 rng(0);
  std::normal_distribution<float> dist;
  std::vector<__half> x(size_t(N) * H * W * C), w(size_t(K) * R * S * C), bias(K), res(size_t(N) * P * Q * K);
  for (auto& v : x) v = __float2half(dist(rng));
  for (auto& v : w) v = __float2half(dist(rng) / 24.f);
  for (auto& v : bias) v = __float2half(dist(rng));
  for (auto& v : res) v = __float2half(dist(rng));
  bk::ConvParams p;
  p.x = to_device(x), p.w = to_device(w), p.bias = to_device(bias), p.residual = to_device(res);
  __half* dy = nullptr;
  BK_CHECK_CUDA(cudaMalloc(&dy, res.size() * sizeof(__half)));
  p.y = dy;
  p.n = N, p.c = C, p.h = H, p.w_in = W, p.k = K, p.r = R, p.s = S, p.p = P, p.q = Q;
  p.pad_h = p.pad_w = 1;
  p.act = bk::Act::Relu;
  p.dtype = bk::DType::F16;
  BK_CHECK_CUDA(bk::cuda::conv2d_fprop(p, nullptr));
  std::vector<__half> y(res.size());
  BK_CHECK_CUDA(cudaMemcpy(y.data(), dy, y.size() * sizeof(__half), cudaMemcpyDeviceToHost));

  double max_err = 0;
  std::uniform_int_distribution<size_t> pick(0, y.size() - 1);
  for (int t = 0; t < 2000; ++t) {
    const size_t i = pick(rng);
    const int k = int(i % K), q = int(i / K % Q), pp = int(i / K / Q % P), n = int(i / K / Q / P);
    double z = __half2float(bias[k]) + __half2float(res[i]);
    for (int r = 0; r < R; ++r)
      for (int s = 0; s < S; ++s) {
        const int h = pp - 1 + r, ww = q - 1 + s;
        if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
        for (int c = 0; c < C; ++c)
          z += double(__half2float(x[((size_t(n) * H + h) * W + ww) * C + c])) *
               __half2float(w[((size_t(k) * R + r) * S + s) * C + c]);
      }
    max_err = std::max(max_err, std::fabs(std::max(z, 0.0) - double(__half2float(y[i]))));
  }
  const float ms = median_ms([&] { BK_CHECK_CUDA(bk::cuda::conv2d_fprop(p, nullptr)); });
  const double tflops = 2.0 * N * P * Q * K * C * R * S / (ms * 1e9);
  std::printf("conv2d_fprop fp16 nhwc 8x64x56x56 3x3 k64 +bias+res+relu max_err=%.3g time=%.3f ms %.1f TFLOP/s\n",
              max_err, ms, tflops);
  return max_err < 2e-2 ? 0 : 1;
}
