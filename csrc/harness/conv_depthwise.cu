// Harness: depthwise conv forward and backward (fp32, NHWC, 8x128x56x56,
// 7x7) against host loops on sampled elements; prints errors and times.
#include <cmath>
#include <random>

#include "cuda/conv/depthwise.h"
#include "harness/harness.cuh"

int main() {
  const int N = 8, C = 128, H = 56, W = 56, R = 7, S = 7, pad = 3;
  std::mt19937 rng(0);
  std::normal_distribution<float> dist;
  std::vector<float> x(size_t(N) * H * W * C), w(size_t(C) * R * S), gz(x.size());
  for (auto& v : x) v = dist(rng);
  for (auto& v : w) v = dist(rng) / 7.f;
  for (auto& v : gz) v = dist(rng);
  bk::ConvParams p;
  p.x = to_device(x), p.w = to_device(w), p.grad_z = to_device(gz);
  float *dy = nullptr, *dgx = nullptr, *dgw = nullptr;
  BK_CHECK_CUDA(cudaMalloc(&dy, x.size() * sizeof(float)));
  BK_CHECK_CUDA(cudaMalloc(&dgx, x.size() * sizeof(float)));
  BK_CHECK_CUDA(cudaMalloc(&dgw, w.size() * sizeof(float)));
  p.y = dy, p.grad_x = dgx, p.grad_w = dgw;
  p.n = N, p.c = C, p.h = H, p.w_in = W, p.k = C, p.r = R, p.s = S, p.p = H, p.q = W, p.groups = C;
  p.pad_h = p.pad_w = pad;
  p.channels_last = true;
  p.dtype = bk::DType::F32;
  BK_CHECK_CUDA(bk::cuda::depthwise_forward(p, nullptr));
  BK_CHECK_CUDA(bk::cuda::depthwise_backward_data(p, nullptr));
  BK_CHECK_CUDA(bk::cuda::depthwise_backward_weight(p, nullptr));
  std::vector<float> y(x.size()), gx(x.size()), gw(w.size());
  BK_CHECK_CUDA(cudaMemcpy(y.data(), dy, y.size() * 4, cudaMemcpyDeviceToHost));
  BK_CHECK_CUDA(cudaMemcpy(gx.data(), dgx, gx.size() * 4, cudaMemcpyDeviceToHost));
  BK_CHECK_CUDA(cudaMemcpy(gw.data(), dgw, gw.size() * 4, cudaMemcpyDeviceToHost));
  auto at = [&](const std::vector<float>& t, int n, int h, int ww, int c) {
    return (h < 0 || h >= H || ww < 0 || ww >= W) ? 0.0 : double(t[((size_t(n) * H + h) * W + ww) * C + c]);
  };
  double err_y = 0, err_gx = 0, err_gw = 0;
  std::uniform_int_distribution<size_t> pick(0, x.size() - 1);
  for (int t = 0; t < 2000; ++t) {  // stride 1, "same": forward and data gradient are correlations
    const size_t i = pick(rng);
    const int c = int(i % C), ww = int(i / C % W), h = int(i / C / W % H), n = int(i / C / W / H);
    double fy = 0, fgx = 0;
    for (int r = 0; r < R; ++r)
      for (int s = 0; s < S; ++s) {
        fy += at(x, n, h - pad + r, ww - pad + s, c) * w[(c * R + r) * S + s];
        fgx += at(gz, n, h + pad - r, ww + pad - s, c) * w[(c * R + r) * S + s];
      }
    err_y = std::max(err_y, std::fabs(fy - y[i]));
    err_gx = std::max(err_gx, std::fabs(fgx - gx[i]));
  }
  for (int c = 0; c < C; c += 37)
    for (int r = 0; r < R; r += 3) {
      double f = 0;
      for (int n = 0; n < N; ++n)
        for (int h = 0; h < H; ++h)
          for (int ww = 0; ww < W; ++ww) f += at(gz, n, h, ww, c) * at(x, n, h - pad + r, ww - pad + r, c);
      err_gw = std::max(err_gw, std::fabs(f - gw[(c * R + r) * S + r]) / std::max(1.0, std::fabs(f)));
    }
  const float f_ms = median_ms([&] { BK_CHECK_CUDA(bk::cuda::depthwise_forward(p, nullptr)); });
  const float d_ms = median_ms([&] { BK_CHECK_CUDA(bk::cuda::depthwise_backward_data(p, nullptr)); });
  const float w_ms = median_ms([&] { BK_CHECK_CUDA(bk::cuda::depthwise_backward_weight(p, nullptr)); });
  std::printf("depthwise fp32 nhwc 8x128x56x56 7x7: err y=%.3g gx=%.3g gw(rel)=%.3g; fwd %.3f ms, dgrad %.3f ms, "
              "wgrad %.3f ms\n", err_y, err_gx, err_gw, f_ms, d_ms, w_ms);
  return err_y < 1e-3 && err_gx < 1e-3 && err_gw < 1e-4 ? 0 : 1;
}
