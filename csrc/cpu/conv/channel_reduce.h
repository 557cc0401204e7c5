// Per-channel sums of two quantities over a dense NCHW or channels-last
// tensor, in float64, with the work split over at::parallel_for.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace bk {
namespace cpu {

// elem(i, c, a0, a1) adds element i's (channel c) terms to a0 and a1.
// Writes out0[c] = sum a0, out1[c] = sum a1.
template <typename Elem>
void channel_reduce2(int64_t numel, int64_t C, int64_t inner, double* out0, double* out1, const Elem& elem) {
  std::fill(out0, out0 + C, 0.0);
  std::fill(out1, out1 + C, 0.0);
  if (numel == 0) return;
  if (inner > 1) {
    // NCHW: one channel per task; its N planes of `inner` contiguous elements.
    const int64_t N = numel / (C * inner);
    at::parallel_for(0, C, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        double s0 = 0, s1 = 0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t base = (n * C + c) * inner;
#pragma omp simd reduction(+ : s0, s1)
          for (int64_t j = 0; j < inner; ++j) elem(base + j, c, s0, s1);
        }
        out0[c] = s0;
        out1[c] = s1;
      }
    });
    return;
  }
  // Channels-last: rows of C; each task sums its rows into private vectors
  // (rows of ~16K elements per task at least), merged under a lock.
  const int64_t rows = numel / C;
  const int64_t grain = std::max<int64_t>(1, 16384 / C);
  std::mutex merge;
  at::parallel_for(0, rows, grain, [&](int64_t rb, int64_t re) {
    std::vector<double> a0(C, 0.0), a1(C, 0.0);
    double* p0 = a0.data();
    double* p1 = a1.data();
    for (int64_t r = rb; r < re; ++r) {
      const int64_t base = r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) elem(base + c, c, p0[c], p1[c]);
    }
    std::lock_guard<std::mutex> lock(merge);
    for (int64_t c = 0; c < C; ++c) {
      out0[c] += a0[c];
      out1[c] += a1[c];
    }
  });
}

}  // namespace cpu
}  // namespace bk
