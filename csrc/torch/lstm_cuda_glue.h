// Tensor side of the CUDA LSTM kernels, shared by the CUDA glue
// (lstm_cuda.cpp) and the emulator glue (sim/lstm_sim.cpp): prepares the
// storage-dtype inputs, the fp32 workspaces and the params, then after the
// kernel assembles the op's outputs. The weight gradients are large GEMMs over
// all T*B rows, run here with ATen (cuBLAS on the GPU, plain CPU ops under the
// emulator), after the recurrence.
//
// Every pointer the kernel reads or writes is listed in `bindings`, so the
// emulator glue can move each tensor into a guard-page buffer first.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/tanh.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cuda/lstm/lstm_cuda.h"
#include "torch/lstm_params.h"

namespace bk {
namespace glue {

using LstmTensors5 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

struct Binding {
  at::Tensor t;
  bool out;                          // written by the kernel
  std::function<void(void*)> bind;   // stores the pointer the kernel uses
};

// BIGKERNELS_LSTM_PATH=persistent | persistent_fma | per_step forces a path (tests, benchmarks);
// unset or anything else: the plan's rule.
inline bk::cuda::LstmPath lstm_forced_path() {
  const char* v = std::getenv("BIGKERNELS_LSTM_PATH");
  if (v && !std::strcmp(v, "persistent")) return bk::cuda::LstmPath::Persistent;
  if (v && !std::strcmp(v, "per_step")) return bk::cuda::LstmPath::PerStep;
  if (v && !std::strcmp(v, "persistent_fma")) return bk::cuda::LstmPath::PersistentFma;
  return bk::cuda::LstmPath::Auto;
}

inline DType lstm_storage(const at::Tensor& x) {
  switch (x.scalar_type()) {
    case at::kFloat: return DType::F32;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    default: TORCH_CHECK(false, "bigkernels: the cuda lstm kernels serve float32, float16 and bfloat16, got ",
                         x.scalar_type(), " (float64 is served by the cpu/torch backends)");
  }
  return DType::F32;
}

inline at::Tensor f32(const at::Tensor& t) { return t.to(at::kFloat).contiguous(); }

template <typename P>
std::function<void(void*)> slot(P* field) {
  return [field](void* v) { *field = static_cast<P>(v); };
}

struct LstmForwardCall {
  LstmParams p;
  bk::cuda::LstmCudaWork w;
  std::vector<Binding> bindings;
  at::Tensor h0f, c0f, y, gates, cs, hbuf, cstate;
  at::ScalarType out_type;

  // into: {y, gates, cs} to write (slices of a bidirectional call's stacked
  // outputs); undefined ones are allocated here.
  LstmForwardCall(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                  const std::optional<at::Tensor>& w_hr, bool reverse, bool train,
                  const std::array<at::Tensor, 3>& into = {}) {
    p = make_lstm_params(x_proj, h0, c0, w_hh, w_hr, reverse);
    w.storage = lstm_storage(x_proj);
    out_type = x_proj.scalar_type();
    const auto o32 = x_proj.options().dtype(at::kFloat);
    h0f = f32(h0);
    c0f = f32(c0);
    y = into[0].defined() ? into[0] : at::empty({p.T, p.B, p.P}, x_proj.options());
    gates = into[1].defined() ? into[1] : at::empty({train ? p.T : 0, p.B, 4 * p.H}, o32);
    cs = into[2].defined() ? into[2] : at::empty({train ? p.T : 0, p.B, p.H}, o32);
    hbuf = at::empty({2, p.B, p.P}, o32);
    cstate = at::empty({p.B, p.H}, o32);
    bindings = {{x_proj.contiguous(), false, slot(&p.x_proj)},
                {w_hh.to(out_type).contiguous(), false, slot(&p.w_hh)},
                {h0f, false, slot(&w.h0)}, {c0f, false, slot(&w.c0)}, {y, true, slot(&p.y)},
                {hbuf, true, slot(&w.hbuf)}, {cstate, true, slot(&w.cstate)}};
    if (w_hr.has_value()) {
      bindings.push_back({w_hr->to(out_type).contiguous(), false, slot(&p.w_hr)});
      bindings.push_back({at::empty({p.B, p.H}, o32), true, slot(&w.mbuf)});
    }
    if (train) {
      bindings.push_back({gates, true, slot(&p.gates)});
      bindings.push_back({cs, true, slot(&p.cs)});
    }
  }

  LstmTensors5 outputs() const {
    at::Tensor hT = p.T > 0 ? hbuf[(p.T - 1) % 2] : h0f;
    at::Tensor cT = p.T > 0 ? cstate : c0f;
    // copies: with T = 0 these would otherwise alias the inputs h0/c0
    return {y, hT.to(out_type, false, true), cT.to(out_type, false, true), gates, cs};
  }
};

struct LstmBackwardCall {
  LstmParams p;
  bk::cuda::LstmCudaWork w;
  std::vector<Binding> bindings;
  at::Tensor ghT, gcT, h0f, y, gates, cs, w_hh_s, w_hr_s, dz, dc, dh_all;
  at::ScalarType out_type;

  LstmBackwardCall(const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& grad_cT,
                   const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                   const std::optional<at::Tensor>& w_hr, const at::Tensor& y_, const at::Tensor& gates_,
                   const at::Tensor& cs_, bool reverse) {
    p = make_lstm_params(grad_y.new_empty({y_.size(0), y_.size(1), 4 * c0.size(1)}), h0, c0, w_hh, w_hr, reverse);
    TORCH_CHECK(gates_.size(0) == p.T && cs_.size(0) == p.T,
                "bigkernels: lstm_layer_backward needs the workspace of a forward run with train=True");
    w.storage = lstm_storage(grad_y);
    out_type = grad_y.scalar_type();
    const auto o32 = grad_y.options().dtype(at::kFloat);
    ghT = f32(grad_hT);
    gcT = f32(grad_cT);
    h0f = f32(h0);
    y = y_;
    gates = f32(gates_);
    cs = f32(cs_);
    w_hh_s = w_hh.to(out_type).contiguous();
    dz = at::empty({p.T, p.B, 4 * p.H}, o32);
    dc = at::empty({p.B, p.H}, o32);
    bindings = {{grad_y.contiguous(), false, slot(&p.grad_y)}, {w_hh_s, false, slot(&p.w_hh)},
                {gates, false, slot(&p.gates)}, {cs, false, slot(&p.cs)}, {f32(c0), false, slot(&w.c0)},
                {ghT, false, slot(&w.grad_hT)}, {gcT, false, slot(&w.grad_cT)}, {dz, true, slot(&w.dz)},
                {dc, true, slot(&w.dc)}};
    if (w_hr.has_value()) {
      w_hr_s = w_hr->to(out_type).contiguous();
      dh_all = at::empty({p.T, p.B, p.P}, o32);
      bindings.push_back({w_hr_s, false, slot(&p.w_hr)});
      bindings.push_back({dh_all, true, slot(&w.dh_all)});
    }
  }

  // After the kernel: grad_h0 = dz of the last processed step times W_hh,
  // dW_hh = sum_t dz_t^T h_{t-1} (h0, or y of the forward predecessor),
  // dW_hr = sum_t dh_t^T m_t with m = o tanh(c) rebuilt from the workspace.
  LstmTensors5 outputs() const {
    const int64_t T = p.T, B = p.B, H = p.H, P = p.P, G = 4 * H;
    const bool proj = w_hr_s.defined();
    if (T == 0) {
      at::Tensor dwr = at::zeros({proj ? P : 0, proj ? H : 0}, ghT.options().dtype(out_type));
      return {dz.to(out_type), ghT.to(out_type, false, true), gcT.to(out_type, false, true),
              at::zeros({G, P}, dwr.options()), dwr};
    }
    const at::Tensor wf = w_hh_s.to(at::kFloat);
    const at::Tensor dh0 = at::mm(dz[p.reverse ? T - 1 : 0], wf);
    const at::Tensor yf = y.to(at::kFloat);
    const at::Tensor h_prev = T == 1 ? h0f.unsqueeze(0)
                              : p.reverse ? at::cat({yf.slice(0, 1, T), h0f.unsqueeze(0)}, 0)
                                          : at::cat({h0f.unsqueeze(0), yf.slice(0, 0, T - 1)}, 0);
    const at::Tensor dw = at::mm(dz.reshape({T * B, G}).t(), h_prev.reshape({T * B, P}));
    at::Tensor dwr = at::empty({0, 0}, dw.options());
    if (proj) {
      const at::Tensor m = gates.slice(2, 3 * H, G).mul(at::tanh(cs));
      dwr = at::mm(dh_all.reshape({T * B, P}).t(), m.reshape({T * B, H}));
    }
    return {dz.to(out_type), dh0.to(out_type), dc.to(out_type), dw.to(out_type), dwr.to(out_type)};
  }
};

// Both directions of a bidirectional layer (inputs stacked on a leading dim
// of 2: [0] forward, [1] reverse) as two one-direction calls of this glue
// (One: LstmForwardCall, GruBackwardCall, ...), built in place by make(d)
// (guaranteed copy elision: their bindings point into them), for the
// *_bidir host entry points.
template <typename One>
struct BidirCall {
  One d0, d1;
  std::vector<Binding> bindings;

  template <typename Make>
  explicit BidirCall(Make make) : d0(make(0)), d1(make(1)) {
    bindings = d0.bindings;
    bindings.insert(bindings.end(), d1.bindings.begin(), d1.bindings.end());
  }

  // run(const Params p[2], const Work w[2]), after the bindings are bound.
  template <typename Launch>
  cudaError_t launch(Launch run) const {
    using P = std::remove_const_t<decltype(d0.p)>;
    using W = std::remove_const_t<decltype(d0.w)>;
    const P p[2] = {d0.p, d1.p};
    const W w[2] = {d0.w, d1.w};
    return run(p, w);
  }
};

// The LSTM forward: y and the saved gates/cells are allocated stacked and
// each direction writes its slice (no copy afterwards).
struct LstmBidirForwardCall {
  at::Tensor y, gates, cs;
  BidirCall<LstmForwardCall> dirs;

  LstmBidirForwardCall(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                       const std::optional<at::Tensor>& w_hr, bool train)
      : y(at::empty({2, x_proj.size(1), x_proj.size(2), h0.size(2)}, x_proj.options())),
        gates(at::empty({2, train ? x_proj.size(1) : 0, x_proj.size(2), x_proj.size(3)},
                        x_proj.options().dtype(at::kFloat))),
        cs(at::empty({2, train ? x_proj.size(1) : 0, x_proj.size(2), c0.size(2)}, x_proj.options().dtype(at::kFloat))),
        dirs([&](int64_t d) {
          return LstmForwardCall(x_proj[d], h0[d], c0[d], w_hh[d], dir_of(w_hr, d), d == 1, train,
                                 {y[d], gates[d], cs[d]});
        }) {}

  LstmTensors5 outputs() const {
    const LstmTensors5 a = dirs.d0.outputs(), b = dirs.d1.outputs();
    return {y, at::stack({std::get<1>(a), std::get<1>(b)}), at::stack({std::get<2>(a), std::get<2>(b)}), gates, cs};
  }
};

}  // namespace glue
}  // namespace bk
