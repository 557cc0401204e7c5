// torch.ops.bigkernels_sim: the emulator's controls for tests, as torch ops
// (the extension is loaded as a plain library, without a Python module).
//   set_schedule(kind, seed)  kind: 0 forward, 1 reverse, 2 warp_ahead, 3 random
//   launched_kernels()        names launched since the last call (race reports)
#include <torch/library.h>

#include "sim/api.h"

namespace {

void set_schedule(int64_t kind, int64_t seed) {
  TORCH_CHECK(kind >= 0 && kind < bk::sim::kNumSchedules, "bigkernels_sim: schedule kind ", kind, " out of range");
  bk::sim::set_schedule(static_cast<bk::sim::Schedule>(kind), uint64_t(seed));
}

std::vector<std::string> launched_kernels() { return bk::sim::take_launched_kernels(); }

}  // namespace

TORCH_LIBRARY(bigkernels_sim, m) {
  m.def("set_schedule(int kind, int seed) -> ()", &set_schedule);
  m.def("launched_kernels() -> str[]", &launched_kernels);
}
