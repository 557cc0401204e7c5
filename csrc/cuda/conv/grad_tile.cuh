// The activation backward fused into the implicit-GEMM gradient kernels.
// They load dL/dy and the saved tensor (the pre-activation, or y where act'
// reads off y) side by side with cp.async (same offsets: both are NHWC
// [N, P, Q, K]); each thread turns the 16-byte chunks it copied itself into
// dL/dz = dL/dy * act'(saved) right after its cp.async wait (a thread's own
// copies are visible to it then), before the barrier that publishes the
// stage to ldmatrix: no extra barrier, and dL/dz never goes through global
// memory. Rounded to T as the two-pass path (bias_act_backward) stores it,
// so the tensor cores see the same operand bits either way.
#pragma once
#include <stdint.h>
#include <string.h>

#include "cuda/conv/act_switch.cuh"

namespace bk {
namespace cuda {
namespace tile {

template <typename T>
BK_DEVICE float bits_to_float(uint16_t b) {
  T v;
  memcpy(&v, &b, 2);
  return dev::to_float(v);
}
template <typename T>
BK_DEVICE uint16_t float_to_bits(float f) {
  const T v = dev::from_float<T>(f);
  uint16_t b;
  memcpy(&b, &v, 2);
  return b;
}

// 8 elements (one cp.async chunk): g = g * act'(saved), in place.
template <typename T>
BK_DEVICE void act_backward_chunk(uint16_t* g, const uint16_t* saved, Act act, float alpha) {
  for (int e = 0; e < 8; ++e)
    g[e] = float_to_bits<T>(bits_to_float<T>(g[e]) * apply_act_derivative(act, bits_to_float<T>(saved[e]), alpha));
}

}  // namespace tile
}  // namespace cuda
}  // namespace bk
