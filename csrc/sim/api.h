// Host-side control of the SIMT emulator: schedules, launch entry, errors,
// guard-page buffers. Used by the launch macro, the torch glue and the tests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <vector_types.h>

namespace bk {
namespace sim {

// Order in which the fibers of a block run between synchronisation points.
// A kernel whose output differs between schedules has a race (missing
// __syncthreads, __syncwarp or cp.async wait).
enum class Schedule : int {
  Forward = 0,    // thread 0 first
  Reverse = 1,    // last thread first
  WarpAhead = 2,  // one warp (chosen by the seed) runs to its next barrier first
  Random = 3,     // seeded shuffle per block and per pass
};
constexpr int kNumSchedules = 4;
const char* schedule_name(Schedule s);

struct Options {
  Schedule schedule = Schedule::Forward;
  uint64_t seed = 0;
  int os_threads = 0;        // 0: BK_SIM_THREADS or the number of cores
  bool poison_smem = true;   // fill shared memory with 0xFF (NaN / -1) at block start
  size_t stack_bytes = 256 << 10;
};
// Process-wide; set it before a launch (tests run launches one at a time).
Options& options();
void set_schedule(Schedule s, uint64_t seed = 0);

// Runs `body` once per thread of every block. Returns cudaSuccess, or
// cudaErrorLaunchFailure with the reason (kernel name, block, threads) in
// last_error() (also for a fault inside the kernel).
cudaError_t launch_body(const char* name, dim3 grid, dim3 block, size_t dyn_smem,
                        bool cooperative, const std::function<void()>& body);
std::string last_error();
// Names of the kernels launched since the last call (for race reports).
std::vector<std::string> take_launched_kernels();

// Memory for tests: `bytes` placed so that its end touches a PROT_NONE page;
// a read or write past the end faults, and the emulator's fault handler names
// the kernel and thread before the process dies.
void* guarded_alloc(size_t bytes);
void guarded_free(void* p);

}  // namespace sim
}  // namespace bk
