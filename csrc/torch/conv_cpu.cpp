// CPU dispatch-key implementations of the fused convolution ops (schemas:
// bigkernels/ops/conv.py):
//   y = act(conv(x, w) + bias + residual)
// The convolution is oneDNN's, inside torch: its fused post-ops (bias, sum,
// eltwise) through mkldnn::_convolution_pointwise where they apply (fp32;
// bf16 without a residual), otherwise at::convolution followed by the
// foundation's one-pass epilogue (bk::cpu::bias_act_forward), in place.
// Backward: the epilogue's backward, then at::convolution_backward.
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/convolution.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <array>
#include <mutex>

#include "cpu/epilogue/bias_act.h"
#include "torch/epilogue_params.h"

namespace {

at::MemoryFormat format_of(const at::Tensor& x) {
  return (!x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast)) ? at::MemoryFormat::ChannelsLast
                                                                                 : at::MemoryFormat::Contiguous;
}

// oneDNN's unary post-op for each bk::Act (order of bigkernels/ops/activation.py).
struct PostOp {
  const char* attr;
  const char* algorithm;  // gelu's flavour, else null
  bool supported;
};
PostOp post_op(bk::Act act) {
  switch (act) {
    case bk::Act::None: return {"none", nullptr, true};
    case bk::Act::Relu: return {"relu", nullptr, true};
    case bk::Act::Relu6: return {"hardtanh", nullptr, true};
    case bk::Act::LeakyRelu: return {"leaky_relu", nullptr, true};
    case bk::Act::Silu: return {"swish", nullptr, true};
    case bk::Act::Gelu: return {"gelu", "none", true};
    case bk::Act::GeluTanh: return {"gelu", "tanh", true};
    case bk::Act::Hardswish: return {"hardswish", nullptr, true};
    case bk::Act::Sigmoid: return {"sigmoid", nullptr, true};
    case bk::Act::Tanh: return {"tanh", nullptr, true};
  }
  return {"none", nullptr, false};
}

c10::List<std::optional<at::Scalar>> post_op_scalars(bk::Act act, double alpha) {
  c10::List<std::optional<at::Scalar>> s;
  if (act == bk::Act::Relu6) {
    s.push_back(at::Scalar(0.0));
    s.push_back(at::Scalar(6.0));
  } else if (act == bk::Act::LeakyRelu) {
    s.push_back(at::Scalar(alpha));
  }
  return s;
}

std::vector<int64_t> vec(at::IntArrayRef a) { return a.vec(); }

at::Tensor mkldnn_conv(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& bias,
                       const std::optional<at::Tensor>& residual, at::IntArrayRef stride, at::IntArrayRef padding,
                       at::IntArrayRef dilation, int64_t groups, bk::Act act, double alpha) {
  const PostOp post = post_op(act);
  c10::IValue algorithm = post.algorithm ? c10::IValue(std::string(post.algorithm)) : c10::IValue();
  c10::Stack stack;
  if (residual.has_value()) {
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_convolution_pointwise", "binary");
    // The binary op takes relu or nothing after the add (others: "Unary
    // Fusion behavior undefined", torch 2.13); callers apply the rest.
    TORCH_CHECK(act == bk::Act::None || act == bk::Act::Relu, "bigkernels: mkldnn add + ", post.attr);
    c10::IValue unary = act == bk::Act::Relu ? c10::IValue(std::string("relu")) : c10::IValue();
    stack = {x, *residual, w, bias, vec(padding), vec(stride), vec(dilation), groups, std::string("add"),
             c10::IValue(at::Scalar(1.0)), unary, post_op_scalars(act, alpha), c10::IValue()};
    op.callBoxed(stack);
  } else {
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_convolution_pointwise", "");
    stack = {x, w, bias, vec(padding), vec(stride), vec(dilation), groups, std::string(post.attr),
             post_op_scalars(act, alpha), algorithm};
    op.callBoxed(stack);
  }
  return stack[0].toTensor();
}

// Whether the fused oneDNN op serves a dtype (with a residual, or without) on
// this CPU: probed once on a tiny problem, because its gaps depend on the
// build and the ISA (measured on our AVX-512-BF16 CI machines: fp16 needs
// AVX512-FP16 and fails; bf16 + "add" post-op asserts; fp64 is unsupported).
bool mkldnn_serves(at::ScalarType dtype, bool with_residual) {
  static std::once_flag once;
  static std::array<std::array<bool, 2>, 2> ok{};  // [fp32, bf16][residual]
  std::call_once(once, [] {
    if (!c10::Dispatcher::singleton().findSchema({"mkldnn::_convolution_pointwise", ""}).has_value()) return;
    const at::ScalarType types[2] = {at::kFloat, at::kBFloat16};
    for (int t = 0; t < 2; ++t) {
      for (int r = 0; r < 2; ++r) {
        try {
          auto opts = at::TensorOptions().dtype(types[t]);
          at::Tensor x = at::zeros({1, 2, 3, 3}, opts), w = at::zeros({2, 2, 1, 1}, opts);
          std::optional<at::Tensor> res;
          if (r) res = at::zeros({1, 2, 3, 3}, opts);
          mkldnn_conv(x, w, std::nullopt, res, {1, 1}, {0, 0}, {1, 1}, 1, bk::Act::Relu, 0.0);
          ok[t][r] = true;
        } catch (const std::exception&) {
          ok[t][r] = false;
        }
      }
    }
  });
  const int t = dtype == at::kFloat ? 0 : dtype == at::kBFloat16 ? 1 : -1;
  return t >= 0 && ok[t][with_residual ? 1 : 0];
}

at::Tensor empty0(const at::Tensor& like) { return at::empty({0}, like.options()); }

// y = act(z + residual) (residual optional), written into `out` (may alias z).
void epilogue(const at::Tensor& z, const std::optional<at::Tensor>& residual, const at::Tensor& out, int64_t act,
              double alpha) {
  auto p = bk::glue::make_bias_act_params(z, std::nullopt, residual, act, alpha, 1);
  p.y = out.data_ptr();
  bk::cpu::bias_act_forward(p);
}

std::tuple<at::Tensor, at::Tensor> conv2d_cpu(const at::Tensor& x, const at::Tensor& weight,
                                              const std::optional<at::Tensor>& bias,
                                              const std::optional<at::Tensor>& residual, at::IntArrayRef stride,
                                              at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                              int64_t activation, double alpha, bool save_preact) {
  TORCH_CHECK(activation >= 0 && activation < bk::kNumActs, "bigkernels: activation code out of range");
  const auto act = static_cast<bk::Act>(activation);
  const auto fmt = format_of(x);
  const bool has_res = residual.has_value();
  if (x.numel() > 0 && mkldnn_serves(x.scalar_type(), has_res)) {
    // The whole epilogue as oneDNN post-ops, unless the pre-activation must
    // be kept for the backward: then post-ops up to the sum, and our pass.
    const bool post_act = !save_preact && (!has_res || act == bk::Act::Relu);
    at::Tensor z = mkldnn_conv(x, weight, bias, residual, stride, padding, dilation, groups,
                               post_act ? act : bk::Act::None, alpha)
                       .contiguous(fmt);
    if (!save_preact) {
      if (!post_act && act != bk::Act::None) epilogue(z, std::nullopt, z, activation, alpha);  // in place
      return {z, empty0(z)};
    }
    at::Tensor y = at::empty_like(z);
    epilogue(z, std::nullopt, y, activation, alpha);
    return {y, z};
  }
  at::Tensor c = at::convolution(x, weight, bias, stride, padding, dilation, false, {0, 0}, groups).contiguous(fmt);
  std::optional<at::Tensor> res;
  if (has_res) res = residual->strides() == c.strides() ? *residual : residual->contiguous(fmt);
  if (!save_preact) {
    if (act != bk::Act::None || has_res) epilogue(c, res, c, activation, alpha);  // in place
    return {c, empty0(c)};
  }
  if (has_res) epilogue(c, res, c, 0, alpha);  // c := z = conv + bias + residual
  at::Tensor y = at::empty_like(c);
  epilogue(c, std::nullopt, y, activation, alpha);
  return {y, c};
}

// Returns (grad_x, grad_weight, grad_bias, grad_z); an entry whose mask is
// false is an empty tensor. grad_z (= grad_residual) is returned only for an
// activation other than none (for none it is grad_y itself, which an op may
// not return).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> conv2d_backward_cpu(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& saved,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, int64_t activation,
    double alpha, std::array<bool, 4> output_mask) {
  const auto act = static_cast<bk::Act>(activation);
  at::Tensor gz = grad_y;
  if (act != bk::Act::None) {
    TORCH_CHECK(saved.sizes() == grad_y.sizes(), "bigkernels: conv2d_backward needs the saved activation input");
    at::Tensor gy = grad_y.strides() == saved.strides() ? grad_y : grad_y.contiguous(format_of(saved));
    auto p = bk::glue::make_bias_act_params(saved, std::nullopt, std::nullopt, activation, alpha, 1);
    gz = at::empty_like(saved);
    p.grad_y = gy.data_ptr();
    p.grad_z = gz.data_ptr();
    bk::cpu::bias_act_backward(p);
  }
  std::array<bool, 3> mask{output_mask[0], output_mask[1], output_mask[2]};
  at::Tensor gx, gw, gb;
  if (mask[0] || mask[1] || mask[2]) {
    std::vector<int64_t> bias_sizes{weight.size(0)};
    std::tie(gx, gw, gb) = at::convolution_backward(gz, x, weight, bias_sizes, stride, padding, dilation, false,
                                                    {0, 0}, groups, mask);
  }
  auto or_empty = [&](const at::Tensor& t, bool want) { return want && t.defined() ? t : empty0(x); };
  const bool want_gz = output_mask[3] && act != bk::Act::None;
  // Gradients in their inputs' layouts (oneDNN returns a channels_last weight
  // gradient for channels_last x; the op layer passes weights contiguous).
  if (gx.defined()) gx = gx.contiguous(format_of(x));
  if (gw.defined()) gw = gw.contiguous(weight.suggest_memory_format());
  return {or_empty(gx, mask[0]), or_empty(gw, mask[1]), or_empty(gb, mask[2]), want_gz ? gz : empty0(x)};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("conv2d", &conv2d_cpu);
  m.impl("conv2d_backward", &conv2d_backward_cpu);
}
