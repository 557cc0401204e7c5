// Per-channel sums of two quantities over a dense NCHW or channels-last
// tensor: the bodies of one parallel task each, always_inline so that they
// compile for the ISA of the clone that calls them (cpu/isa.h).
//
// Inner loops accumulate in the compute type A (float for 16/32-bit data,
// so that they vectorise 16 lanes wide) over short runs and flush into
// float64 totals; a run of a few hundred float additions per lane loses
// < 1e-6 relative, the float64 totals nothing.
#pragma once
#include <stdint.h>

#include <algorithm>

#define BK_REDUCE_INLINE __attribute__((always_inline)) inline

namespace bk {
namespace cpu {

// Two terms of one element, returned by value (not through references,
// which kept GCC from vectorising the reduction: measured 7x slower).
template <typename A>
struct Pair2 {
  A a, b;
};

// NCHW, channels [cb, ce): out0[c] = sum a, out1[c] = sum b over the channel's
// N planes of `inner` contiguous elements. make_elem(c) returns channel c's
// element function elem(i) -> Pair2<A>, its per-channel constants captured as
// scalars (a function of (i, c) loading them per element stayed scalar).
// 16 independent lanes kept across planes, not an `omp simd reduction` per
// plane: GCC compiled that to a scalar loop with a branch (disassembled), and
// a per-plane horizontal sum costs as much as an 8 x 8 plane's arithmetic.
template <typename A, typename MakeElem>
BK_REDUCE_INLINE void reduce_planes(int64_t N, int64_t C, int64_t inner, int64_t cb, int64_t ce, double* out0,
                                    double* out1, const MakeElem& make_elem) {
  constexpr int64_t L = 16;
  const int64_t planes_per_flush = std::max<int64_t>(1, 4096 / std::max<int64_t>(inner, 1));
  for (int64_t c = cb; c < ce; ++c) {
    const auto elem = make_elem(c);
    double s0 = 0, s1 = 0;
    for (int64_t n0 = 0; n0 < N; n0 += planes_per_flush) {
      A l0[L] = {}, l1[L] = {};
      A a0 = 0, a1 = 0;  // the planes' tails (inner % 16), apart: one access pattern per array
      for (int64_t n = n0; n < std::min(N, n0 + planes_per_flush); ++n) {
        const int64_t base = (n * C + c) * inner;
        int64_t j = 0;
        for (; j + L <= inner; j += L) {
#pragma omp simd
          for (int64_t l = 0; l < L; ++l) {
            const Pair2<A> t = elem(base + j + l);
            l0[l] += t.a;
            l1[l] += t.b;
          }
        }
        for (; j < inner; ++j) {
          const Pair2<A> t = elem(base + j);
          a0 += t.a;
          a1 += t.b;
        }
      }
      for (int64_t l = 0; l < L; ++l) {
        a0 += l0[l];
        a1 += l1[l];
      }
      s0 += a0;
      s1 += a1;
    }
    out0[c] = s0;
    out1[c] = s1;
  }
}

// Channels-last, rows [rb, re) of C channels: d0[c] += sum a, d1[c] += sum b
// (the caller's per-task totals, merged by the caller). elem(i, c) -> Pair2<A>;
// p0/p1: C floats of scratch. Float partials flushed every 64 rows.
template <typename A, typename Elem>
BK_REDUCE_INLINE void reduce_rows(int64_t C, int64_t rb, int64_t re, double* d0, double* d1, A* __restrict__ p0,
                                  A* __restrict__ p1, const Elem& elem) {
  constexpr int64_t kFlushRows = 64;
  for (int64_t r0 = rb; r0 < re; r0 += kFlushRows) {
    std::fill(p0, p0 + C, A(0));
    std::fill(p1, p1 + C, A(0));
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
}

}  // namespace cpu
}  // namespace bk
