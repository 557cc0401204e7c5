// CPU 2-D max pooling over NCHW planes (max_pool2d.h), any float dtype. torch's own NCHW CPU
// kernel walks each output's window element by element (64 x 32 x 8 x 8,
// 2 x 2: 370 us on the 2-core CI VM, ten times its channels_last kernel). Here
// each output row is built by whole-row passes: for every (kh, kw) of the
// window, one straight loop over the row's outputs, so the compiler
// vectorises the max (and the index) across outputs. Per output the updates
// still come in torch's row-major window order with its rule (`v > max or v
// is NaN`), so values, signed zeros, NaNs and tie-breaking indices equal
// torch's. Stamped out for AVX-512, AVX2 and the baseline ISA (isa.h).
#include "cpu/pool/max_pool2d.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "cpu/isa.h"

namespace bk {
namespace cpu {
namespace {

constexpr int64_t kGrainWork = 16384;  // window elements per parallel task

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per output column: the first valid input column of its window, or -1 if
// none (only with dilation: a window can skip over a narrow input).
std::vector<int64_t> first_columns(const MaxPool2dParams& p) {
  std::vector<int64_t> first(p.OW);
  for (int64_t ow = 0; ow < p.OW; ++ow) {
    int64_t iw = ow * p.sW - p.pW;
    if (iw < 0) iw += ceil_div(-iw, p.dW) * p.dW;
    first[ow] = iw < p.W && iw <= ow * p.sW - p.pW + (p.kW - 1) * p.dW ? iw : -1;
  }
  return first;
}

template <typename T, bool Index>
__attribute__((always_inline)) inline void pool_rows(const MaxPool2dParams& p, const int64_t* first_col,
                                                     int64_t begin, int64_t end) {
  const int64_t H = p.H, W = p.W, OH = p.OH, OW = p.OW;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t plane = row / OH, oh = row % OH;
    const T* x = static_cast<const T*>(p.x) + plane * H * W;
    T* y = static_cast<T*>(p.y) + row * OW;
    int32_t* idx = Index ? p.index + row * OW : nullptr;
    const int64_t ih0 = oh * p.sH - p.pH;
    const int64_t kh_lo = ih0 < 0 ? ceil_div(-ih0, p.dH) : 0;
    const int64_t kh_hi = std::min(p.kH, ceil_div(H - ih0, p.dH));
    for (int64_t ow = 0; ow < OW; ++ow) y[ow] = -std::numeric_limits<T>::infinity();
    if constexpr (Index) {  // torch's initial index: the window's first valid element (-1: an empty window)
      for (int64_t ow = 0; ow < OW; ++ow)
        idx[ow] = kh_lo < kh_hi && first_col[ow] >= 0 ? int32_t((ih0 + kh_lo * p.dH) * W + first_col[ow]) : -1;
    }
    for (int64_t kh = kh_lo; kh < kh_hi; ++kh) {
      const int64_t ih = ih0 + kh * p.dH;
      const T* r = x + ih * W;
      for (int64_t kw = 0; kw < p.kW; ++kw) {
        const int64_t c = kw * p.dW - p.pW;  // input column of output 0's element kw
        const int64_t lo = c < 0 ? ceil_div(-c, p.sW) : 0;
        const int64_t hi = std::min(OW, ceil_div(W - c, p.sW));
        const int64_t sW = p.sW;
        if constexpr (Index) {
          const int32_t base = int32_t(ih * W + c);
          for (int64_t ow = lo; ow < hi; ++ow) {
            const T v = r[ow * sW + c];
            const bool take = v > y[ow] || v != v;
            y[ow] = take ? v : y[ow];
            idx[ow] = take ? base + int32_t(ow * sW) : idx[ow];
          }
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) {
            const T v = r[ow * sW + c];
            y[ow] = v > y[ow] || v != v ? v : y[ow];
          }
        }
      }
    }
  }
}

// The common 2 x 2, stride 2 window with every window inside the input: one
// loop over a row's outputs reads its four elements (the general loop above
// makes four passes, and at the small widths of a classifier's late layers,
// 4 outputs a row, its per-pass overhead dominated).
template <typename T, bool Index>
__attribute__((always_inline)) inline void pool_rows_2x2(const MaxPool2dParams& p, int64_t begin, int64_t end) {
  const int64_t H = p.H, W = p.W, OH = p.OH, OW = p.OW;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t plane = row / OH, oh = row % OH;
    const T* r0 = static_cast<const T*>(p.x) + (plane * H + 2 * oh) * W;
    const T* r1 = r0 + W;
    T* y = static_cast<T*>(p.y) + row * OW;
    int32_t* idx = Index ? p.index + row * OW : nullptr;
    const int32_t base = int32_t(2 * oh * W);
    for (int64_t ow = 0; ow < OW; ++ow) {  // torch's order: r0[2ow], r0[2ow + 1], r1[2ow], r1[2ow + 1]
      T m = r0[2 * ow];
      int32_t at = 0;
      const T b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
      if (b > m || b != b) m = b, at = 1;
      if (c > m || c != c) m = c, at = int32_t(W);
      if (d > m || d != d) m = d, at = int32_t(W + 1);
      y[ow] = m;
      if constexpr (Index) idx[ow] = base + int32_t(2 * ow) + at;
    }
  }
}

inline bool is_2x2(const MaxPool2dParams& p) {
  return p.kH == 2 && p.kW == 2 && p.sH == 2 && p.sW == 2 && p.pH == 0 && p.pW == 0 && p.dH == 1 && p.dW == 1 &&
         2 * p.OH <= p.H && 2 * p.OW <= p.W;
}

template <typename T, bool I>
__attribute__((always_inline)) inline void any_rows(const MaxPool2dParams& p, const int64_t* f, int64_t b,
                                                    int64_t e) {
  if (is_2x2(p)) return pool_rows_2x2<T, I>(p, b, e);
  pool_rows<T, I>(p, f, b, e);
}

template <typename T, bool I>
void rows_base(const MaxPool2dParams& p, const int64_t* f, int64_t b, int64_t e) { any_rows<T, I>(p, f, b, e); }
#if BK_HAS_ISA_CLONES
template <typename T, bool I>
BK_TARGET_AVX2 void rows_avx2(const MaxPool2dParams& p, const int64_t* f, int64_t b, int64_t e) {
  any_rows<T, I>(p, f, b, e);
}
template <typename T, bool I>
BK_TARGET_AVX512 void rows_avx512(const MaxPool2dParams& p, const int64_t* f, int64_t b, int64_t e) {
  any_rows<T, I>(p, f, b, e);
}
#endif

template <typename T, bool I>
void forward(const MaxPool2dParams& p) {
  auto fn = &rows_base<T, I>;
#if BK_HAS_ISA_CLONES
  switch (best_isa()) {
    case Isa::Avx512: fn = &rows_avx512<T, I>; break;
    case Isa::Avx2: fn = &rows_avx2<T, I>; break;
    case Isa::Base: break;
  }
#endif
  const std::vector<int64_t> first = is_2x2(p) ? std::vector<int64_t>() : first_columns(p);  // general loop only
  const int64_t row_work = std::max<int64_t>(1, p.OW * p.kH * p.kW);
  at::parallel_for(0, p.planes * p.OH, ceil_div(kGrainWork, row_work),
                   [&](int64_t begin, int64_t end) { fn(p, first.data(), begin, end); });
}

// Each plane's outputs in order, as torch's backward adds them (overlapping
// windows sum in the same order: the same bits).
template <typename T>
void backward(const MaxPool2dParams& p) {
  const int64_t in = p.H * p.W, out = p.OH * p.OW;
  at::parallel_for(0, p.planes, ceil_div(kGrainWork, std::max<int64_t>(1, in + out)), [&](int64_t b, int64_t e) {
    for (int64_t plane = b; plane < e; ++plane) {
      T* gx = static_cast<T*>(p.grad_x) + plane * in;
      const T* gy = static_cast<const T*>(p.grad_y) + plane * out;
      const int32_t* idx = p.index + plane * out;
      std::fill(gx, gx + in, T(0));
      for (int64_t o = 0; o < out; ++o)
        if (idx[o] >= 0) gx[idx[o]] += gy[o];
    }
  });
}

}  // namespace

template <typename T>
void forward_any(const MaxPool2dParams& p) {
  return p.index ? forward<T, true>(p) : forward<T, false>(p);
}

void max_pool2d_forward(const MaxPool2dParams& p) {
  switch (p.dtype) {
    case DType::F32: return forward_any<float>(p);
    case DType::F64: return forward_any<double>(p);
    case DType::F16: return forward_any<c10::Half>(p);  // compared as float: the max is exact in any dtype
    case DType::BF16: return forward_any<c10::BFloat16>(p);
  }
}

void max_pool2d_backward(const MaxPool2dParams& p) {
  switch (p.dtype) {
    case DType::F32: return backward<float>(p);
    case DType::F64: return backward<double>(p);
    case DType::F16: return backward<c10::Half>(p);
    case DType::BF16: return backward<c10::BFloat16>(p);
  }
}

}  // namespace cpu
}  // namespace bk
