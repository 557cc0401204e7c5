// Glue helpers for the emulated kernels: every tensor a kernel touches is
// copied into a guard-page buffer (an overrun past its end faults, and the
// emulator names the kernel), outputs start as 0xFF bytes (NaN in every float
// format) so an element the kernel never writes shows up; errors from the
// emulator (deadlock, mask mismatch, ...) become Python exceptions. kInOut:
// read and written in place (copied in, and back out).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstring>
#include <optional>

#include "sim/api.h"

namespace bk {
namespace simglue {

class Guarded {
 public:
  enum Mode { kIn, kOut, kInOut };
  Guarded(const at::Tensor& t, Mode mode) : t_(t), mode_(mode), bytes_(size_t(t.numel()) * t.element_size()) {
    p_ = bk::sim::guarded_alloc(bytes_ ? bytes_ : 1);
    TORCH_CHECK(p_ != nullptr, "bigkernels cuda_sim: guard-page allocation failed");
    if (mode != kOut) memcpy(p_, t.data_ptr(), bytes_);
    else memset(p_, 0xFF, bytes_);
  }
  ~Guarded() {
    if (mode_ != kIn) memcpy(t_.data_ptr(), p_, bytes_);
    bk::sim::guarded_free(p_);
  }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  void* get() const { return p_; }

 private:
  at::Tensor t_;
  Mode mode_;
  size_t bytes_;
  void* p_;
};

// Dense tensors only (contiguous or channels_last): the glue's params
// builders have checked that before these copies are made.
inline std::optional<Guarded> guard_in(const std::optional<at::Tensor>& t) {
  if (!t.has_value()) return std::nullopt;
  return std::optional<Guarded>(std::in_place, *t, Guarded::kIn);
}

inline void check(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, "bigkernels cuda_sim: ", op, " failed: ", bk::sim::last_error());
}

}  // namespace simglue
}  // namespace bk
