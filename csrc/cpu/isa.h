// Runtime choice among ISA-specific clones of a CPU kernel. A kernel body is
// an always_inline template; BK_ISA_CLONES stamps it out as functions
// compiled for AVX-512, AVX2+FMA and the baseline, and best_isa() picks one
// at run time, so one binary runs on any x86-64 and vectorises where it can.
#pragma once

namespace bk {
namespace cpu {

enum class Isa { Base, Avx2, Avx512 };

inline Isa best_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
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
