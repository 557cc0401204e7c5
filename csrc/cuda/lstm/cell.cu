// Fused single-step LSTM and GRU cells: one launch computes both GEMMs (x W_ih^T
// and h W_hh^T), adds the biases and applies the gates. Same work split as the
// layer kernels (lstm_step.cuh): 4 units per block, one warp per (unit, batch
// row), lanes over the reduction dimension, fp32 accumulation. The weights are
// read once per batch row from global memory (L2): at decoding batch sizes the
// step is bound by streaming W_ih and W_hh.
#include "cuda/lstm/cell_cuda.h"
#include "cuda/lstm/lstm_step.cuh"

namespace bk {
namespace cuda {
namespace lstm {
namespace {

constexpr int kCellUnits = 4;

template <typename T>
BK_DEVICE float bias(const void* b, int64_t i) {
  return b ? dev::to_float(static_cast<const T*>(b)[i]) : 0.f;
}

template <typename T, int NQ>
BK_GLOBAL void __launch_bounds__(kLstmThreads) cell_kernel(CellParams p) {
  const int64_t B = p.B, I = p.I, H = p.H, u0 = int64_t(blockIdx.x) * kCellUnits;
  const int nU = clamp_count(H, u0, kCellUnits), lane = lane_id();
  const WView<T> wi{static_cast<const T*>(p.w_ih) + u0 * I, H * I, I, 1};
  const WView<T> wh{static_cast<const T*>(p.w_hh) + u0 * H, H * H, H, 1};
  const T* x = static_cast<const T*>(p.x);
  const T* h = static_cast<const T*>(p.h);
  for (int64_t it = warp_id(); it < int64_t(nU) * B; it += num_warps()) {
    const int j = int(it % nU);
    const int64_t b = it / nU, u = u0 + j;
    float ai[NQ], ah[NQ];
    dotq<NQ>(wi, j, x + b * I, I, lane, ai);
    dotq<NQ>(wh, j, h + b * H, H, lane, ah);
    if (lane != 0) continue;
    for (int q = 0; q < NQ; ++q) {
      ai[q] += bias<T>(p.b_ih, q * H + u);
      ah[q] += bias<T>(p.b_hh, q * H + u);
    }
    if constexpr (NQ == 4) {  // LSTM, gate order i, f, g, o
      const float i = sigmoid(ai[0] + ah[0]), f = sigmoid(ai[1] + ah[1]);
      const float g = tanhf(ai[2] + ah[2]), o = sigmoid(ai[3] + ah[3]);
      const float c = f * dev::to_float(static_cast<const T*>(p.c)[b * H + u]) + i * g;
      static_cast<T*>(p.c1)[b * H + u] = dev::from_float<T>(c);
      static_cast<T*>(p.h1)[b * H + u] = dev::from_float<T>(o * tanhf(c));
      if (p.gates) {
        float* gt = p.gates + b * 4 * H + u;
        gt[0] = i;
        gt[H] = f;
        gt[2 * H] = g;
        gt[3 * H] = o;
        p.cs[b * H + u] = c;
      }
    } else {  // GRU, gate order r, z, n; r multiplies W_hn h + b_hn
      const float r = sigmoid(ai[0] + ah[0]), z = sigmoid(ai[1] + ah[1]);
      const float n = tanhf(ai[2] + r * ah[2]);
      const float hp = dev::to_float(h[b * H + u]);
      static_cast<T*>(p.h1)[b * H + u] = dev::from_float<T>(n + z * (hp - n));
      if (p.gates) {
        float* ws = p.gates + b * 4 * H + u;
        ws[0] = r;
        ws[H] = z;
        ws[2 * H] = n;
        ws[3 * H] = ah[2];
      }
    }
  }
}

template <int NQ>
cudaError_t launch(const CellParams& p, cudaStream_t stream) {
  if (p.B == 0 || p.H == 0) return cudaSuccess;
  const dim3 grid{unsigned((p.H + kCellUnits - 1) / kCellUnits)}, block{kLstmThreads};
  switch (p.storage) {
    case DType::F32: return BK_LAUNCH((cell_kernel<float, NQ>), grid, block, 0, stream, p);
    case DType::F16: return BK_LAUNCH((cell_kernel<__half, NQ>), grid, block, 0, stream, p);
    case DType::BF16: return BK_LAUNCH((cell_kernel<__nv_bfloat16, NQ>), grid, block, 0, stream, p);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace
}  // namespace lstm

cudaError_t lstm_cell_forward(const CellParams& p, cudaStream_t stream) { return lstm::launch<4>(p, stream); }
cudaError_t gru_cell_forward(const CellParams& p, cudaStream_t stream) { return lstm::launch<3>(p, stream); }

}  // namespace cuda
}  // namespace bk
