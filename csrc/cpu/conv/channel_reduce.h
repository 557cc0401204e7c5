// Per-channel sums of two quantities over a dense NCHW or channels-last
// tensor, with the work split over at::parallel_for.
//
// Inner loops accumulate in the compute type A (float for 16/32-bit data,
// so that they vectorise 16 lanes wide) over short runs -- one H*W plane, or
// 64 rows of channels -- and flush into float64 totals; a run of a few
// thousand float additions loses < 1e-6 relative, the float64 totals nothing.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace bk {
namespace cpu {

// elem(i, c) returns element i's (channel c) two terms as a Pair2<A>: by value,
// not through references, which kept GCC from vectorising the reduction
// (measured 7x slower).
// Writes out0[c] = sum a0, out1[c] = sum a1.
template <typename A>
struct Pair2 {
  A a, b;
};

template <typename A, typename Elem>
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
          A a0 = 0, a1 = 0;
#pragma omp simd reduction(+ : a0, a1)
          for (int64_t j = 0; j < inner; ++j) {
            const Pair2<A> t = elem(base + j, c);
            a0 += t.a;
            a1 += t.b;
          }
          s0 += a0;
          s1 += a1;
        }
        out0[c] = s0;
        out1[c] = s1;
      }
    });
    return;
  }
  // Channels-last: rows of C; each task sums its rows into private vectors
  // (at least ~16K elements per task), merged under a lock.
  constexpr int64_t kFlushRows = 64;
  const int64_t rows = numel / C;
  const int64_t grain = std::max<int64_t>(1, 16384 / C);
  std::mutex merge;
  at::parallel_for(0, rows, grain, [&](int64_t rb, int64_t re) {
    std::vector<double> d0(C, 0.0), d1(C, 0.0);
    std::vector<A> a0(C), a1(C);
    A* p0 = a0.data();
    A* p1 = a1.data();
    for (int64_t r0 = rb; r0 < re; r0 += kFlushRows) {
      std::fill(a0.begin(), a0.end(), A(0));
      std::fill(a1.begin(), a1.end(), A(0));
      const int64_t r1 = std::min(re, r0 + kFlushRows);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t base = r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const Pair2<A> t = elem(base + c, c);
          p0[c] += t.a;
          p1[c] += t.b;
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        d0[c] += p0[c];
        d1[c] += p1[c];
      }
    }
    std::lock_guard<std::mutex> lock(merge);
    for (int64_t c = 0; c < C; ++c) {
      out0[c] += d0[c];
      out1[c] += d1[c];
    }
  });
}

}  // namespace cpu
}  // namespace bk
