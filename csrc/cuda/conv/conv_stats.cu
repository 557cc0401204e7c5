// BN statistics from the implicit-GEMM forward's partials (conv_fprop.h):
// one thread per output channel merges the per-tile (count, mean, M2) in
// tile order with Chan et al.'s pairwise update, in double: exact counts,
// no cancellation, no atomics (the same bits on every run and schedule).
#include "cuda/conv/conv_fprop.h"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace {

constexpr int kThreads = 128;

BK_GLOBAL void __launch_bounds__(kThreads) conv_stats_finish_kernel(ConvParams p, const float* partial, double* mean,
                                                                    double* var) {
  const int k = blockIdx.x * kThreads + threadIdx.x;
  if (k >= p.k) return;
  const int64_t M = int64_t(p.n) * p.p * p.q, tiles = (M + kConvFpropTileM - 1) / kConvFpropTileM;
  double n = 0, mu = 0, m2 = 0;
  for (int64_t t = 0; t < tiles; ++t) {
    const double nb = double(M - t * kConvFpropTileM < kConvFpropTileM ? M - t * kConvFpropTileM : kConvFpropTileM);
    const double mb = partial[t * 2 * p.k + k], m2b = partial[(t * 2 + 1) * p.k + k];
    const double nab = n + nb, delta = mb - mu;
    mu += delta * (nb / nab);
    m2 += m2b + delta * delta * (n * nb / nab);
    n = nab;
  }
  mean[k] = mu;
  var[k] = m2 / n;  // biased, as batch norm normalises with
}

}  // namespace

int64_t conv2d_stats_workspace(const ConvParams& p) {
  const int64_t M = int64_t(p.n) * p.p * p.q;
  return (M + kConvFpropTileM - 1) / kConvFpropTileM * 2 * p.k;
}

cudaError_t conv2d_stats_finish(const ConvParams& p, const float* partial, double* mean, double* var,
                                cudaStream_t stream) {
  if (!partial || !mean || !var || p.k <= 0) return cudaErrorInvalidValue;
  return BK_LAUNCH(conv_stats_finish_kernel, dim3(unsigned((p.k + kThreads - 1) / kThreads)), dim3(kThreads), 0,
                   stream, p, partial, mean, var);
}

}  // namespace cuda
}  // namespace bk
