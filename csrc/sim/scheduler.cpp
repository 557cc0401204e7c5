// The scheduler of one OS thread: the threads of a block (all blocks, for a
// cooperative launch) as fibers that run one at a time, each until its next
// synchronisation point, in the order of the chosen schedule. Barriers are
// released here; warp collectives release themselves (warp.cpp). When
// nothing can run and not every thread has finished, the launch fails with a
// deadlock report instead of hanging.
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>

#include "sim/runtime.h"

namespace bk {
namespace sim {

thread_local Fiber* tl_fiber = nullptr;
thread_local Ids* tl_ids = nullptr;
static thread_local FiberContext tl_sched;
static thread_local std::string tl_error;
// Fiber stacks of this OS thread, reused by every block it runs.
struct StackPool {
  std::deque<FiberStack> v;  // deque: growing it keeps Fiber::stack pointers valid
  ~StackPool() {
    for (size_t i = 0; i < v.size(); i += kStacksPerSlab) stack_free_slab(v[i]);
  }
};
static thread_local StackPool tl_pool;
static thread_local std::deque<FiberStack>& tl_stacks = tl_pool.v;

static std::string d3(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}
std::string thread_desc(const Fiber& f) {
  return "thread " + d3(f.thread_idx) + " of block " + d3(f.block_idx);
}

// The current pass: fibers in schedule order and the position of the running
// one. A fiber that blocks switches straight to the next runnable fiber of
// the pass (one switch instead of two through the scheduler); the last one
// of the pass returns to the scheduler.
static thread_local std::vector<Fiber*>* tl_order = nullptr;
static thread_local size_t tl_pos = 0;

static Fiber* next_in_pass() {
  const std::vector<Fiber*>& o = *tl_order;
  while (++tl_pos < o.size())
    if (o[tl_pos]->wait == Wait::Runnable) return o[tl_pos];
  return nullptr;
}

static void switch_from(Fiber* cur) {
  if (Fiber* nx = next_in_pass()) {
    tl_fiber = nx;
    tl_ids = nx;
    fiber_switch(cur->ctx, nx->ctx);
  } else {
    fiber_switch(cur->ctx, tl_sched);
  }
}

void yield_to_scheduler() { switch_from(tl_fiber); }

void fail(const std::string& what) {
  Fiber* f = tl_fiber;
  tl_error = "bk::sim: " + what + " in kernel " + f->block->launch->name + " (" + thread_desc(*f) + ")";
  fiber_switch(f->ctx, tl_sched);  // never resumed: the block is abandoned
  std::abort();
}

static void fiber_main(void* arg) {
  Fiber* f = static_cast<Fiber*>(arg);
  (*f->block->launch->body)();
  cp_async_land(*f, INT64_MAX);  // copies never waited for still land on a GPU
  if (!stack_canary_ok(*f->stack)) fail("fiber stack overflow (raise Options::stack_bytes)");
  f->wait = Wait::Done;
  f->block->warps[f->warp].exited |= 1u << f->lane;
  switch_from(f);
  std::abort();
}

static const char* wait_name(const Fiber& f) {
  switch (f.wait) {
    case Wait::Barrier: return "__syncthreads";
    case Wait::Grid: return "grid sync";
    case Wait::Done: return "exited";
    default: return "running";
  }
}

// Lists up to 12 stuck threads; names the mask for warp-collective waits.
static std::string deadlock_report(const Launch& L, std::vector<Fiber*>& all, const char* why) {
  std::string s = std::string("bk::sim: deadlock in kernel ") + L.name + ": " + why + ";";
  int shown = 0;
  for (Fiber* f : all) {
    if (f->wait == Wait::Done) continue;
    if (++shown > 12) { s += " ..."; break; }
    s += " " + thread_desc(*f) + " waits at ";
    if (f->wait == Wait::Warp) {
      const XGroup& g = f->block->warps[f->warp].groups[f->group];
      char buf[96];
      snprintf(buf, sizeof buf, "%s mask 0x%08x (lanes arrived 0x%08x)", coll_name(g.kind), g.mask, g.arrived);
      s += buf;
    } else {
      s += wait_name(*f);
    }
    s += ";";
  }
  return s;
}

// `ahead` receives the fibers of the warp that warp-ahead runs first.
static void make_order(const Launch& L, std::vector<Block*>& blocks, std::vector<Fiber*>& order,
                       std::vector<Fiber*>& ahead, std::mt19937_64& rng) {
  order.clear();
  ahead.clear();
  for (Block* b : blocks) {
    const int n = int(b->fibers.size());
    switch (L.opt.schedule) {
      case Schedule::Forward:
      case Schedule::Random:
        for (int i = 0; i < n; ++i) order.push_back(&b->fibers[i]);
        break;
      case Schedule::Reverse:
        for (int i = n - 1; i >= 0; --i) order.push_back(&b->fibers[i]);
        break;
      case Schedule::WarpAhead: {
        // Seed 0 sends the last warp ahead (forward already starts with warp 0).
        const int ahead_warp = int((b->warps.size() - 1 + L.opt.seed + b->linear) % b->warps.size());
        for (int i = 0; i < n; ++i) if (b->fibers[i].warp == ahead_warp) ahead.push_back(&b->fibers[i]);
        for (int i = 0; i < n; ++i) if (b->fibers[i].warp != ahead_warp) order.push_back(&b->fibers[i]);
        break;
      }
    }
  }
  if (L.opt.schedule == Schedule::Random) std::shuffle(order.begin(), order.end(), rng);
}

// Runs the fibers of `blocks` to completion; false with tl_error set on failure.
bool run_fibers(const Launch& L, std::vector<Block*>& blocks) {
  sigjmp_buf fault_jmp;
  if (sigsetjmp(fault_jmp, 1)) {  // a kernel faulted (memory.cpp on_fault)
    tl_fault_jmp = nullptr;
    tl_fiber = nullptr;
    tl_ids = nullptr;
    tl_error = tl_fault_msg;
    return false;
  }
  tl_fault_jmp = &fault_jmp;
  struct Reset {
    ~Reset() { tl_fault_jmp = nullptr; }
  } reset;
  std::vector<Fiber*> all, order;
  for (Block* b : blocks)
    for (Fiber& f : b->fibers) all.push_back(&f);
  std::mt19937_64 rng(L.opt.seed * 0x9E3779B97F4A7C15ull + uint64_t(blocks[0]->linear));
  // One pass over `o`: the first runnable fiber runs, then hands over fiber
  // to fiber; returns whether any fiber ran.
  auto pass = [](std::vector<Fiber*>& o) {
    tl_order = &o;
    tl_pos = size_t(-1);
    Fiber* f = next_in_pass();
    if (!f) return false;
    tl_fiber = f;
    tl_ids = f;
    fiber_switch(tl_sched, f->ctx);
    tl_fiber = nullptr;
    tl_ids = nullptr;
    return true;
  };
  std::vector<Fiber*> ahead;
  for (;;) {
    make_order(L, blocks, order, ahead, rng);
    // Warp-ahead: that warp runs alone, through its own warp collectives,
    // until it waits at a block-level barrier (or exits); then the others.
    while (pass(ahead))
      if (!tl_error.empty()) return false;
    pass(order);
    if (!tl_error.empty()) return false;
    size_t done = 0, at_grid = 0, runnable = 0;
    for (Block* b : blocks) {
      size_t bdone = 0, bbar = 0;
      for (Fiber& f : b->fibers) {
        bdone += f.wait == Wait::Done;
        bbar += f.wait == Wait::Barrier;
        at_grid += f.wait == Wait::Grid;
        runnable += f.wait == Wait::Runnable;
      }
      done += bdone;
      if (bbar == b->fibers.size()) {
        for (Fiber& f : b->fibers) f.wait = Wait::Runnable;
        runnable += bbar;
      } else if (bbar > 0 && bbar + bdone == b->fibers.size()) {
        tl_error = deadlock_report(L, all, "__syncthreads not reached by all threads of the block (some exited)");
        return false;
      }
    }
    if (done == all.size()) {
      for (Block* b : blocks)
        if (!check_red_zones(*b)) {
          tl_error = red_zone_error(*b);
          return false;
        }
      return true;
    }
    if (at_grid > 0 && at_grid == all.size()) {
      for (Fiber* f : all) f->wait = Wait::Runnable;
      continue;
    }
    if (at_grid > 0 && at_grid + done == all.size()) {
      tl_error = deadlock_report(L, all, "grid sync not reached by all threads (some exited)");
      return false;
    }
    if (runnable == 0) {
      tl_error = deadlock_report(L, all, "no thread can proceed (barrier or warp-collective mask mismatch)");
      return false;
    }
  }
}

void init_block(Launch& L, Block& b, int linear, char* smem, size_t& stack_i) {
  b.launch = &L;
  b.linear = linear;
  b.idx = uint3{unsigned(linear % L.grid.x), unsigned(linear / L.grid.x % L.grid.y),
                unsigned(linear / (L.grid.x * L.grid.y))};
  const int n = int(L.block.x * L.block.y * L.block.z);
  b.fibers.assign(n, Fiber{});
  b.warps.assign((n + 31) / 32, Warp{});
  for (int w = 0; w < int(b.warps.size()); ++w) {
    const int lanes = std::min(32, n - 32 * w);
    b.warps[w].existing = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1);
  }
  b.smem = smem;
  b.dyn_smem = L.dyn_smem;
  init_shared(b);
  for (int i = 0; i < n; ++i) {
    Fiber& f = b.fibers[i];
    f.thread_idx = uint3{unsigned(i % L.block.x), unsigned(i / L.block.x % L.block.y),
                         unsigned(i / (L.block.x * L.block.y))};
    f.block_idx = b.idx;
    f.block_dim = L.block;
    f.grid_dim = L.grid;
    f.linear = i;
    f.lane = i % 32;
    f.warp = i / 32;
    f.block = &b;
    f.wait = Wait::Runnable;
    if (stack_i == tl_stacks.size()) {
      FiberStack slab[kStacksPerSlab];  // deque storage is not contiguous
      stack_alloc_slab(L.opt.stack_bytes, slab);
      for (auto& st : slab) tl_stacks.push_back(st);
    }
    f.stack = &tl_stacks[stack_i++];
    stack_set_canary(*f.stack);
    fiber_init(f.ctx, *f.stack, fiber_main, &f);
  }
}

std::string take_thread_error() {
  std::string e = std::move(tl_error);
  tl_error.clear();
  return e;
}

}  // namespace sim
}  // namespace bk
