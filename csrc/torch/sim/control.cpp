// torch.ops.bigkernels_sim: the emulator's controls for tests, as torch ops
// (the extension is loaded as a plain library, without a Python module).
//   set_schedule(kind, seed)  kind: 0 forward, 1 reverse, 2 warp_ahead, 3 random
//   launched_kernels()        names launched since the last call (race reports)
//   seeded_bug(which, n)      runs a deliberately wrong kernel on a guard-page
//                             tensor of n floats (tests of the error path)
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "cuda/testing/seeded_bugs.h"
#include "sim/api.h"
#include "torch/sim/guarded.h"

namespace {

void set_schedule(int64_t kind, int64_t seed) {
  TORCH_CHECK(kind >= 0 && kind < bk::sim::kNumSchedules, "bigkernels_sim: schedule kind ", kind, " out of range");
  bk::sim::set_schedule(static_cast<bk::sim::Schedule>(kind), uint64_t(seed));
}

std::vector<std::string> launched_kernels() { return bk::sim::take_launched_kernels(); }

at::Tensor seeded_bug(int64_t which, int64_t n) {
  TORCH_CHECK(which == 0 || which == 1, "bigkernels_sim: seeded bug ", which, " unknown");
  at::Tensor out = at::empty({n}, at::kFloat);
  bk::simglue::Guarded g(out, bk::simglue::Guarded::kOut);
  bk::simglue::check(bk::cuda::testing_seeded_bug(static_cast<bk::cuda::SeededBug>(which),
                                                  static_cast<float*>(g.get()), int(n), nullptr),
                     "seeded_bug");
  return out;
}

}  // namespace

TORCH_LIBRARY(bigkernels_sim, m) {
  m.def("seeded_bug(int which, int n) -> Tensor", &seeded_bug);
  m.def("set_schedule(int kind, int seed) -> ()", &set_schedule);
  m.def("launched_kernels() -> str[]", &launched_kernels);
}
