// Strided inputs of the emulated attention kernels are read in place, as on
// the GPU: a tensor is guarded as the span of memory its strides reach (a
// transposed view, a broadcast mask with stride-0 dims), so a read past that
// span faults.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace bk {
namespace simglue {

// A 1-D view over the elements t's strides can reach, from t's first element.
inline at::Tensor span_of(const at::Tensor& t) {
  int64_t span = 1;
  for (int64_t d = 0; d < t.dim(); ++d) {
    TORCH_CHECK(t.stride(d) >= 0, "bigkernels cuda_sim: negative strides are not supported");
    span += (t.size(d) - 1) * t.stride(d);
  }
  return t.numel() == 0 ? t.reshape({0}) : t.as_strided({span}, {1});
}

}  // namespace simglue
}  // namespace bk
