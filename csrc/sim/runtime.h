// Internal state of the emulator, shared by the scheduler, the warp
// collectives and the memory code. Kernels never include this file.
#pragma once
#include <setjmp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sim/api.h"
#include "sim/device_api.h"
#include "sim/fiber.h"

namespace bk {
namespace sim {

enum class Wait : uint8_t { Runnable, Barrier, Warp, Grid, Done };

enum class Coll : uint8_t { Sync, Shfl, Vote, Ldmatrix, Mma };
const char* coll_name(Coll c);

struct Block;
struct Launch;

// One pending cp.async copy; it lands (is copied) only at the wait that
// covers its group, so a missing wait reads poisoned shared memory.
struct CpAsync {
  void* dst;
  const void* src;
  int bytes, src_bytes;  // src_bytes < bytes zero-fills the rest
  int64_t group;
};

struct Fiber : Ids {
  FiberContext ctx;
  FiberStack* stack = nullptr;
  int linear = 0;  // thread index inside the block
  int lane = 0, warp = 0;
  Wait wait = Wait::Done;
  int group = -1;  // warp exchange group this fiber waits on / reads from
  Block* block = nullptr;
  std::vector<CpAsync> cp_pending;
  int64_t cp_committed = 0;  // number of commit_group calls so far
};

// One warp collective in flight: lanes deposit a 64-bit payload, the last
// arriving lane completes it (and, for mma, computes the whole tile once).
// Groups stay alive until every lane has read its result, so a fast lane that
// reaches its next collective writes a different group (at least double
// buffering; several pending groups allow disjoint sub-warp masks).
struct XGroup {
  bool used = false, complete = false;
  Coll kind = Coll::Sync;
  uint32_t mask = 0, arrived = 0, unread = 0;
  uint64_t val[32];
};
constexpr int kGroupsPerWarp = 8;
struct Warp {
  XGroup groups[kGroupsPerWarp];
  uint32_t existing = 0;  // lanes that exist (partial last warp)
  uint32_t exited = 0;
};

struct Block {
  Launch* launch = nullptr;
  uint3 idx;
  int linear = 0;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  char* smem = nullptr;
  size_t dyn_smem = 0, static_used = 0;  // static_used counts from dyn_smem
  std::vector<std::pair<const void*, size_t>> static_offsets;
  // Red zones after the dynamic region and after each static declaration:
  // (offset, name of what precedes it). 0xFF-filled, checked at block end.
  std::vector<std::pair<size_t, const char*>> red_zones;
};

struct Launch {
  const char* name;
  dim3 grid, block;
  size_t dyn_smem;
  bool cooperative;
  const std::function<void()>* body;
  Options opt;
};

// The running fiber of this OS thread (null outside a launch).
extern thread_local Fiber* tl_fiber;

// Gives control back to the scheduler; returns when this fiber is runnable.
void yield_to_scheduler();
// Stops the block (or cooperative grid) with an error naming the kernel and
// the current thread; does not return.
[[noreturn]] void fail(const std::string& what);
std::string thread_desc(const Fiber& f);

// scheduler.cpp: runs the fibers of `blocks` to completion; false on error,
// with the message in take_thread_error().
void init_block(Launch& L, Block& b, int linear, char* smem, size_t& stack_i);
bool run_fibers(const Launch& L, std::vector<Block*>& blocks);
std::string take_thread_error();

// memory.cpp
size_t shared_pool_bytes();
constexpr size_t kRedZone = 64;
void init_shared(Block& b);          // poison + first red zone, at block start
bool check_red_zones(Block& b);      // false with tl_error-ready text in red_zone_error()
std::string red_zone_error(const Block& b);
void cp_async_land(Fiber& f, int64_t upto_group);  // lands groups < upto_group
void install_fault_handler();
// Where the fault handler jumps (set by the scheduler while fibers run).
extern thread_local sigjmp_buf* tl_fault_jmp;
extern thread_local char tl_fault_msg[512];

}  // namespace sim
}  // namespace bk
