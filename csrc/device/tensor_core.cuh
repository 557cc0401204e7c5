// Tensor-core primitives (sm_80+): ldmatrix x1/x2/x4 (.trans) and mma.sync
// m16n8k16 f16/bf16 -> f32, m16n8k8 tf32 -> f32. Real PTX under nvcc, the
// SIMT emulator's implementation under BK_SIM. Fragment layouts: the PTX ISA
// figures, pinned against CuTe's traits in tests/sim/csrc/frag_cases.cpp.
// Included by device/primitives.cuh (after device/async_copy.cuh).
#pragma once
#include <stdint.h>

namespace bk {
namespace dev {

// ldmatrix: lane 8*j + r passes the address of row r of 8x8 b16 matrix j.
BK_DEVICE void ldmatrix_x1(uint32_t& r0, const void* row) {
#if defined(__CUDA_ARCH__)
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r0) : "r"(smem_addr(row)));
#elif defined(BK_SIM)
  ::bk::sim::ldmatrix(1, false, row, &r0);
#endif
}
BK_DEVICE void ldmatrix_x2(uint32_t& r0, uint32_t& r1, const void* row) {
#if defined(__CUDA_ARCH__)
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(smem_addr(row)));
#elif defined(BK_SIM)
  uint32_t r[2];
  ::bk::sim::ldmatrix(2, false, row, r);
  r0 = r[0], r1 = r[1];
#endif
}
BK_DEVICE void ldmatrix_x4(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* row) {
#if defined(__CUDA_ARCH__)
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(smem_addr(row)));
#elif defined(BK_SIM)
  uint32_t r[4];
  ::bk::sim::ldmatrix(4, false, row, r);
  r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
#endif
}
BK_DEVICE void ldmatrix_x1_trans(uint32_t& r0, const void* row) {
#if defined(__CUDA_ARCH__)
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r0) : "r"(smem_addr(row)));
#elif defined(BK_SIM)
  ::bk::sim::ldmatrix(1, true, row, &r0);
#endif
}
BK_DEVICE void ldmatrix_x2_trans(uint32_t& r0, uint32_t& r1, const void* row) {
#if defined(__CUDA_ARCH__)
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r0), "=r"(r1) : "r"(smem_addr(row)));
#elif defined(BK_SIM)
  uint32_t r[2];
  ::bk::sim::ldmatrix(2, true, row, r);
  r0 = r[0], r1 = r[1];
#endif
}
BK_DEVICE void ldmatrix_x4_trans(uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3, const void* row) {
#if defined(__CUDA_ARCH__)
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(smem_addr(row)));
#elif defined(BK_SIM)
  uint32_t r[4];
  ::bk::sim::ldmatrix(4, true, row, r);
  r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
#endif
}

// D = A * B + C, one warp: A 16x16 row-major fragment (4 regs of 2 halves),
// B 16x8 column fragment (2 regs), C/D 16x8 f32 (4 floats). d may alias c.
BK_DEVICE void mma_m16n8k16_f16f32(float* d, const uint32_t* a, const uint32_t* b, const float* c) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif defined(BK_SIM)
  ::bk::sim::mma(::bk::sim::kMmaF16, d, a, b, c);
#endif
}
BK_DEVICE void mma_m16n8k16_bf16f32(float* d, const uint32_t* a, const uint32_t* b, const float* c) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif defined(BK_SIM)
  ::bk::sim::mma(::bk::sim::kMmaBF16, d, a, b, c);
#endif
}
// m16n8k8 tf32: a[4] and b[2] hold fp32 bit patterns (convert with
// float_to_tf32 first: the tensor core ignores the low 13 mantissa bits).
BK_DEVICE void mma_m16n8k8_tf32f32(float* d, const uint32_t* a, const uint32_t* b, const float* c) {
#if defined(__CUDA_ARCH__)
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif defined(BK_SIM)
  ::bk::sim::mma(::bk::sim::kMmaTF32, d, a, b, c);
#endif
}
// cvt.rna.tf32.f32: round to nearest, ties away from zero, to 10 mantissa bits.
BK_DEVICE uint32_t float_to_tf32(float x) {
#if defined(__CUDA_ARCH__)
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
#else
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u += 0x1000u;  // not inf/nan: round half away
  return u & 0xffffe000u;
#endif
}

}  // namespace dev
}  // namespace bk
