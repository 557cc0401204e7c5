// CPU dispatch-key implementations of the pooling ops (schemas and argument
// checks: bigkernels/ops/pool.py; these checks guard the C++ boundary itself).
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "cpu/pool/max_pool2d.h"
#include "torch/epilogue_params.h"  // dtype_of

namespace {

// torch's pooling_output_shape.
int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (span >= 0 ? span / s : -((-span + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

// The planes of a 3-D or 4-D NCHW shape: planes, H, W.
bk::MaxPool2dParams plane_params(at::IntArrayRef in_shape) {
  TORCH_CHECK(in_shape.size() == 3 || in_shape.size() == 4, "bigkernels: max_pool2d takes a 3-D or 4-D input");
  bk::MaxPool2dParams p;
  const int64_t n = int64_t(in_shape.size());
  p.H = in_shape[n - 2];
  p.W = in_shape[n - 1];
  p.planes = 1;
  for (int64_t d = 0; d < n - 2; ++d) p.planes *= in_shape[d];
  TORCH_CHECK(p.H * p.W < (int64_t(1) << 31), "bigkernels: max_pool2d planes must hold fewer than 2^31 elements");
  return p;
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_cpu(const at::Tensor& x, at::IntArrayRef kernel_size,
                                                  at::IntArrayRef stride, at::IntArrayRef padding,
                                                  at::IntArrayRef dilation, bool ceil_mode, bool save_index) {
  TORCH_CHECK(x.is_contiguous(), "bigkernels: max_pool2d's cpu kernel takes a contiguous (NCHW) input");
  TORCH_CHECK(kernel_size.size() == 2 && stride.size() == 2 && padding.size() == 2 && dilation.size() == 2,
              "bigkernels: max_pool2d takes two-element kernel_size, stride, padding and dilation");
  auto p = plane_params(x.sizes());
  p.kH = kernel_size[0], p.kW = kernel_size[1], p.sH = stride[0], p.sW = stride[1];
  p.pH = padding[0], p.pW = padding[1], p.dH = dilation[0], p.dW = dilation[1];
  TORCH_CHECK(p.kH > 0 && p.kW > 0 && p.sH > 0 && p.sW > 0 && p.dH > 0 && p.dW > 0 && p.pH >= 0 && p.pW >= 0,
              "bigkernels: max_pool2d window arguments out of range");
  p.OH = pooled_size(p.H, p.kH, p.sH, p.pH, p.dH, ceil_mode);
  p.OW = pooled_size(p.W, p.kW, p.sW, p.pW, p.dW, ceil_mode);
  TORCH_CHECK(p.OH > 0 && p.OW > 0, "bigkernels: max_pool2d output size is too small");
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end() - 2);
  out_shape.push_back(p.OH);
  out_shape.push_back(p.OW);
  at::Tensor y = at::empty(out_shape, x.options());
  at::Tensor index = at::empty(save_index ? at::IntArrayRef(out_shape) : at::IntArrayRef({0}),
                               x.options().dtype(at::kInt));
  p.x = x.data_ptr();
  p.y = y.data_ptr();
  p.index = save_index ? index.data_ptr<int32_t>() : nullptr;
  p.dtype = bk::glue::dtype_of(x);
  bk::cpu::max_pool2d_forward(p);
  return {y, index};
}

at::Tensor max_pool2d_backward_cpu(const at::Tensor& grad_y, const at::Tensor& index, at::IntArrayRef input_size) {
  TORCH_CHECK(grad_y.is_contiguous() && index.is_contiguous() && index.scalar_type() == at::kInt &&
                  index.sizes() == grad_y.sizes(),
              "bigkernels: max_pool2d_backward takes a contiguous grad_y and its int32 index of the same shape");
  auto p = plane_params(input_size);  // the backward needs only the planes and the indices
  TORCH_CHECK(grad_y.dim() == int64_t(input_size.size()), "bigkernels: max_pool2d_backward: grad_y's rank differs");
  p.OH = grad_y.size(-2);
  p.OW = grad_y.size(-1);
  at::Tensor grad_x = at::empty(input_size, grad_y.options());
  p.grad_y = grad_y.data_ptr();
  p.grad_x = grad_x.data_ptr();
  p.index = const_cast<int32_t*>(index.data_ptr<int32_t>());
  p.dtype = bk::glue::dtype_of(grad_y);
  bk::cpu::max_pool2d_backward(p);
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("max_pool2d", &max_pool2d_cpu);
  m.impl("max_pool2d_backward", &max_pool2d_backward_cpu);
}
