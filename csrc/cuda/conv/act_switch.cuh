// The activation chosen at run time, for epilogues that apply it once per
// output element after many MACs: one kernel instantiation per dtype instead
// of one per activation (10x fewer instantiations to build and compile-check).
#pragma once
#include "common/activation.h"
#include "device/primitives.cuh"

namespace bk {
namespace cuda {

BK_DEVICE float apply_act(Act a, float z, float alpha) {
  switch (a) {
#define BK_CASE(A) \
  case Act::A: return act_forward<Act::A, float>(z, alpha);
    BK_CASE(None) BK_CASE(Relu) BK_CASE(Relu6) BK_CASE(LeakyRelu) BK_CASE(Silu)
    BK_CASE(Gelu) BK_CASE(GeluTanh) BK_CASE(Hardswish) BK_CASE(Sigmoid) BK_CASE(Tanh)
#undef BK_CASE
  }
  return z;
}

}  // namespace cuda
}  // namespace bk
