// Context switch. On x86-64 a hand-written switch saves only the callee-saved
// registers (~11 ns per switch on our CI machines); glibc's swapcontext also
// makes a sigprocmask system call per switch (~270 ns), so it is only the
// portable fallback (define BK_SIM_UCONTEXT to force it).
#include "sim/fiber.h"

#include <sys/mman.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>

#if !defined(__x86_64__) || defined(BK_SIM_UCONTEXT)
#define BK_SIM_USE_UCONTEXT 1
#include <ucontext.h>
#endif

namespace bk {
namespace sim {

static size_t page_size() {
  static const size_t p = size_t(sysconf(_SC_PAGESIZE));
  return p;
}

static const uint64_t kCanary = 0xB16CA7A5B16CA7A5ull;

void stack_alloc_slab(size_t size, FiberStack* out) {
  const size_t ps = page_size();
  size = (size + ps - 1) / ps * ps;
  void* m = mmap(nullptr, size * kStacksPerSlab, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    std::perror("bk::sim: fiber stack mmap");
    std::abort();
  }
  for (int i = 0; i < kStacksPerSlab; ++i) out[i] = FiberStack{static_cast<char*>(m) + i * size, size};
}

void stack_free_slab(FiberStack& first) { munmap(first.base, first.size * kStacksPerSlab); }

void stack_set_canary(FiberStack& s) { memcpy(s.base, &kCanary, 8); }
bool stack_canary_ok(const FiberStack& s) { return memcmp(s.base, &kCanary, 8) == 0; }

#ifndef BK_SIM_USE_UCONTEXT

// bk_sim_switch(void** save_sp, void* new_sp): push callee-saved registers,
// store rsp, load the other fiber's rsp, pop its registers, return into it.
// MXCSR and the x87 control word are saved too, as the SysV ABI requires.
asm(R"(
.text
.globl bk_sim_switch
.type bk_sim_switch,@function
bk_sim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr 8(%rsp)
  fldcw (%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size bk_sim_switch,.-bk_sim_switch

.globl bk_sim_trampoline
.type bk_sim_trampoline,@function
bk_sim_trampoline:
  movq %r12, %rdi
  callq *%r13
  ud2
.size bk_sim_trampoline,.-bk_sim_trampoline
)");
extern "C" void bk_sim_switch(void** save_sp, void* new_sp);
extern "C" void bk_sim_trampoline();

void fiber_init(FiberContext& ctx, FiberStack& stack, FiberEntry entry, void* arg) {
  // Initial frame, popped by bk_sim_switch: fpu cw + mxcsr, r15..rbp, then
  // the return address (the trampoline, which calls entry(arg) from r12/r13).
  uintptr_t top = reinterpret_cast<uintptr_t>(stack.base + stack.size) & ~uintptr_t(15);
  uint64_t* sp = reinterpret_cast<uint64_t*>(top);
  // After `ret` pops the trampoline address rsp == top (16-aligned), so the
  // trampoline's call enters `entry` with rsp % 16 == 8, as the ABI expects.
  *--sp = reinterpret_cast<uint64_t>(&bk_sim_trampoline);
  *--sp = 0;                                    // rbp
  *--sp = 0;                                    // rbx
  *--sp = reinterpret_cast<uint64_t>(arg);      // r12
  *--sp = reinterpret_cast<uint64_t>(entry);    // r13
  *--sp = 0;                                    // r14
  *--sp = 0;                                    // r15
  uint32_t mxcsr;
  uint16_t fcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fcw));
  *--sp = mxcsr;                                // at 8(%rsp)
  *--sp = fcw;                                  // at (%rsp)
  ctx.sp = sp;
}

void fiber_switch(FiberContext& from, FiberContext& to) { bk_sim_switch(&from.sp, to.sp); }

void fiber_destroy(FiberContext& ctx) { ctx.sp = nullptr; }

#else  // ucontext fallback

struct Start {
  FiberEntry entry;
  void* arg;
};

static void uc_entry(unsigned lo, unsigned hi) {
  auto* s = reinterpret_cast<Start*>((uintptr_t(hi) << 32) | uintptr_t(lo));
  s->entry(s->arg);
  std::abort();
}

void fiber_init(FiberContext& ctx, FiberStack& stack, FiberEntry entry, void* arg) {
  auto* uc = new ucontext_t;
  getcontext(uc);
  // The Start record lives at the top of the fiber's own stack.
  auto* s = reinterpret_cast<Start*>(stack.base + stack.size - 64);
  s->entry = entry;
  s->arg = arg;
  uc->uc_stack.ss_sp = stack.base;
  uc->uc_stack.ss_size = stack.size - 64;
  uc->uc_link = nullptr;
  uintptr_t p = reinterpret_cast<uintptr_t>(s);
  makecontext(uc, reinterpret_cast<void (*)()>(uc_entry), 2, unsigned(p), unsigned(p >> 32));
  fiber_destroy(ctx);
  ctx.uctx = uc;
}

void fiber_switch(FiberContext& from, FiberContext& to) {
  if (!from.uctx) from.uctx = new ucontext_t;
  swapcontext(static_cast<ucontext_t*>(from.uctx), static_cast<ucontext_t*>(to.uctx));
}

void fiber_destroy(FiberContext& ctx) {
  delete static_cast<ucontext_t*>(ctx.uctx);
  ctx.uctx = nullptr;
}

#endif

}  // namespace sim
}  // namespace bk
