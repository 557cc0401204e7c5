// Memory: the per-block shared-memory pool (poisoned, bounds-checked),
// cp.async queues, guard-page buffers for tests and the fault handler that
// names the kernel when one of them is overrun.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "sim/runtime.h"

namespace bk {
namespace sim {

// 227 KiB: the most shared memory one block may use on an H100.
size_t shared_pool_bytes() { return 227 << 10; }

void* shared_dynamic() { return tl_fiber->block->smem; }

void init_shared(Block& b) {
  if (b.launch->opt.poison_smem) memset(b.smem, 0xFF, b.dyn_smem);
  memset(b.smem + b.dyn_smem, 0xFF, kRedZone);
  b.red_zones.assign(1, {b.dyn_smem, "dynamic shared memory"});
  b.static_used = kRedZone;
  b.static_offsets.clear();
}

// Static declarations are placed after the dynamic part (the GPU puts them
// first; either way they do not overlap), on first use within the block,
// each followed by a red zone.
void* shared_static(size_t bytes, size_t align, const void* key, const char* name) {
  Block& b = *tl_fiber->block;
  for (auto& [k, off] : b.static_offsets)
    if (k == key) return b.smem + off;
  if (align < 16) align = 16;
  const size_t start = b.dyn_smem + b.static_used;
  const size_t off = (start + align - 1) / align * align;
  if (off + bytes + kRedZone > shared_pool_bytes()) fail("shared memory (static + dynamic) exceeds 227 KiB");
  if (b.launch->opt.poison_smem) memset(b.smem + off, 0xFF, bytes);
  memset(b.smem + off + bytes, 0xFF, kRedZone);
  b.red_zones.emplace_back(off + bytes, name);
  b.static_used = off + bytes + kRedZone - b.dyn_smem;
  b.static_offsets.emplace_back(key, off);
  return b.smem + off;
}

static thread_local std::string tl_red_zone_error;

bool check_red_zones(Block& b) {
  for (auto& [off, what] : b.red_zones)
    for (size_t i = 0; i < kRedZone; ++i)
      if (static_cast<unsigned char>(b.smem[off + i]) != 0xFF) {
        tl_red_zone_error = std::string("bk::sim: shared memory written out of bounds in kernel ") + b.launch->name +
                            ": byte " + std::to_string(i) + " past the end of " + what + " (block (" +
                            std::to_string(b.idx.x) + "," + std::to_string(b.idx.y) + "," + std::to_string(b.idx.z) + "))";
        return false;
      }
  return true;
}

std::string red_zone_error(const Block&) { return tl_red_zone_error; }

void cp_async(void* dst, const void* src, int bytes, int src_bytes) {
  Fiber& f = *tl_fiber;
  const char* d = static_cast<const char*>(dst);
  if (bytes != 4 && bytes != 8 && bytes != 16) fail("cp.async size must be 4, 8 or 16 bytes");
  if (d < f.block->smem || d + bytes > f.block->smem + shared_pool_bytes())
    fail("cp.async destination outside shared memory");
  if ((reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src)) % bytes)
    fail("cp.async address not aligned to the copy size");
  f.cp_pending.push_back(CpAsync{dst, src, bytes, src_bytes, f.cp_committed});
  // On the GPU a copy lands at any moment between issue and wait. Forward
  // and reverse land it at the wait (a read before the wait sees poison);
  // warp-ahead and random land it at once, so a stage overwritten while
  // other warps still read it (a missing barrier before the next cp.async)
  // changes the output too.
  const Schedule s = f.block->launch->opt.schedule;
  if (s == Schedule::WarpAhead || s == Schedule::Random) cp_async_land(f, INT64_MAX);
}

void cp_async_commit() { tl_fiber->cp_committed++; }

void cp_async_wait(int pending_groups) {
  Fiber& f = *tl_fiber;
  cp_async_land(f, f.cp_committed - pending_groups);
}

void cp_async_land(Fiber& f, int64_t upto_group) {
  size_t keep = 0;
  for (size_t i = 0; i < f.cp_pending.size(); ++i) {
    CpAsync& c = f.cp_pending[i];
    if (c.group < upto_group) {
      if (c.src_bytes > 0) memcpy(c.dst, c.src, size_t(c.src_bytes));
      if (c.src_bytes < c.bytes) memset(static_cast<char*>(c.dst) + c.src_bytes, 0, size_t(c.bytes - c.src_bytes));
    } else {
      f.cp_pending[keep++] = c;
    }
  }
  f.cp_pending.resize(keep);
}

// ---- guard-page buffers ----

static std::mutex g_guard_mu;
static std::map<void*, std::pair<void*, size_t>> g_guarded;

void* guarded_alloc(size_t bytes) {
  const size_t ps = size_t(sysconf(_SC_PAGESIZE));
  const size_t data_pages = (bytes + ps - 1) / ps;
  const size_t len = (data_pages + 1) * ps;
  char* base = static_cast<char*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) return nullptr;
  char* guard = base + data_pages * ps;
  mprotect(guard, ps, PROT_NONE);
  // 16-byte aligned start (cp.async and vector loads need it): an overrun of
  // up to 15 bytes into the alignment padding is not caught.
  char* p = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(guard - bytes) & ~uintptr_t(15));
  std::lock_guard<std::mutex> g(g_guard_mu);
  g_guarded[p] = {base, len};
  return p;
}

void guarded_free(void* p) {
  std::lock_guard<std::mutex> g(g_guard_mu);
  auto it = g_guarded.find(p);
  if (it == g_guarded.end()) return;
  munmap(it->second.first, it->second.second);
  g_guarded.erase(it);
}

// ---- fault handler ----

static struct sigaction g_old_segv, g_old_bus;

thread_local sigjmp_buf* tl_fault_jmp = nullptr;
thread_local char tl_fault_msg[512];

// A fault inside a kernel (a guard page, a null pointer): print the kernel
// and thread, then jump back to this OS thread's scheduler, which fails the
// launch with that message; the block's fibers are abandoned. Any other
// fault goes to the previous handler.
static void on_fault(int sig, siginfo_t* info, void* uctx) {
  Fiber* f = tl_fiber;
  struct sigaction* old = sig == SIGBUS ? &g_old_bus : &g_old_segv;
  if (f) {
    int n = snprintf(tl_fault_msg, sizeof tl_fault_msg,
                     "bk::sim: invalid memory access at %p in kernel %s (thread (%u,%u,%u) of block (%u,%u,%u))",
                     info->si_addr, f->block->launch->name, f->thread_idx.x, f->thread_idx.y, f->thread_idx.z,
                     f->block_idx.x, f->block_idx.y, f->block_idx.z);
    if (write(2, tl_fault_msg, size_t(n)) < 0 || write(2, "\n", 1) < 0) {}
    if (tl_fault_jmp) siglongjmp(*tl_fault_jmp, 1);
  }
  // Hand the fault to whoever handled it before (faulthandler, or the
  // default action): returning re-executes the access, which faults again.
  sigaction(sig, old, nullptr);
  (void)uctx;
}

void install_fault_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
  });
}

}  // namespace sim
}  // namespace bk
