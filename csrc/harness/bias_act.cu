// Harness: fused bias + residual + activation, fp32, against a host loop of
// the same formula; prints the max error and the achieved bandwidth.
#include <cmath>
#include <random>

#include "cuda/epilogue/bias_act.h"
#include "harness/harness.cuh"

int main() {
  const int64_t n = 32, c = 256, hw = 56 * 56, numel = n * c * hw;
  std::mt19937 rng(0);
  std::normal_distribution<float> dist;
  std::vector<float> x(numel), res(numel), bias(c), y(numel);
  for (auto& v : x) v = dist(rng);
  for (auto& v : res) v = dist(rng);
  for (auto& v : bias) v = dist(rng);

  bk::BiasActParams p;
  p.x = to_device(x);
  p.residual = to_device(res);
  p.bias = to_device(bias);
  float* dy = nullptr;
  BK_CHECK_CUDA(cudaMalloc(&dy, numel * sizeof(float)));
  p.y = dy;
  p.numel = numel;
  p.channels = c;
  p.inner = hw;
  p.act = bk::Act::Silu;
  BK_CHECK_CUDA(bk::cuda::bias_act_forward(p, nullptr));
  BK_CHECK_CUDA(cudaMemcpy(y.data(), dy, numel * sizeof(float), cudaMemcpyDeviceToHost));

  double max_err = 0;
  for (int64_t i = 0; i < numel; ++i) {
    float z = x[i] + bias[(i / hw) % c] + res[i];
    float want = bk::act_forward<bk::Act::Silu, float>(z, 0.f);
    max_err = std::max(max_err, double(std::fabs(want - y[i])));
  }
  float ms = median_ms([&] { BK_CHECK_CUDA(bk::cuda::bias_act_forward(p, nullptr)); });
  double gbps = 3.0 * numel * sizeof(float) / (ms * 1e6);
  std::printf("bias_act fp32 silu numel=%lld max_err=%.3g time=%.3f ms %.1f GB/s\n", (long long)numel, max_err, ms,
              gbps);
  return max_err < 1e-5 ? 0 : 1;
}
