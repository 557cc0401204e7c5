// Batch-1 recurrent products as plain GEMVs on the calling thread:
//   gemv_n: z[N] = W[N,K] h[K]       (forward: h_{t-1} W_hh^T)
//   gemv_t: d[K] = W[N,K]^T g[N]     (backward: dz_t W_hh)
#pragma once
#include <stdint.h>

namespace bk {
namespace cpu {
void gemv_n(const float* W, const float* h, float* z, int64_t N, int64_t K);
void gemv_t(const float* W, const float* g, float* d, int64_t N, int64_t K);
}  // namespace cpu
}  // namespace bk
