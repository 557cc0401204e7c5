// Shared by the BN kernels: compute type and loads, the channel of a flat
// index, and the two-level reduction's split count.
#pragma once
#include <stdint.h>

#include "common/conv_bn_params.h"
#include "device/primitives.cuh"

namespace bk {
namespace cuda {
namespace bn {

template <typename T> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

template <typename T, typename F>
BK_DEVICE F load(const T* p, int64_t i) {
  if constexpr (sizeof(T) == 2) return F(dev::to_float(p[i]));
  else return F(p[i]);
}
template <typename T, typename F>
BK_DEVICE void store(T* p, int64_t i, F v) {
  if constexpr (sizeof(T) == 2) p[i] = dev::from_float<T>(float(v));
  else p[i] = T(v);
}

constexpr int kThreads = 256;

// Rows (elements per channel) are split so that about 4 blocks per SM of a
// 132-SM GPU are busy; each split is reduced by one block, in a fixed order.
inline int splits_for(const BnActParams& p) {
  const int64_t rows = p.channels ? p.numel / p.channels : 0;
  const int64_t channel_blocks = p.inner == 1 ? (p.channels + 31) / 32 : p.channels;
  int64_t want = (528 + channel_blocks - 1) / channel_blocks;
  const int64_t most_useful = (rows + 1023) / 1024;  // >= 1024 elements per split
  if (want > most_useful) want = most_useful;
  if (want > 256) want = 256;
  return want < 1 ? 1 : int(want);
}

}  // namespace bn

// bn_reduce.cu: the two-level per-channel reduction (statistics, or the
// backward's sums and k0/k1 into p.workspace[0 .. 2C)).
template <bool Backward>
cudaError_t bn_reduce_dispatch(const BnActParams& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace bk
