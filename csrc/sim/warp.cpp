// Barriers and warp collectives. A lane arriving at a collective deposits a
// 64-bit payload in its warp's exchange group and yields; the last lane of
// the mask completes the group and wakes the others, which then read their
// result. Masks are checked the way synccheck does: the caller must be in
// its mask, and every lane named must exist and not have exited.
#include <cmath>
#include <cstdio>
#include <cstring>

#include "sim/runtime.h"

namespace bk {
namespace sim {

const char* coll_name(Coll c) {
  static const char* n[] = {"__syncwarp", "__shfl_sync", "vote (__ballot/__any/__all_sync)", "ldmatrix",
                            "mma.sync"};
  return n[int(c)];
}

void device_trap(const char* what) { fail(what); }

void syncthreads() {
  tl_fiber->wait = Wait::Barrier;
  yield_to_scheduler();
}

void grid_sync() {
  if (!tl_fiber->block->launch->cooperative) fail("grid sync outside a cooperative launch");
  tl_fiber->wait = Wait::Grid;
  yield_to_scheduler();
}

using Complete = void (*)(XGroup& g);

// Returns the completed group; the caller reads it, then calls done().
static XGroup& arrive(Coll kind, uint32_t mask, uint64_t payload, Complete complete = nullptr) {
  Fiber* f = tl_fiber;
  Block& b = *f->block;
  Warp& w = b.warps[f->warp];
  const uint32_t bit = 1u << f->lane;
  char msg[160];
  if (!(mask & bit)) {
    snprintf(msg, sizeof msg, "%s with mask 0x%08x that omits the calling lane %d", coll_name(kind), mask, f->lane);
    fail(msg);
  }
  if (mask & ~w.existing) {
    snprintf(msg, sizeof msg, "%s mask 0x%08x names lanes that do not exist (warp has 0x%08x)", coll_name(kind),
             mask, w.existing);
    fail(msg);
  }
  if (mask & w.exited) {
    snprintf(msg, sizeof msg, "%s mask 0x%08x names lanes that have exited (0x%08x)", coll_name(kind), mask,
             mask & w.exited);
    fail(msg);
  }
  int gi = -1, free_i = -1;
  for (int i = 0; i < kGroupsPerWarp; ++i) {
    XGroup& g = w.groups[i];
    if (!g.used) {
      if (free_i < 0) free_i = i;
    } else if (!g.complete && g.mask == mask && !(g.arrived & bit)) {
      gi = i;
      break;
    }
  }
  if (gi >= 0 && w.groups[gi].kind != kind) {
    snprintf(msg, sizeof msg, "warp collective mismatch: lanes 0x%08x wait in %s, this lane calls %s (mask 0x%08x)",
             w.groups[gi].arrived, coll_name(w.groups[gi].kind), coll_name(kind), mask);
    fail(msg);
  }
  if (gi < 0) {
    if (free_i < 0) fail("more than 8 warp collectives pending in one warp");
    gi = free_i;
    XGroup& g = w.groups[gi];
    g.used = true;
    g.complete = false;
    g.kind = kind;
    g.mask = mask;
    g.arrived = 0;
  }
  XGroup& g = w.groups[gi];
  g.val[f->lane] = payload;
  g.arrived |= bit;
  f->group = gi;
  if (g.arrived == mask) {
    g.complete = true;
    g.unread = mask;
    if (complete) complete(g);
    for (int l = 0; l < 32; ++l)
      if ((mask >> l & 1) && l != f->lane) b.fibers[f->warp * 32 + l].wait = Wait::Runnable;
  } else {
    f->wait = Wait::Warp;
    yield_to_scheduler();
  }
  return g;
}

static void done(XGroup& g) {
  g.unread &= ~(1u << tl_fiber->lane);
  if (!g.unread) g.used = false;  // the slot may be reused only once all lanes have read it
}

void syncwarp(unsigned mask) { done(arrive(Coll::Sync, mask, 0)); }

uint64_t shfl(unsigned mask, uint64_t bits, int mode, int arg, int width) {
  const int lane = tl_fiber->lane;
  XGroup& g = arrive(Coll::Shfl, mask, bits);
  const int seg = lane & ~(width - 1);
  int src = lane;
  switch (mode) {
    case 0: src = seg + (arg & (width - 1)); break;
    case 1: src = lane - arg < seg ? lane : lane - arg; break;
    case 2: src = lane + arg >= seg + width ? lane : lane + arg; break;
    case 3: src = (lane ^ arg) >= seg + width ? lane : (lane ^ arg); break;
  }
  // Reading a lane outside the mask is undefined on the GPU: poison it.
  const uint64_t r = (mask >> src & 1) ? g.val[src] : ~uint64_t(0);
  done(g);
  return r;
}

unsigned vote(unsigned mask, int pred, int mode) {
  XGroup& g = arrive(Coll::Vote, mask, pred != 0);
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1) && g.val[l]) ballot |= 1u << l;
  done(g);
  if (mode == 0) return ballot;
  if (mode == 1) return ballot != 0;
  return ballot == mask;
}

unsigned active_mask() {
  const Warp& w = tl_fiber->block->warps[tl_fiber->warp];
  return w.existing & ~w.exited;
}

static bool in_shared(const void* p, size_t bytes) {
  const Block& b = *tl_fiber->block;
  const char* c = static_cast<const char*>(p);
  return c >= b.smem && c + bytes <= b.smem + shared_pool_bytes();
}

void ldmatrix(int num, bool trans, const void* row, uint32_t* out) {
  const int lane = tl_fiber->lane;
  if (lane < 8 * num && (!in_shared(row, 16) || (reinterpret_cast<uintptr_t>(row) & 15)))
    fail("ldmatrix row address not 16-byte aligned inside shared memory");
  XGroup& g = arrive(Coll::Ldmatrix, 0xffffffffu, reinterpret_cast<uint64_t>(row));
  // Lane 8*j + r gives row r of matrix j. Plain: this lane gets row lane/4,
  // columns 2*(lane%4) and +1. Transposed: rows 2*(lane%4) and +1, column lane/4.
  for (int j = 0; j < num; ++j) {
    uint16_t h[2];
    for (int e = 0; e < 2; ++e) {
      const char* base;
      int col;
      if (!trans) {
        base = reinterpret_cast<const char*>(g.val[8 * j + lane / 4]);
        col = 2 * (lane % 4) + e;
      } else {
        base = reinterpret_cast<const char*>(g.val[8 * j + 2 * (lane % 4) + e]);
        col = lane / 4;
      }
      memcpy(&h[e], base + 2 * col, 2);
    }
    out[j] = uint32_t(h[0]) | (uint32_t(h[1]) << 16);
  }
  done(g);
}

// ---- mma.sync, computed once per warp by the last arriving lane ----

struct MmaArgs {
  int kind;
  float* d;
  const uint32_t *a, *b;
  const float* c;
};

static float h2f(uint16_t h) {
  const uint32_t s = uint32_t(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0) {
    const float v = float(m) * 0x1p-24f;
    return s ? -v : v;
  }
  uint32_t bits = s | (e == 31 ? 0x7f800000u | (m << 13) : ((e + 112) << 23) | (m << 13));
  float f;
  memcpy(&f, &bits, 4);
  return f;
}
static float bf2f(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}
static float tf32(uint32_t bits) {
  bits &= 0xffffe000u;  // the tensor core reads 10 mantissa bits; the rest is ignored
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

// Fragment layouts: PTX ISA "Matrix Fragments for mma.m16n8k16 / m16n8k8".
// g = lane / 4 (groupID), t = lane % 4 (threadID_in_group).
static void mma_complete(XGroup& grp) {
  const MmaArgs* args[32];
  for (int l = 0; l < 32; ++l) args[l] = reinterpret_cast<const MmaArgs*>(grp.val[l]);
  const int kind = args[0]->kind;
  for (int l = 1; l < 32; ++l)
    if (args[l]->kind != kind) fail("mma.sync: lanes of one warp issue different mma shapes/types");
  const int K = kind == kMmaTF32 ? 8 : 16;
  float A[16][16], B[16][8], C[16][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    const MmaArgs& m = *args[l];
    if (kind == kMmaTF32) {
      for (int r = 0; r < 4; ++r) A[g + 8 * (r & 1)][t + 4 * (r >> 1)] = tf32(m.a[r]);
      for (int r = 0; r < 2; ++r) B[t + 4 * r][g] = tf32(m.b[r]);
    } else {
      auto cv = [&](uint32_t reg, int half) {
        const uint16_t h = uint16_t(reg >> (16 * half));
        return kind == kMmaF16 ? h2f(h) : bf2f(h);
      };
      for (int i = 0; i < 8; ++i)
        A[g + 8 * ((i >> 1) & 1)][2 * t + (i & 1) + 8 * (i >> 2)] = cv(m.a[i >> 1], i & 1);
      for (int i = 0; i < 4; ++i) B[2 * t + (i & 1) + 8 * (i >> 1)][g] = cv(m.b[i >> 1], i & 1);
    }
    for (int i = 0; i < 4; ++i) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = m.c[i];
  }
  // Products of f16/bf16/tf32 values are exact in double and 16 of them sum
  // (nearly always) exactly: D is C + A*B rounded once to fp32. The GPU's
  // internal rounding is unspecified; kernels are checked with tolerances.
  // Loop order r, k, n keeps each output's sum in k order and vectorises over n.
  for (int r = 0; r < 16; ++r) {
    double acc[8];
    for (int n = 0; n < 8; ++n) acc[n] = C[r][n];
    for (int k = 0; k < K; ++k) {
      const double a = A[r][k];
      for (int n = 0; n < 8; ++n) acc[n] += a * double(B[k][n]);
    }
    for (int n = 0; n < 8; ++n) C[r][n] = float(acc[n]);
  }
  // d may alias c: every input was read above, before any output is written.
  for (int l = 0; l < 32; ++l) {
    const int g = l >> 2, t = l & 3;
    for (int i = 0; i < 4; ++i) args[l]->d[i] = C[g + 8 * (i >> 1)][2 * t + (i & 1)];
  }
}

void mma(int kind, float* d, const uint32_t* a, const uint32_t* b, const float* c) {
  MmaArgs args{kind, d, a, b, c};
  done(arrive(Coll::Mma, 0xffffffffu, reinterpret_cast<uint64_t>(&args), mma_complete));
}

}  // namespace sim
}  // namespace bk
