// Harness: BN statistics + fused BN-apply + relu (fp32, NHWC 32x256x56x56)
// against host loops; prints the errors and the achieved bandwidth.
#include <cmath>
#include <random>

#include "cuda/conv/bn_act.h"
#include "harness/harness.cuh"

int main() {
  const int64_t C = 256, rows = 32LL * 56 * 56, numel = rows * C;
  std::mt19937 rng(0);
  std::normal_distribution<float> dist;
  std::vector<float> z(numel), scale(C, 0.5f), shift(C, 0.1f);
  for (auto& v : z) v = dist(rng) * 2 + 3;
  bk::BnActParams p;
  p.z = to_device(z), p.scale = to_device(scale), p.shift = to_device(shift);
  p.numel = numel, p.channels = C, p.inner = 1;
  p.act = bk::Act::Relu;
  double *mean = nullptr, *var = nullptr, *ws = nullptr;
  float* y = nullptr;
  BK_CHECK_CUDA(cudaMalloc(&mean, C * 8));
  BK_CHECK_CUDA(cudaMalloc(&var, C * 8));
  BK_CHECK_CUDA(cudaMalloc(&ws, bk::cuda::bn_workspace_size(p) * 8));
  BK_CHECK_CUDA(cudaMalloc(&y, numel * 4));
  p.out0 = mean, p.out1 = var, p.workspace = ws, p.y = y;
  BK_CHECK_CUDA(bk::cuda::bn_stats(p, nullptr));
  BK_CHECK_CUDA(bk::cuda::bn_act_forward(p, nullptr));
  std::vector<double> m(C), v(C);
  std::vector<float> yh(numel);
  BK_CHECK_CUDA(cudaMemcpy(m.data(), mean, C * 8, cudaMemcpyDeviceToHost));
  BK_CHECK_CUDA(cudaMemcpy(v.data(), var, C * 8, cudaMemcpyDeviceToHost));
  BK_CHECK_CUDA(cudaMemcpy(yh.data(), y, numel * 4, cudaMemcpyDeviceToHost));
  double err_stats = 0, err_y = 0;
  for (int64_t c = 0; c < C; c += 17) {
    double s = 0, s2 = 0;
    for (int64_t r = 0; r < rows; ++r) s += z[r * C + c];
    const double mu = s / rows;
    for (int64_t r = 0; r < rows; ++r) s2 += (z[r * C + c] - mu) * (z[r * C + c] - mu);
    err_stats = std::max({err_stats, std::fabs(mu - m[c]), std::fabs(s2 / rows - v[c])});
  }
  for (int64_t i = 0; i < numel; i += 997)
    err_y = std::max(err_y, double(std::fabs(std::max(z[i] * 0.5f + 0.1f, 0.f) - yh[i])));
  const float s_ms = median_ms([&] { BK_CHECK_CUDA(bk::cuda::bn_stats(p, nullptr)); });
  const float f_ms = median_ms([&] { BK_CHECK_CUDA(bk::cuda::bn_act_forward(p, nullptr)); });
  std::printf("bn_act fp32 nhwc %lldx%lld: err stats=%.3g y=%.3g; stats %.3f ms (%.0f GB/s), apply %.3f ms "
              "(%.0f GB/s)\n", (long long)rows, (long long)C, err_stats, err_y, s_ms, numel * 4 / (s_ms * 1e6), f_ms,
              numel * 8 / (f_ms * 1e6));
  return err_stats < 1e-6 && err_y < 1e-5 ? 0 : 1;
}
