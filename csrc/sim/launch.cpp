// Launch entry: validates the configuration, runs the blocks on a pool of OS
// threads in the schedule's block order (or, for a cooperative launch, all
// blocks together in one scheduler), and records the first error.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "sim/runtime.h"

namespace bk {
namespace sim {

static std::mutex g_mu;
static std::string g_last_error;
static std::vector<std::string> g_launched;

Options& options() {
  static Options o;
  return o;
}
void set_schedule(Schedule s, uint64_t seed) {
  options().schedule = s;
  options().seed = seed;
}
const char* schedule_name(Schedule s) {
  static const char* n[] = {"forward", "reverse", "warp_ahead", "random"};
  return n[int(s)];
}
std::string last_error() {
  std::lock_guard<std::mutex> g(g_mu);
  return g_last_error;
}
std::vector<std::string> take_launched_kernels() {
  std::vector<std::string> out;
  std::lock_guard<std::mutex> g(g_mu);
  out.swap(g_launched);
  return out;
}

struct SmemBuf {
  char* p;
  SmemBuf() : p(static_cast<char*>(aligned_alloc(128, shared_pool_bytes()))) {}
  ~SmemBuf() { free(p); }
};

// H100 SXM: 132 SMs, 2048 threads, 32 blocks and 228 KiB shared memory per
// SM (1 KiB of it reserved per block). Registers, and static shared memory
// (placed on first use), are not known here: only dynamic smem counts.
static long max_coresident_blocks(int threads, size_t smem) {
  long by_threads = 2048 / (((threads + 31) / 32) * 32);
  long by_smem = long((228 << 10) / (smem + 1024));
  return 132 * std::min({32L, by_threads, by_smem});
}

static void record(const std::string& e) {
  std::lock_guard<std::mutex> g(g_mu);
  if (g_last_error.empty()) g_last_error = e;
}

cudaError_t launch_body(const char* name, dim3 grid, dim3 block, size_t dyn_smem, bool cooperative,
                        const std::function<void()>& body) {
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_last_error.clear();
    // Distinct names only: op-level tests launch thousands of times.
    if (std::find(g_launched.begin(), g_launched.end(), name) == g_launched.end()) g_launched.push_back(name);
  }
  install_fault_handler();
  Launch L{name, grid, block, dyn_smem, cooperative, &body, options()};
  const long threads = long(block.x) * block.y * block.z;
  const long nblocks = long(grid.x) * grid.y * grid.z;
  if (threads <= 0 || threads > 1024 || block.z > 64 || nblocks <= 0 || grid.y > 65535 ||
      grid.z > 65535 || dyn_smem + kRedZone > shared_pool_bytes()) {
    record(std::string("bk::sim: invalid launch configuration for kernel ") + name);
    return cudaErrorInvalidConfiguration;
  }
  if (cooperative) {
    if (nblocks > max_coresident_blocks(int(threads), dyn_smem)) {
      record(std::string("bk::sim: cooperative launch of ") + name + " with " + std::to_string(nblocks) +
             " blocks exceeds what one H100 holds resident");
      return cudaErrorCooperativeLaunchTooLarge;
    }
    // All blocks' fibers in one scheduler on this OS thread: grid sync needs them all resident.
    std::vector<Block> bs(nblocks);
    std::vector<SmemBuf> smem(nblocks);
    std::vector<Block*> ptrs;
    size_t stack_i = 0;
    for (long i = 0; i < nblocks; ++i) {
      init_block(L, bs[i], int(i), smem[i].p, stack_i);
      ptrs.push_back(&bs[i]);
    }
        if (!run_fibers(L, ptrs)) { record(take_thread_error()); return cudaErrorLaunchFailure; }
    return cudaSuccess;
  }
  std::vector<int> order(nblocks);
  for (long i = 0; i < nblocks; ++i) order[i] = int(i);
  if (L.opt.schedule == Schedule::Reverse) std::reverse(order.begin(), order.end());
  if (L.opt.schedule == Schedule::Random) std::shuffle(order.begin(), order.end(), std::mt19937_64(L.opt.seed));
  std::atomic<long> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    SmemBuf smem;
    Block b;
    std::vector<Block*> one{&b};
        for (long i; !failed && (i = next++) < nblocks;) {
      size_t stack_i = 0;
      init_block(L, b, order[i], smem.p, stack_i);
      if (!run_fibers(L, one)) { record(take_thread_error()); failed = true; }
    }
  };
  int nt = L.opt.os_threads;
  if (nt <= 0) {
    const char* env = getenv("BK_SIM_THREADS");
    nt = env ? atoi(env) : int(std::thread::hardware_concurrency());
  }
  nt = int(std::max(1L, std::min<long>(nt, nblocks)));
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  return failed ? cudaErrorLaunchFailure : cudaSuccess;
}

}  // namespace sim
}  // namespace bk
