// Cases for the execution model and the four bug finders (each seeded bug
// must be caught). Usage: sim_tests <case> | sim_tests --list
#include <cmath>
#include <cstdint>

#include "harness.h"
#include "kernels.h"

namespace simtest {

std::map<std::string, CaseFn>& registry() {
  static std::map<std::string, CaseFn> r;
  return r;
}

SIM_CASE(indices) {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  std::vector<int> out(6 * 12 * 24, -1);
  EXPECT(indices(out.data(), grid, block) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  for (int b = 0; b < 12; ++b)
    for (int t = 0; t < 24; ++t) {
      const int* o = &out[6 * (b * 24 + t)];
      const int want[6] = {t % 4, t / 4 % 3, t / 12, b % 3, b / 3 % 2, b / 6};
      for (int i = 0; i < 6; ++i) EXPECT(o[i] == want[i], "block %d thread %d index %d: %d != %d", b, t, i, o[i], want[i]);
    }
  return true;
}

SIM_CASE(barrier_reduce) {
  const int blocks = 8;
  std::vector<float> in(blocks * 256);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 97) * 0.25f;
  std::vector<float> out(blocks);
  const std::string diff = differing_schedule([&] {
    block_sum(in.data(), out.data(), blocks, false);
    return bytes(out);
  });
  EXPECT(diff.empty(), "correct kernel differs under %s", diff.c_str());
  for (int b = 0; b < blocks; ++b) {
    double want = 0;
    for (int i = 0; i < 256; ++i) want += in[b * 256 + i];
    EXPECT(std::fabs(out[b] - want) < 1e-3, "block %d: %f != %f", b, out[b], want);
  }
  return true;
}

// Seeded bug 1 (race): a deleted __syncthreads must make schedules disagree.
SIM_CASE(race_missing_barrier) {
  std::vector<float> in(4 * 256);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 13) + 1.0f;
  std::vector<float> out(4);
  const std::string diff = differing_schedule([&] {
    block_sum(in.data(), out.data(), 4, true);
    return bytes(out);
  });
  EXPECT(!diff.empty(), "missing barrier not detected");
  return true;
}

// Seeded bug 2 (uninitialised shared memory): the unwritten slot reads NaN.
SIM_CASE(uninit_smem) {
  std::vector<float> out(128);
  EXPECT(uninit_smem(out.data(), false) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  for (int t = 0; t < 128; ++t) EXPECT(out[t] == float(127 - t), "t=%d", t);
  EXPECT(uninit_smem(out.data(), true) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  EXPECT(std::isnan(out[127 - 77]), "unwritten shared memory read as %f, not NaN", out[127 - 77]);
  return true;
}

static bool expect_error(cudaError_t e, const char* kernel, const char* what, bool thread_ids = true) {
  const std::string msg = bk::sim::last_error();
  fprintf(stderr, "reported: %s\n", msg.c_str());
  EXPECT(e == cudaErrorLaunchFailure, "launch returned %d", int(e));
  EXPECT(msg.find(kernel) != std::string::npos, "kernel name missing");
  EXPECT(msg.find(what) != std::string::npos, "'%s' missing", what);
  EXPECT(!thread_ids || msg.find("thread (") != std::string::npos, "thread ids missing");
  return true;
}

// Seeded bug 3b (out of bounds, shared memory): red zones after each array.
SIM_CASE(smem_out_of_bounds) {
  std::vector<float> out(33);
  if (!expect_error(smem_overflow(out.data(), false), "smem_overflow_kernel<false>", "past the end of tile", false))
    return false;
  return expect_error(smem_overflow(out.data(), true), "smem_overflow_kernel<true>",
                      "past the end of dynamic shared memory", false);
}

// Seeded bug 4 (deadlock), three ways: reported, never a hang.
SIM_CASE(deadlock_barrier) {
  std::vector<int> out(64);
  return expect_error(early_exit_barrier(out.data()), "early_exit_kernel", "__syncthreads not reached");
}
SIM_CASE(deadlock_warp_mask) {
  std::vector<int> out(32);
  return expect_error(half_warp_shfl(out.data()), "half_warp_kernel", "mask 0xffffffff");
}
SIM_CASE(deadlock_grid_sync) {
  std::vector<int> out(4);
  return expect_error(grid_skip(out.data()), "grid_skip_kernel", "grid sync not reached");
}
SIM_CASE(mask_omits_caller) {
  std::vector<int> out(32);
  return expect_error(mask_without_caller(out.data()), "mask_no_caller_kernel", "omits the calling lane");
}
SIM_CASE(mask_names_missing_lanes) {
  std::vector<int> out(8 * 48);
  return expect_error(warp_ops(out.data(), 48), "warp_ops_kernel", "do not exist");
}

SIM_CASE(cp_async_wait) {
  const int blocks = 3;
  std::vector<float> in(blocks * 256), out(blocks * 256);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i);
  const std::string diff = differing_schedule([&] {
    cp_async_stage(in.data(), out.data(), blocks, false);
    return bytes(out);
  });
  EXPECT(diff.empty(), "correct kernel differs under %s", diff.c_str());
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < 64; ++t)
      for (int i = 0; i < 4; ++i)
        EXPECT(out[b * 256 + 4 * t + i] == 2.0f * in[b * 256 + 4 * ((t + 1) % 64) + i], "b %d t %d", b, t);
  return true;
}

SIM_CASE(cp_async_small_and_zfill) {
  alignas(16) float in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<float> out(8, -1.0f);
  EXPECT(cp_async_small(in, out.data()) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  for (int i = 0; i < 8; ++i) EXPECT(out[i] == (i < 6 ? in[i] : 0.0f), "out[%d] = %f", i, out[i]);
  return true;
}

// Seeded bug 1b: a missing cp.async wait reads shared memory before the copy lands.
SIM_CASE(race_missing_cp_async_wait) {
  std::vector<float> in(256, 1.0f), out(256);
  EXPECT(cp_async_stage(in.data(), out.data(), 1, true) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  int nan = 0;
  for (float v : out) nan += std::isnan(v);
  EXPECT(nan > 0, "missing cp.async wait not visible");
  return true;
}

// Seeded bug 1c: a write-after-read hazard on a cp.async stage (missing
// barrier before the next copy into it): caught by the schedules that land
// copies at issue.
SIM_CASE(race_cp_async_stage_overwrite) {
  const int iters = 6;
  std::vector<float> in(64 * iters), out(64);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 61);
  std::string diff = differing_schedule([&] {
    pipeline(in.data(), out.data(), iters, false);
    return bytes(out);
  });
  EXPECT(diff.empty(), "correct pipeline differs under %s", diff.c_str());
  diff = differing_schedule([&] {
    pipeline(in.data(), out.data(), iters, true);
    return bytes(out);
  });
  EXPECT(!diff.empty(), "overwritten cp.async stage not detected");
  return true;
}

SIM_CASE(atomics) {
  unsigned count = 0;
  float sum = 0;
  EXPECT(atomic_count(&count, &sum, 37) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  EXPECT(count == 37 * 128, "count %u", count);
  EXPECT(sum == 0.5f * 37 * 128, "sum %f", sum);
  return true;
}

SIM_CASE(warp_ops) {
  std::vector<int> out(8 * 64);
  EXPECT(warp_ops(out.data(), 64) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  for (int t = 0; t < 64; ++t) {
    const int l = t % 32, *o = &out[8 * t];
    EXPECT(o[0] == 496, "xor sum lane %d: %d", l, o[0]);
    EXPECT(o[1] == l * (l + 1) / 2, "scan lane %d: %d", l, o[1]);
    EXPECT(o[2] == (l + 3 < 32 ? l + 3 : l) * 100, "down lane %d: %d", l, o[2]);
    EXPECT(o[3] == ((l & ~15) + 5) * 7, "idx width 16 lane %d: %d", l, o[3]);
    EXPECT(unsigned(o[4]) == 0xaaaaaaaau, "ballot %x", o[4]);
    EXPECT(o[5] == 1 && o[6] == 0, "any %d all %d", o[5], o[6]);
    EXPECT(o[7] == 2 * (31 - l) + 1, "double shfl lane %d: %d", l, o[7]);
  }
  return true;
}

SIM_CASE(cooperative) {
  std::vector<int> out(132);
  EXPECT(grid_exchange(out.data(), 132, 256) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  for (int b = 0; b < 132; ++b) EXPECT(out[b] == ((b + 1) % 132) * 10, "block %d: %d", b, out[b]);
  // 1024-thread blocks: 2 per SM, so 265 cannot all be resident on 132 SMs.
  EXPECT(grid_exchange(out.data(), 265, 1024) == cudaErrorCooperativeLaunchTooLarge, "%s", "not refused");
  return true;
}

SIM_CASE(guard_in_bounds) {
  const int n = 1000;
  float* p = static_cast<float*>(bk::sim::guarded_alloc((n + 1) * sizeof(float)));
  EXPECT(oob_write(p, n) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  bk::sim::guarded_free(p);
  return true;
}

// Seeded bug 3 (out of bounds): the write past the end faults on the guard
// page; the launch fails with a message naming the kernel and the thread.
SIM_CASE(guard_oob) {
  const int n = 1000;
  float* p = static_cast<float*>(bk::sim::guarded_alloc(n * sizeof(float)));
  const bool ok = expect_error(oob_write(p, n), "oob_kernel", "invalid memory access");
  bk::sim::guarded_free(p);
  std::vector<float> fine(64);  // the emulator keeps working after a fault
  EXPECT(oob_write(fine.data(), 32) == cudaSuccess, "%s", bk::sim::last_error().c_str());
  return ok;
}

}  // namespace simtest

int main(int argc, char** argv) {
  auto& r = simtest::registry();
  if (argc < 2 || !strcmp(argv[1], "--list")) {
    for (auto& [n, f] : r) printf("%s\n", n.c_str());
    return 0;
  }
  auto it = r.find(argv[1]);
  if (it == r.end()) {
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
  }
  const bool ok = it->second();
  printf("%s %s\n", argv[1], ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
