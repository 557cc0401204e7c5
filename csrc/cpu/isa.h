// Runtime choice among ISA-specific clones of a CPU kernel. A kernel body is
// an always_inline template; BK_ISA_CLONES stamps it out as functions
// compiled for AVX-512, AVX2+FMA and the baseline, and best_isa() picks one
// at run time, so one binary runs on any x86-64 and vectorises where it can.
// BIGKERNELS_CPU_ISA=avx2|base caps the choice (read once, at first use): the
// tests run the lower clones on an AVX-512 machine with it.
#pragma once
#include <stdlib.h>
#include <string.h>

namespace bk {
namespace cpu {

enum class Isa { Base, Avx2, Avx512 };

inline Isa best_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const Isa isa = [] {
    __builtin_cpu_init();
    const char* cap = getenv("BIGKERNELS_CPU_ISA");
    const bool base_only = cap && strcmp(cap, "base") == 0;
    const bool avx2_max = base_only || (cap && strcmp(cap, "avx2") == 0);
    if (!avx2_max && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      return Isa::Avx512;
    if (!base_only && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
    return Isa::Base;
  }();
  return isa;
#else
  return Isa::Base;
#endif
}

}  // namespace cpu
}  // namespace bk

#if defined(__x86_64__) && defined(__GNUC__)
#define BK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define BK_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define BK_HAS_ISA_CLONES 1
#else
#define BK_TARGET_AVX2
#define BK_TARGET_AVX512
#define BK_HAS_ISA_CLONES 0
#endif

namespace bk {
namespace cpu {

// on_best_isa<K>(args...) runs K::run(args...) compiled for the best ISA here.
// K::run is an always_inline static function (a kernel's per-task body);
// these wrappers are its clones. Call it per parallel task, from outside the
// body: a lambda inside a target("avx512f") function is compiled for the
// baseline (GCC does not give lambdas their enclosing function's target).
template <class K, class... A>
void isa_base(A... a) {
  K::run(a...);
}
#if BK_HAS_ISA_CLONES
template <class K, class... A>
BK_TARGET_AVX2 void isa_avx2(A... a) {
  K::run(a...);
}
template <class K, class... A>
BK_TARGET_AVX512 void isa_avx512(A... a) {
  K::run(a...);
}
#endif

template <class K, class... A>
inline void on_best_isa(A... a) {
#if BK_HAS_ISA_CLONES
  switch (best_isa()) {
    case Isa::Avx512: return isa_avx512<K>(a...);
    case Isa::Avx2: return isa_avx2<K>(a...);
    case Isa::Base: break;
  }
#endif
  isa_base<K>(a...);
}

}  // namespace cpu
}  // namespace bk
