// Fibers: cooperative user-level threads, one per emulated CUDA thread.
// A fiber runs on its own mmap'd stack and gives control back only where the
// kernel synchronises (barrier, warp collective, grid sync), so a block of
// 1024 threads costs 1024 stacks and no OS threads. Fibers never migrate
// between OS threads (the current-fiber pointer is thread_local).
#pragma once
#include <cstddef>

namespace bk {
namespace sim {

// Saved stack pointer (x86-64 fast path) or a ucontext_t (fallback).
struct FiberContext {
  void* sp = nullptr;
  void* uctx = nullptr;  // ucontext_t*, only in the fallback build
};

using FiberEntry = void (*)(void* arg);

// Stack memory, reserved lazily (MAP_NORESERVE) in slabs of kStacksPerSlab:
// one mapping per stack plus a guard page each would exceed the kernel's
// 65530-mapping limit for a cooperative grid of 132 x 256 fibers. Instead a
// canary at the bottom of each stack is checked when the fiber finishes.
struct FiberStack {
  char* base = nullptr;  // lowest usable byte
  size_t size = 0;
};
constexpr int kStacksPerSlab = 32;
// Appends kStacksPerSlab stacks of `size` bytes to `out`.
void stack_alloc_slab(size_t size, FiberStack* out);
void stack_free_slab(FiberStack& first);  // the first stack of a slab
void stack_set_canary(FiberStack& s);
bool stack_canary_ok(const FiberStack& s);

// Prepares `ctx` so that the first switch_to(.., ctx) calls entry(arg) on
// `stack`. The entry must never return: it switches away for good instead.
void fiber_init(FiberContext& ctx, FiberStack& stack, FiberEntry entry, void* arg);

// Saves the running context into `from` and resumes `to`.
void fiber_switch(FiberContext& from, FiberContext& to);

// Frees what fiber_init allocated (the ucontext in the fallback).
void fiber_destroy(FiberContext& ctx);

}  // namespace sim
}  // namespace bk
