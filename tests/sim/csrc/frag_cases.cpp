// Fragment layouts of mma.sync and ldmatrix, pinned three ways: the PTX ISA
// figures (isa_*), CuTe's layouts (cute_*, from mma_traits_sm80.hpp and
// copy_traits_sm75.hpp, written as (thread, value) -> index formulas), and a
// few hand-computed entries. The emulator is checked against the ISA form,
// which is first checked against CuTe's. Also the tensor-core test GEMM.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#include "cuda/testing/gemm_mma.h"
#include "harness.h"
#include "kernels.h"

namespace simtest {
namespace {

struct RC { int r, c; };
// ---- PTX ISA: g = lane / 4, t = lane % 4 ----
RC isa_a16(int l, int i) { return {l / 4 + 8 * ((i / 2) % 2), 2 * (l % 4) + i % 2 + 8 * (i / 4)}; }  // A 16x16, i < 8
RC isa_b16(int l, int i) { return {2 * (l % 4) + i % 2 + 8 * (i / 2), l / 4}; }                     // B 16x8 (k, n), i < 4
RC isa_c(int l, int i) { return {l / 4 + 8 * (i / 2), 2 * (l % 4) + i % 2}; }                        // C 16x8, i < 4
RC isa_a8(int l, int i) { return {l / 4 + 8 * (i % 2), l % 4 + 4 * (i / 2)}; }                      // tf32 A 16x8
RC isa_b8(int l, int i) { return {l % 4 + 4 * i, l / 4}; }                                         // tf32 B 8x8 (k, n)
// ---- CuTe: thread l = (t0 = l%4, t1 = l/4); index into a column-major tile ----
RC cute_a16(int l, int i) {  // ((4,8),(2,2,2)):((32,1),(16,8,128)), M=16 x K=16
  const int x = 32 * (l % 4) + (l / 4) + 16 * (i % 2) + 8 * ((i / 2) % 2) + 128 * (i / 4);
  return {x % 16, x / 16};
}
RC cute_b16(int l, int i) {  // ((4,8),(2,2)):((16,1),(8,64)), N=8 x K=16 -> (k, n)
  const int x = 16 * (l % 4) + (l / 4) + 8 * (i % 2) + 64 * (i / 2);
  return {x / 8, x % 8};
}
RC cute_c(int l, int i) {  // SM80_16x8_Row ((4,8),(2,2)):((32,1),(16,8)), M=16 x N=8
  const int x = 32 * (l % 4) + (l / 4) + 16 * (i % 2) + 8 * (i / 2);
  return {x % 16, x / 16};
}
RC cute_a8(int l, int i) {  // tf32 ((4,8),(2,2)):((16,1),(8,64)), M=16 x K=8
  const int x = 16 * (l % 4) + (l / 4) + 8 * (i % 2) + 64 * (i / 2);
  return {x % 16, x / 16};
}
RC cute_b8(int l, int i) {  // tf32 ((4,8),2):((8,1),32), N=8 x K=8 -> (k, n)
  const int x = 8 * (l % 4) + (l / 4) + 32 * i;
  return {x / 8, x % 8};
}

bool same(RC (*f)(int, int), RC (*g)(int, int), int vals, const char* what) {
  for (int l = 0; l < 32; ++l)
    for (int i = 0; i < vals; ++i) {
      const RC a = f(l, i), b = g(l, i);
      EXPECT(a.r == b.r && a.c == b.c, "%s lane %d value %d: ISA (%d,%d) vs CuTe (%d,%d)", what, l, i, a.r, a.c, b.r, b.c);
    }
  return true;
}

uint16_t bits16(float v, int kind) {
  uint16_t h;
  if (kind == 0) { __half x = __float2half_rn(v); memcpy(&h, &x, 2); }
  else { __nv_bfloat16 x = __float2bfloat16_rn(v); memcpy(&h, &x, 2); }
  return h;
}

// Small integers: every product and sum is exact in fp32, so D must match bit for bit.
bool check_mma(int kind) {
  const int K = kind == 2 ? 8 : 16;
  float A[16][16], B[16][8], C[16][8];
  for (int r = 0; r < 16; ++r)
    for (int k = 0; k < K; ++k) A[r][k] = float((r * 3 + k * 5) % 7 - 3);
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < 8; ++n) B[k][n] = float((k * 2 + n * 7) % 5 - 2);
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 8; ++n) C[r][n] = float(r * 8 + n) * 0.5f;
  std::vector<uint32_t> a(128), b(64);
  std::vector<float> c(128), d(128);
  for (int l = 0; l < 32; ++l) {
    if (kind == 2) {
      for (int i = 0; i < 4; ++i) { RC p = isa_a8(l, i); memcpy(&a[4 * l + i], &A[p.r][p.c], 4); }
      for (int i = 0; i < 2; ++i) { RC p = isa_b8(l, i); memcpy(&b[2 * l + i], &B[p.r][p.c], 4); }
    } else {
      for (int i = 0; i < 8; ++i) { RC p = isa_a16(l, i); a[4 * l + i / 2] |= uint32_t(bits16(A[p.r][p.c], kind)) << (16 * (i % 2)); }
      for (int i = 0; i < 4; ++i) { RC p = isa_b16(l, i); b[2 * l + i / 2] |= uint32_t(bits16(B[p.r][p.c], kind)) << (16 * (i % 2)); }
    }
    for (int i = 0; i < 4; ++i) { RC p = isa_c(l, i); c[4 * l + i] = C[p.r][p.c]; }
  }
  EXPECT(mma_frag(kind, a.data(), b.data(), c.data(), d.data()) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  for (int l = 0; l < 32; ++l)
    for (int i = 0; i < 4; ++i) {
      const RC p = isa_c(l, i);
      float want = C[p.r][p.c];
      for (int k = 0; k < K; ++k) want += A[p.r][k] * B[k][p.c];
      EXPECT(d[4 * l + i] == want, "kind %d lane %d d%d (%d,%d): %f != %f", kind, l, i, p.r, p.c, d[4 * l + i], want);
    }
  return true;
}

}  // namespace

SIM_CASE(layouts_isa_vs_cute) {
  return same(isa_a16, cute_a16, 8, "A m16n8k16") && same(isa_b16, cute_b16, 4, "B m16n8k16") &&
         same(isa_c, cute_c, 4, "C m16n8") && same(isa_a8, cute_a8, 4, "A m16n8k8 tf32") &&
         same(isa_b8, cute_b8, 2, "B m16n8k8 tf32");
}

SIM_CASE(layouts_hand_computed) {
  // Lane 5: g = 1, t = 1. Lane 30: g = 7, t = 2.
  RC p = isa_a16(5, 2);  EXPECT(p.r == 9 && p.c == 2, "A lane5 a2");   // a2 -> row g+8, col 2t
  p = isa_a16(5, 5);     EXPECT(p.r == 1 && p.c == 11, "A lane5 a5");  // a5 -> row g, col 2t+1+8
  p = isa_a16(30, 7);    EXPECT(p.r == 15 && p.c == 13, "A lane30 a7");
  p = isa_b16(30, 3);    EXPECT(p.r == 13 && p.c == 7, "B lane30 b3"); // k = 2t+1+8, n = g
  p = isa_c(30, 3);      EXPECT(p.r == 15 && p.c == 5, "C lane30 c3");
  p = isa_a8(5, 3);      EXPECT(p.r == 9 && p.c == 5, "tf32 A lane5 a3");
  p = isa_b8(30, 1);     EXPECT(p.r == 6 && p.c == 7, "tf32 B lane30 b1");
  return true;
}

SIM_CASE(mma_f16) { return check_mma(0); }
SIM_CASE(mma_bf16) { return check_mma(1); }
SIM_CASE(mma_tf32) { return check_mma(2); }

// ldmatrix: smem element (row R of the 32 stacked rows, col c) = R*256 + c.
SIM_CASE(ldmatrix_all) {
  for (int num : {1, 2, 4})
    for (bool trans : {false, true}) {
      std::vector<uint32_t> out(128);
      EXPECT(ldmatrix_probe(num, trans, out.data()) == cudaSuccess, "%s", bk::sim::last_error().c_str());
      for (int l = 0; l < 32; ++l)
        for (int j = 0; j < num; ++j)
          for (int h = 0; h < 2; ++h) {
            // ISA: plain -> row l/4, col 2(l%4)+h; trans -> row 2(l%4)+h, col l/4 (of matrix j).
            const int r = trans ? 2 * (l % 4) + h : l / 4, c = trans ? l / 4 : 2 * (l % 4) + h;
            // CuTe DstLayout bit index: LDSM_N (32,(32,n)):(32,(1,1024));
            // LDSM_T ((4,8),(16,2,n)):((256,16),(1,128,1024)); element = bit / 16 of row-major 8x8 matrices.
            const int bit = trans ? 256 * (l % 4) + 16 * (l / 4) + 128 * h + 1024 * j : 32 * l + 16 * h + 1024 * j;
            const int e = bit / 16, cr = e / 8, cc = e % 8;  // e includes 64 * j
            const uint16_t got = uint16_t(out[4 * l + j] >> (16 * h));
            EXPECT(got == (8 * j + r) * 256 + c, "x%d%s lane %d reg %d half %d: %04x", num, trans ? ".trans" : "", l, j, h, got);
            EXPECT(cr == 8 * j + r && cc == c, "ISA vs CuTe x%d%s lane %d", num, trans ? ".trans" : "", l);
          }
    }
  // Hand-computed: x4.trans, lane 13 (l%4 = 1, l/4 = 3), reg 2, high half: matrix 2, row 3, col 3.
  std::vector<uint32_t> out(128);
  ldmatrix_probe(4, true, out.data());
  EXPECT((out[4 * 13 + 2] >> 16) == (16 + 3) * 256 + 3, "hand case %08x", out[4 * 13 + 2]);
  return true;
}

static bool gemm_case(int M, int N, int K, bool bf16, bool all_schedules, double* ms) {
  std::mt19937 rng(M * 131 + N * 7 + K);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<uint16_t> A(size_t(M) * K), B(size_t(N) * K);
  std::vector<float> Af(A.size()), Bf(B.size()), C(size_t(M) * N), ref(C.size());
  for (size_t i = 0; i < A.size(); ++i) A[i] = bits16(u(rng), bf16), Af[i] = bf16 ? __bfloat162float(*reinterpret_cast<__nv_bfloat16*>(&A[i])) : __half2float(*reinterpret_cast<__half*>(&A[i]));
  for (size_t i = 0; i < B.size(); ++i) B[i] = bits16(u(rng), bf16), Bf[i] = bf16 ? __bfloat162float(*reinterpret_cast<__nv_bfloat16*>(&B[i])) : __half2float(*reinterpret_cast<__half*>(&B[i]));
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int k = 0; k < K; ++k) s += double(Af[size_t(m) * K + k]) * Bf[size_t(n) * K + k];
      ref[size_t(m) * N + n] = float(s);
    }
  auto run = [&] {
    std::fill(C.begin(), C.end(), -7.0f);
    const auto t0 = std::chrono::steady_clock::now();
    const cudaError_t e = bk::cuda::testing_gemm_mma(A.data(), B.data(), C.data(), M, N, K, bf16, nullptr);
    if (ms) *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (e != cudaSuccess) fprintf(stderr, "%s\n", bk::sim::last_error().c_str());
    return bytes(C);
  };
  if (all_schedules) {
    const std::string diff = differing_schedule(run);
    EXPECT(diff.empty(), "gemm differs under %s", diff.c_str());
  } else {
    run();
  }
  for (size_t i = 0; i < C.size(); ++i)
    EXPECT(std::fabs(C[i] - ref[i]) <= 1e-4 * (1 + std::fabs(ref[i])) * std::sqrt(double(K)), "C[%zu] %f vs %f", i, C[i], ref[i]);
  return true;
}

SIM_CASE(gemm_edges_all_schedules) {
  // K spans 5 and 7 k-tiles: enough for the two-stage pipeline to wrap twice.
  return gemm_case(70, 90, 136, true, true, nullptr) && gemm_case(64, 72, 200, false, true, nullptr);
}

SIM_CASE(gemm_256) {
  double ms = 0;
  bk::sim::options().os_threads = 1;
  if (!gemm_case(256, 256, 256, true, false, &ms) || !gemm_case(256, 256, 256, false, false, nullptr)) return false;
  printf("gemm 256x256x256 bf16, 16 blocks x 128 threads, 1 OS thread: %.1f ms\n", ms);
  return true;
}

// Cost of one fiber round trip (fiber -> scheduler -> next fiber) per
// thread and barrier; printed for the report, bounded only loosely.
SIM_CASE(switch_cost) {
  const int iters = 2000, threads = 256;
  std::vector<int> out(threads);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT(barrier_loop(iters, threads, out.data()) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  const double per = ns / (double(iters) * threads);
  printf("barrier round trip per thread: %.1f ns (%d threads x %d barriers)\n", per, threads, iters);
  EXPECT(per < 2000, "%.1f ns per thread and barrier", per);
  return true;
}

}  // namespace simtest
