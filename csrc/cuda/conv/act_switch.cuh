// The activation chosen at run time, for kernels that apply it once per
// element (epilogues after many MACs, memory-bound BN passes): one kernel
// instantiation per dtype instead of one per activation (10x fewer
// instantiations to build and compile-check); the switch is warp-uniform.
#pragma once
#include "common/activation.h"
#include "device/primitives.cuh"

namespace bk {
namespace cuda {

#define BK_ACT_CASES(M) M(None) M(Relu) M(Relu6) M(LeakyRelu) M(Silu) M(Gelu) M(GeluTanh) M(Hardswish) M(Sigmoid) M(Tanh)

template <typename F = float>
BK_DEVICE F apply_act(Act a, F z, F alpha) {
  switch (a) {
#define BK_CASE(A) \
  case Act::A: return act_forward<Act::A, F>(z, alpha);
    BK_ACT_CASES(BK_CASE)
#undef BK_CASE
  }
  return z;
}

template <typename F = float>
BK_DEVICE F apply_act_derivative(Act a, F z, F alpha) {
  switch (a) {
#define BK_CASE(A) \
  case Act::A: return act_derivative<Act::A, F>(z, alpha);
    BK_ACT_CASES(BK_CASE)
#undef BK_CASE
  }
  return F(1);
}

}  // namespace cuda
}  // namespace bk
