// NCHW / NHWC index arithmetic shared by the depthwise kernels: a flat
// memory index within an image decodes to (c, h, w) in the tensor's own order, so a warp's
// consecutive threads touch consecutive addresses in either layout.
#pragma once
#include <stdint.h>

#include "device/primitives.cuh"

namespace bk {
namespace cuda {

struct Coord {
  int c, h, w;
};

// Index within one image (32-bit: depthwise_supported bounds an image's
// elements; a 64-bit division would be a called subroutine that spills).
template <bool NHWC>
BK_DEVICE Coord decode(int i, int C, int H, int W) {
  Coord x;
  if constexpr (NHWC) {
    x.c = i % C;
    i /= C;
    x.w = i % W;
    x.h = i / W;
  } else {
    x.w = i % W;
    i /= W;
    x.h = i % H;
    x.c = i / H;
  }
  return x;
}

template <bool NHWC>
BK_DEVICE int64_t offset(int n, int c, int h, int w, int C, int H, int W) {
  if constexpr (NHWC) return ((int64_t(n) * H + h) * W + w) * C + c;
  else return ((int64_t(n) * C + c) * H + h) * W + w;
}

template <typename T> BK_DEVICE float load(const T* p, int64_t i) { return dev::to_float(p[i]); }

}  // namespace cuda
}  // namespace bk
