// Shared bits of the per-kernel GPU harnesses: error checks, device buffers,
// a CUDA-event timer (median of repeats after warm-up).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define BK_CHECK_CUDA(expr)                                                              \
  do {                                                                                   \
    cudaError_t err_ = (expr);                                                           \
    if (err_ != cudaSuccess) {                                                           \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,                 \
                   cudaGetErrorString(err_));                                            \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

template <typename T>
T* to_device(const std::vector<T>& host) {
  T* ptr = nullptr;
  BK_CHECK_CUDA(cudaMalloc(&ptr, host.size() * sizeof(T)));
  BK_CHECK_CUDA(cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return ptr;
}

template <typename F>
float median_ms(F&& launch, int warmup = 10, int reps = 50) {
  for (int i = 0; i < warmup; ++i) launch();
  cudaEvent_t start, stop;
  BK_CHECK_CUDA(cudaEventCreate(&start));
  BK_CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<float> times;
  for (int i = 0; i < reps; ++i) {
    BK_CHECK_CUDA(cudaEventRecord(start));
    launch();
    BK_CHECK_CUDA(cudaEventRecord(stop));
    BK_CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    BK_CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}
