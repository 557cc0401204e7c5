// cuda_sim implementations of the convolution ops: the CUDA kernels of
// csrc/cuda/conv compiled for the SIMT emulator, on CPU tensors. Every tensor
// a kernel touches is copied into a guard-page buffer (torch/sim/guarded.h).
#include <torch/library.h>

#include "cuda/conv/conv_bwd.h"
#include "cuda/conv/conv_fprop.h"
#include "cuda/conv/depthwise.h"
#include "cuda/epilogue/bias_act.h"
#include "torch/conv_glue.h"
#include "torch/sim/guarded.h"

namespace {

using bk::simglue::Guarded;

std::optional<Guarded> guard_opt(const at::Tensor& t, Guarded::Mode mode) {
  if (!t.defined()) return std::nullopt;
  return std::optional<Guarded>(std::in_place, t, mode);
}
void* ptr(const std::optional<Guarded>& g) { return g ? g->get() : nullptr; }

std::tuple<at::Tensor, at::Tensor> conv2d_sim(const at::Tensor& x, const at::Tensor& weight,
                                              const std::optional<at::Tensor>& bias,
                                              const std::optional<at::Tensor>& residual, at::IntArrayRef stride,
                                              at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                              int64_t activation, double alpha, bool save_preact) {
  auto call = bk::glue::prepare_conv(x, weight, bias, residual, stride, padding, dilation, groups, activation, alpha,
                                     save_preact);
  {
    Guarded gx(call.x, Guarded::kIn), gw(call.w, Guarded::kIn), gy(call.y, Guarded::kOut);
    auto gb = bk::simglue::guard_in(call.bias), gr = bk::simglue::guard_in(call.residual);
    auto gz = guard_opt(call.z, Guarded::kOut);
    bk::ConvParams p = call.p;
    p.x = gx.get(), p.w = gw.get(), p.y = gy.get(), p.z = ptr(gz);
    p.bias = ptr(gb), p.residual = ptr(gr);
    if (bk::glue::is_depthwise(x, weight, groups)) {
      bk::simglue::check(bk::cuda::depthwise_forward(p, nullptr), "conv2d (depthwise)");
    } else {
      TORCH_CHECK(bk::cuda::conv2d_fprop_supported(p), "bigkernels cuda_sim: conv2d: this call is not served by "
                  "the implicit-GEMM kernel (fp16/bf16, (C/groups) % 8 == 0)");
      bk::simglue::check(bk::cuda::conv2d_fprop(p, nullptr), "conv2d");
    }
  }
  return bk::glue::finish_conv(call);
}

// conv2d_stats: the implicit-GEMM forward (no activation, no residual) with
// the BN statistics epilogue; mean and biased variance in the compute type.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_stats_sim(const at::Tensor& x, const at::Tensor& weight,
                                                                const std::optional<at::Tensor>& bias,
                                                                at::IntArrayRef stride, at::IntArrayRef padding,
                                                                at::IntArrayRef dilation, int64_t groups) {
  auto call = bk::glue::prepare_conv(x, weight, bias, std::nullopt, stride, padding, dilation, groups, 0, 0.0, false);
  TORCH_CHECK(!bk::glue::is_depthwise(x, weight, groups) && bk::cuda::conv2d_fprop_supported(call.p),
              "bigkernels cuda_sim: conv2d_stats: not served by the implicit-GEMM kernel");
  at::Tensor ws = at::empty({bk::cuda::conv2d_stats_workspace(call.p)}, x.options().dtype(at::kFloat));
  at::Tensor mean = at::empty({call.p.k}, x.options().dtype(at::kDouble)), var = at::empty_like(mean);
  {
    Guarded gx(call.x, Guarded::kIn), gw(call.w, Guarded::kIn), gy(call.y, Guarded::kOut), gws(ws, Guarded::kOut);
    Guarded gm(mean, Guarded::kOut), gv(var, Guarded::kOut);
    auto gb = bk::simglue::guard_in(call.bias);
    bk::ConvParams p = call.p;
    p.x = gx.get(), p.w = gw.get(), p.y = gy.get(), p.bias = ptr(gb);
    p.stats_partial = static_cast<float*>(gws.get());
    bk::simglue::check(bk::cuda::conv2d_fprop(p, nullptr), "conv2d_stats");
    bk::simglue::check(bk::cuda::conv2d_stats_finish(p, p.stats_partial, static_cast<double*>(gm.get()),
                                                     static_cast<double*>(gv.get()), nullptr),
                       "conv2d_stats (finish)");
  }
  return {std::get<0>(bk::glue::finish_conv(call)), mean.to(at::kFloat), var.to(at::kFloat)};
}

struct SimKernels {
  int64_t activation;
  double alpha;

  at::Tensor act_backward(const at::Tensor& grad_y, const at::Tensor& saved) {
    auto p = bk::glue::make_bias_act_params(saved, std::nullopt, std::nullopt, activation, alpha, 1);
    at::Tensor grad_z = at::empty_like(saved);
    {
      Guarded gs(saved, Guarded::kIn), gg(grad_y, Guarded::kIn), gz(grad_z, Guarded::kOut);
      p.x = gs.get(), p.grad_y = gg.get(), p.grad_z = gz.get();
      bk::simglue::check(bk::cuda::bias_act_backward(p, nullptr), "conv2d_backward (activation)");
    }
    return grad_z;
  }

  void depthwise(const bk::glue::ConvCall& call, const at::Tensor& gz, at::Tensor& gx, at::Tensor& gw) {
    Guarded gin(gz, Guarded::kIn), xin(call.x, Guarded::kIn), win(call.w, Guarded::kIn);
    auto gxo = guard_opt(gx, Guarded::kOut), gwo = guard_opt(gw, Guarded::kOut);
    bk::ConvParams p = call.p;
    p.grad_z = gin.get(), p.x = xin.get(), p.w = win.get(), p.grad_x = ptr(gxo), p.grad_w = ptr(gwo);
    if (gx.defined()) bk::simglue::check(bk::cuda::depthwise_backward_data(p, nullptr), "conv2d_backward (data)");
    if (gw.defined()) bk::simglue::check(bk::cuda::depthwise_backward_weight(p, nullptr), "conv2d_backward (weight)");
  }

  void gemm(const bk::glue::ConvCall& call, const at::Tensor& g, const at::Tensor& saved, at::Tensor& gx,
            at::Tensor& gw, at::Tensor& gb, at::Tensor& gz) {
    bk::ConvParams p = call.p;
    at::Tensor ws = at::empty({gw.defined() ? bk::cuda::conv2d_wgrad_workspace(p) : 0}, g.options().dtype(at::kFloat));
    Guarded gin(g, Guarded::kIn), xin(call.x, Guarded::kIn), win(call.w, Guarded::kIn), wso(ws, Guarded::kOut);
    auto svin = guard_opt(saved, Guarded::kIn);
    auto gxo = guard_opt(gx, Guarded::kOut), gwo = guard_opt(gw, Guarded::kOut);
    auto gbo = guard_opt(gb, Guarded::kOut), gzo = guard_opt(gz, Guarded::kOut);
    p.grad_z = gin.get(), p.x = xin.get(), p.w = win.get(), p.saved = ptr(svin);
    p.grad_x = ptr(gxo), p.grad_w = ptr(gwo), p.grad_bias = ptr(gbo), p.grad_preact = ptr(gzo);
    TORCH_CHECK(bk::cuda::conv2d_bwd_supported(p), "bigkernels cuda_sim: conv2d_backward: not served");
    if (gx.defined()) bk::simglue::check(bk::cuda::conv2d_dgrad(p, nullptr), "conv2d_backward (data)");
    if (gw.defined())
      bk::simglue::check(bk::cuda::conv2d_wgrad(p, static_cast<float*>(wso.get()), nullptr), "conv2d_backward (weight)");
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> conv2d_backward_sim(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& saved,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, int64_t activation,
    double alpha, std::array<bool, 4> mask) {
  SimKernels k{activation, alpha};
  return bk::glue::conv_backward(grad_y, x, weight, saved, stride, padding, dilation, groups, activation, alpha, mask,
                                 k);
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("conv2d_sim", &conv2d_sim);
  m.impl("conv2d_backward_sim", &conv2d_backward_sim);
  m.impl("conv2d_stats_sim", &conv2d_stats_sim);
}
