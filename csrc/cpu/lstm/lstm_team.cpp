// The LSTM team kernels (lstm_team.h). Work is split by hidden unit, in
// blocks of L units (the vector width), so that a step needs no reduction
// across threads:
// - forward: a block's four gate rows of W_hh (4 panels, interleaved as
//   [P][4][L]) give the block's i, f, g, o pre-activations for up to 6 batch
//   rows at a time in registers; the gate pass follows on them. h_t is read
//   by every thread at step t+1: one barrier per step.
// - backward: dh_t for a block = dz_{t+1} (all 4H columns) x W_hh[:, block],
//   a panel of W_hh's columns ([4H][L], 4 blocks interleaved); then the
//   block's gate backward writes its columns of dz_t. dz_t is read by every
//   thread next: one barrier per step.
// At H = 256 on two threads each thread's slice is 512 KiB: it stays in its
// core's L2 for the whole sequence (MKL's per-step GEMM reread W and forked
// its threads every step).
#include "cpu/lstm/lstm_team.h"

#include <ATen/Parallel.h>
#include <omp.h>
#include <string.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "cpu/isa.h"
#include "cpu/lstm/lstm_math.h"
#include "cpu/blas/panel_gemm.h"

namespace bk {
namespace cpu {
namespace {

constexpr int64_t kMinSteps = 4;  // packing costs about one step's GEMM

// Unit blocks per register tile: at batch 1 (a GEMV) twice as many, to keep
// 8 accumulators in flight. The packing below groups blocks the same way.
inline int64_t forward_group(int64_t B) { return B == 1 ? 2 : 1; }
inline int64_t backward_group(int64_t B) { return B == 1 ? 8 : 4; }

// Forward panels of a thread's unit blocks [ub0, ub1), in groups of G
// blocks: a group of nb blocks is [P][nb * 4][L] (block q's gate g is panel
// q * 4 + g; units past H are zero). Each block takes 4 * P * L floats.
// A transpose of each gate's L x P block of rows, done 16 k at a time so
// that the 16 destination lines being filled stay in L1 while the L source
// rows stream through (k innermost over all of P wrote one line per element:
// 185 us of fixed cost per call at H = 256, a quarter of a 100-step batch-1 layer).
void pack_forward(const float* w, int64_t H, int64_t P, int L, int64_t G, int64_t ub0, int64_t ub1, float* dst) {
  constexpr int64_t KB = 16;
  for (int64_t g0 = ub0; g0 < ub1; g0 += G) {
    const int64_t nb = std::min(G, ub1 - g0), np = 4 * nb;
    float* group = dst + (g0 - ub0) * 4 * P * L;
    for (int64_t q = 0; q < nb; ++q)
      for (int64_t g = 0; g < 4; ++g)
        for (int64_t k0 = 0; k0 < P; k0 += KB) {
          const int64_t kn = std::min(KB, P - k0);
          for (int j = 0; j < L; ++j) {
            const int64_t u = (g0 + q) * L + j;
            float* out = group + (k0 * np + q * 4 + g) * L + j;
            if (u >= H) {  // padding units of the last block
              for (int64_t kk = 0; kk < kn; ++kk) out[kk * np * L] = 0.f;
              continue;
            }
            const float* src = w + (g * H + u) * P + k0;
            for (int64_t kk = 0; kk < kn; ++kk) out[kk * np * L] = src[kk];
          }
        }
  }
}

// Backward panels: W_hh's columns of each unit block for all 4H rows, in
// groups of G blocks: [4H][nb][L]. Each block takes 4 * H * L floats.
void pack_backward(const float* w, int64_t H, int L, int64_t G, int64_t ub0, int64_t ub1, float* dst) {
  for (int64_t g0 = ub0; g0 < ub1; g0 += G) {
    const int64_t nb = std::min(G, ub1 - g0);
    float* group = dst + (g0 - ub0) * 4 * H * L;
    for (int64_t r = 0; r < 4 * H; ++r)
      for (int64_t q = 0; q < nb; ++q)
        for (int j = 0; j < L; ++j) {
          const int64_t u = (g0 + q) * L + j;
          group[(r * nb + q) * L + j] = u < H ? w[r * H + u] : 0.f;
        }
  }
}

struct ForwardStep {
  const float* xp;      // x_proj[t] [B, 4H]
  const float* h_prev;  // [B, H]
  const float* c_prev;  // [B, H]
  float* y;             // y[t] [B, H]
  float* c;             // [B, H]
  float* gates;         // [B, 4H] or null
  int64_t B, H;
};

// Units [u0, u0 + n) of batch row b, from the block's pre-activations z
// (z[g * L + j]: gate g of unit u0 + j without x_proj). torch's equations.
template <int L>
inline void gates_forward(const ForwardStep& s, const float* z, int64_t b, int64_t u0, int n) {
  const int64_t H = s.H;
  const float* xp = s.xp + b * 4 * H + u0;
  const float* cp = s.c_prev + b * H + u0;
  float* c = s.c + b * H + u0;
  float* m = s.y + b * H + u0;
  if (s.gates) {
    lstm_units_forward<true>(xp, z, L, cp, s.gates + b * 4 * H + u0, c, m, H, n);
  } else {
    lstm_units_forward<false>(xp, z, L, cp, static_cast<float*>(nullptr), c, m, H, n);
  }
}

// scratch: [B][4][L] floats (the pre-activations of one unit block).
template <typename Vec>
inline void forward_blocks(const ForwardStep& s, const float* panels, float* scratch, int64_t ub0, int64_t ub1) {
  constexpr int L = Vec::L;
  alignas(64) float z[2 * 4 * L];
  const int64_t H = s.H;
  if (s.B == 1) {  // a GEMV: two unit blocks per pass keep 8 independent accumulators in flight
    for (int64_t ub = ub0; ub < ub1; ub += forward_group(1)) {
      const int nb = int(std::min<int64_t>(forward_group(1), ub1 - ub));
      panel_block<Vec, 1, 8>(1, 4 * nb, s.h_prev, H, panels + (ub - ub0) * 4 * H * L, H, z);
      for (int q = 0; q < nb; ++q) {
        const int64_t u0 = (ub + q) * L;
        gates_forward<L>(s, z + q * 4 * L, 0, u0, int(std::min<int64_t>(L, H - u0)));
      }
    }
    return;
  }
  for (int64_t ub = ub0; ub < ub1; ++ub) {
    const int64_t u0 = ub * L;
    const int n = int(std::min<int64_t>(L, H - u0));
    panel_all_rows<Vec>(s.B, 4, s.h_prev, H, panels + (ub - ub0) * 4 * H * L, H, scratch);
    for (int64_t b = 0; b < s.B; ++b) gates_forward<L>(s, scratch + b * 4 * L, b, u0, n);
  }
}

struct BackwardStep {
  const float* dz_next;  // dz of the step processed before (t+1 in time order) [B, 4H], or null
  const float* dh_in;    // with dz_next null: the incoming dh (grad_hT) [B, H]
  const float* gy;       // grad_y[t] [B, H], or null (the final grad_h0 product)
  const float* gates;    // [B, 4H] activated gates of step t
  const float* c;        // c_t [B, H]
  const float* c_prev;   // c_{t-1} [B, H]
  float* dc;             // in dL/dc_t, out dL/dc_{t-1} [B, H]
  float* dz;             // out dz_t [B, 4H]; or, with gates null, out dh = dz_next W_hh [B, H]
  int64_t B, H;
};

// Gate backward of units [u0, u0 + n) of batch row b, given dh for them.
inline void gates_backward(const BackwardStep& s, const float* dh, int64_t b, int64_t u0, int n) {
  const int64_t H = s.H;
  const float* g = s.gates + b * 4 * H + u0;
  const float* c = s.c + b * H + u0;
  const float* cp = s.c_prev + b * H + u0;
  float* dc = s.dc + b * H + u0;
  float* dz = s.dz + b * 4 * H + u0;
  lstm_units_backward<false>(g, c, cp, dh, dc, dz, static_cast<float*>(nullptr), H, n);
}

// scratch: [B][backward_group(B)][L] floats (dz_next W_hh for a group of unit blocks).
template <typename Vec>
inline void backward_blocks(const BackwardStep& s, const float* panels, float* scratch, int64_t ub0, int64_t ub1) {
  // Unit blocks per register tile: 4 x up to kMaxRows batch rows, or 8 at batch 1 (a GEMV).
  constexpr int L = Vec::L;
  const int G = int(backward_group(s.B));
  alignas(64) float dh[L];
  const int64_t H = s.H;
  for (int64_t g0 = ub0; g0 < ub1; g0 += G) {
    const int np = int(std::min<int64_t>(G, ub1 - g0));
    const float* pan = panels + (g0 - ub0) * 4 * H * L;
    if (s.dz_next && s.B == 1) panel_block<Vec, 1, 8>(1, np, s.dz_next, 4 * H, pan, 4 * H, scratch);
    if (s.dz_next && s.B > 1) panel_all_rows<Vec>(s.B, np, s.dz_next, 4 * H, pan, 4 * H, scratch);
    for (int64_t row = 0; row < s.B; ++row)
      for (int p = 0; p < np; ++p) {
        const int64_t u0 = (g0 + p) * L;
        const int n = int(std::min<int64_t>(L, H - u0));
        const float* rec = s.dz_next ? scratch + (row * np + p) * L : s.dh_in + row * H + u0;
        if (!s.gates) {  // the last product: grad_h0
          for (int j = 0; j < n; ++j) s.dz[row * H + u0 + j] = rec[j];
          continue;
        }
        const float* gy = s.gy + row * H + u0;
        for (int j = 0; j < n; ++j) dh[j] = gy[j] + rec[j];
        gates_backward(s, dh, row, u0, n);
      }
  }
}

using ForwardFn = void (*)(const ForwardStep&, const float*, float*, int64_t, int64_t);
using BackwardFn = void (*)(const BackwardStep&, const float*, float*, int64_t, int64_t);

// One compiled copy per ISA; flatten inlines the panel products (and their
// intrinsics) into the targeted function.
#define BK_TEAM_KERNELS(TARGET, SUFFIX, VEC)                                                            \
  TARGET __attribute__((flatten)) void forward_##SUFFIX(const ForwardStep& s, const float* panels,       \
                                                        float* scratch, int64_t ub0, int64_t ub1) {      \
    forward_blocks<VEC>(s, panels, scratch, ub0, ub1);                                                   \
  }                                                                                                      \
  TARGET __attribute__((flatten)) void backward_##SUFFIX(const BackwardStep& s, const float* panels,     \
                                                         float* scratch, int64_t ub0, int64_t ub1) {     \
    backward_blocks<VEC>(s, panels, scratch, ub0, ub1);                                                  \
  }
BK_TEAM_KERNELS(, base, VecBase)
BK_FOR_EACH_VECTOR_ISA(BK_TEAM_KERNELS)
#undef BK_TEAM_KERNELS

struct IsaKernels {
  int L;
  ForwardFn forward;
  BackwardFn backward;
};

IsaKernels isa_kernels() {
#if BK_HAS_ISA_CLONES
  switch (best_isa()) {
    case Isa::Avx512: return {VecAvx512::L, forward_avx512, backward_avx512};
    case Isa::Avx2: return {VecAvx2::L, forward_avx2, backward_avx2};
    case Isa::Base: break;
  }
#endif
  return {VecBase::L, forward_base, backward_base};
}

// Threads for a step of B x 4H x H multiply-adds: below ~64K a step takes
// about as long as a barrier, so one thread runs it alone.
int team_size(int64_t B, int64_t H, int64_t blocks) {
  const int64_t macs = B * 4 * H * H;
  const int64_t want = std::max<int64_t>(1, macs / (64 * 1024));
  return int(std::min<int64_t>({int64_t(at::get_num_threads()), blocks, want}));
}

// A buffer without std::vector's zero fill (a pass over 512 KiB per call at H = 256).
inline std::unique_ptr<float[]> uninitialized(int64_t n) { return std::unique_ptr<float[]>(new float[n]); }

// This thread's unit blocks in a team of `team`.
inline void my_blocks(int64_t blocks, int64_t& ub0, int64_t& ub1) {
  const int64_t team = omp_get_num_threads(), tid = omp_get_thread_num();
  ub0 = tid * blocks / team;
  ub1 = (tid + 1) * blocks / team;
}

}  // namespace

bool lstm_team_applies(const LstmParams& p) {
  return p.dtype == DType::F32 && p.w_hr == nullptr && p.P == p.H && p.T >= kMinSteps && p.B > 0 && p.H > 0;
}

void lstm_team_forward(const LstmParams& p) {
  const int64_t T = p.T, B = p.B, H = p.H;
  const IsaKernels k = isa_kernels();
  const int64_t blocks = (H + k.L - 1) / k.L;
  const float* xp = static_cast<const float*>(p.x_proj);
  float* y = static_cast<float*>(p.y);
  float* cs = static_cast<float*>(p.cs);
  float* gates = static_cast<float*>(p.gates);
  std::vector<float> cbuf(cs ? 0 : 2 * B * H);  // c double buffer when cells are not saved
#pragma omp parallel num_threads(team_size(B, H, blocks))
  {
    int64_t ub0, ub1;
    my_blocks(blocks, ub0, ub1);
    const auto panels = uninitialized((ub1 - ub0) * 4 * H * k.L);  // every element packed below
    pack_forward(static_cast<const float*>(p.w_hh), H, H, k.L, forward_group(B), ub0, ub1, panels.get());
    const auto scratch = uninitialized(B * 4 * k.L);
    const float* h_prev = static_cast<const float*>(p.h0);
    const float* c_prev = static_cast<const float*>(p.c0);
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = p.reverse ? T - 1 - s : s;
      float* c = cs ? cs + t * B * H : cbuf.data() + (s & 1) * B * H;
      const ForwardStep step{xp + t * B * 4 * H, h_prev, c_prev, y + t * B * H,
                             c, gates ? gates + t * B * 4 * H : nullptr, B, H};
      k.forward(step, panels.get(), scratch.get(), ub0, ub1);
#pragma omp barrier
      h_prev = step.y;
      c_prev = c;
    }
    if (omp_get_thread_num() == 0) {
      memcpy(p.h_T, h_prev, sizeof(float) * B * H);
      memcpy(p.c_T, c_prev, sizeof(float) * B * H);
    }
  }
}

void lstm_team_backward_recurrence(const LstmParams& p) {
  const int64_t T = p.T, B = p.B, H = p.H;
  const IsaKernels k = isa_kernels();
  const int64_t blocks = (H + k.L - 1) / k.L;
  const float* gy = static_cast<const float*>(p.grad_y);
  const float* gates = static_cast<const float*>(p.gates);
  const float* cs = static_cast<const float*>(p.cs);
  const float* c0 = static_cast<const float*>(p.c0);
  float* dz = static_cast<float*>(p.grad_x_proj);
  float* dc = static_cast<float*>(p.grad_c0);
  memcpy(dc, p.grad_cT, sizeof(float) * B * H);
#pragma omp parallel num_threads(team_size(B, H, blocks))
  {
    int64_t ub0, ub1;
    my_blocks(blocks, ub0, ub1);
    const auto panels = uninitialized((ub1 - ub0) * 4 * H * k.L);  // every element packed below
    pack_backward(static_cast<const float*>(p.w_hh), H, k.L, backward_group(B), ub0, ub1, panels.get());
    const auto scratch = uninitialized(B * backward_group(B) * k.L);
    const float* dz_next = nullptr;
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = p.reverse ? T - 1 - s : s;
      const int64_t t_prev = p.reverse ? t + 1 : t - 1;
      const BackwardStep step{dz_next, static_cast<const float*>(p.grad_hT), gy + t * B * H,
                              gates + t * B * 4 * H, cs + t * B * H, s == 0 ? c0 : cs + t_prev * B * H,
                              dc, dz + t * B * 4 * H, B, H};
      k.backward(step, panels.get(), scratch.get(), ub0, ub1);
#pragma omp barrier
      dz_next = step.dz;
    }
    // grad_h0 = dz of the last processed step x W_hh (no gate pass)
    const BackwardStep last{dz_next, nullptr, nullptr, nullptr, nullptr, nullptr,
                            nullptr, static_cast<float*>(p.grad_h0), B, H};
    k.backward(last, panels.get(), scratch.get(), ub0, ub1);
  }
}

}  // namespace cpu
}  // namespace bk
