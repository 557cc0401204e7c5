// Fused epilogue y = act(x + bias[c] + residual) (and the pre-activation z
// when the caller's backward needs it) and its backward grad_z = grad_y *
// act'(z). Memory bound: one read of each input, one write per output;
// grid-stride loop, math in fp32 (fp64 stays fp64). Each element is read
// before it is written by the same thread, so y or z may alias x (the conv
// path writes its output in place, csrc/torch/conv_cudnn_glue.h).
#include "cuda/epilogue/bias_act.h"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace {

template <typename T> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

template <typename T, typename F>
BK_DEVICE F load(const T* p, int64_t i) {
  if constexpr (sizeof(T) == 2) return dev::to_float(p[i]);
  else return F(p[i]);
}
template <typename T, typename F>
BK_DEVICE void store(T* p, int64_t i, F v) {
  if constexpr (sizeof(T) == 2) p[i] = dev::from_float<T>(float(v));
  else p[i] = T(v);
}

template <typename T, Act A, bool Backward>
BK_GLOBAL void bias_act_kernel(BiasActParams p) {
  using F = typename Compute<T>::type;
  const T* x = static_cast<const T*>(p.x);
  const T* bias = static_cast<const T*>(p.bias);
  const T* res = static_cast<const T*>(p.residual);
  const F alpha = F(p.alpha);
  for (int64_t i = dev::global_thread_index(); i < p.numel; i += dev::global_thread_count()) {
    F z = load<T, F>(x, i);
    if (bias) z += load<T, F>(bias, (i / p.inner) % p.channels);
    if (res) z += load<T, F>(res, i);
    if constexpr (Backward) {
      F g = load<T, F>(static_cast<const T*>(p.grad_y), i);
      store<T, F>(static_cast<T*>(p.grad_z), i, g * act_derivative<A, F>(z, alpha));
    } else {
      if (p.z) store<T, F>(static_cast<T*>(p.z), i, z);
      store<T, F>(static_cast<T*>(p.y), i, act_forward<A, F>(z, alpha));
    }
  }
}

template <typename T, bool Backward>
cudaError_t launch_typed(const BiasActParams& p, cudaStream_t stream) {
  if (p.numel == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  // 4 elements per thread before the grid-stride loop wraps; capped so the
  // grid stays a few waves on any GPU.
  int64_t blocks = (p.numel + kThreads * 4 - 1) / (kThreads * 4);
  if (blocks > 65535) blocks = 65535;
  const dim3 grid{static_cast<unsigned>(blocks)}, block{kThreads};
  switch (p.act) {
#define BK_CASE(a) \
  case Act::a: return BK_LAUNCH((bias_act_kernel<T, Act::a, Backward>), grid, block, 0, stream, p);
    BK_CASE(None) BK_CASE(Relu) BK_CASE(Relu6) BK_CASE(LeakyRelu) BK_CASE(Silu)
    BK_CASE(Gelu) BK_CASE(GeluTanh) BK_CASE(Hardswish) BK_CASE(Sigmoid) BK_CASE(Tanh)
#undef BK_CASE
  }
  return cudaErrorInvalidValue;
}

template <bool Backward>
cudaError_t dispatch(const BiasActParams& p, cudaStream_t stream) {
  switch (p.dtype) {
    case DType::F32: return launch_typed<float, Backward>(p, stream);
    case DType::F16: return launch_typed<__half, Backward>(p, stream);
    case DType::BF16: return launch_typed<__nv_bfloat16, Backward>(p, stream);
    case DType::F64: return launch_typed<double, Backward>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t bias_act_forward(const BiasActParams& p, cudaStream_t stream) {
  return dispatch<false>(p, stream);
}
cudaError_t bias_act_backward(const BiasActParams& p, cudaStream_t stream) {
  return dispatch<true>(p, stream);
}

}  // namespace cuda
}  // namespace bk
