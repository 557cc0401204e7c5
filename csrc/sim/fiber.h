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

// Stack memory: reserved lazily (MAP_NORESERVE) with a PROT_NONE guard page
// below it, so a stack overflow faults instead of corrupting a neighbour.
struct FiberStack {
  char* base = nullptr;  // lowest usable byte
  size_t size = 0;
};
FiberStack stack_alloc(size_t size);
void stack_free(FiberStack& s);

// Prepares `ctx` so that the first switch_to(.., ctx) calls entry(arg) on
// `stack`. The entry must never return: it switches away for good instead.
void fiber_init(FiberContext& ctx, FiberStack& stack, FiberEntry entry, void* arg);

// Saves the running context into `from` and resumes `to`.
void fiber_switch(FiberContext& from, FiberContext& to);

// Frees what fiber_init allocated (the ucontext in the fallback).
void fiber_destroy(FiberContext& ctx);

}  // namespace sim
}  // namespace bk
