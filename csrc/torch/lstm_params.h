// Tensor -> LstmParams for the glue (CPU now, CUDA later). Argument errors
// that name the user's arguments are raised in bigkernels/ops/lstm.py; these
// checks guard the C++ boundary. fp16/bf16 run in fp32 (the recurrence keeps
// h and c in fp32 between steps, as cuDNN and oneDNN do): `compute` casts.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/stack.h>
#include <c10/util/Exception.h>

#include <optional>
#include <tuple>
#include <utility>

#include "common/lstm_params.h"

namespace bk {
namespace glue {

inline at::ScalarType lstm_compute_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

inline at::Tensor compute(const at::Tensor& t) {
  return t.to(lstm_compute_type(t.scalar_type())).contiguous();
}

inline LstmParams make_lstm_params(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0,
                                   const at::Tensor& w_hh, const std::optional<at::Tensor>& w_hr, bool reverse) {
  TORCH_CHECK(x_proj.dim() == 3 && h0.dim() == 2 && c0.dim() == 2 && w_hh.dim() == 2,
              "bigkernels: lstm_layer expects x_proj [T,B,4H], h0 [B,P], c0 [B,H], w_hh [4H,P]");
  LstmParams p;
  p.T = x_proj.size(0);
  p.B = x_proj.size(1);
  p.H = c0.size(1);
  p.P = h0.size(1);
  TORCH_CHECK(x_proj.size(2) == 4 * p.H && c0.size(0) == p.B && h0.size(0) == p.B && w_hh.size(0) == 4 * p.H &&
                  w_hh.size(1) == p.P,
              "bigkernels: lstm_layer shapes disagree");
  TORCH_CHECK(w_hr.has_value() ? (w_hr->dim() == 2 && w_hr->size(0) == p.P && w_hr->size(1) == p.H) : p.P == p.H,
              "bigkernels: lstm_layer w_hr must be [P,H] (or absent with P == H)");
  p.reverse = reverse;
  p.dtype = x_proj.scalar_type() == at::kDouble ? DType::F64 : DType::F32;
  return p;
}

// Bidirectional ops: direction d's slice of an optional stacked tensor, and
// the two directions' output tuples stacked on a leading dim of 2.
inline std::optional<at::Tensor> dir_of(const std::optional<at::Tensor>& t, int64_t d) {
  return t.has_value() ? std::optional<at::Tensor>((*t)[d]) : std::nullopt;
}

template <typename Tuple, size_t... I>
Tuple stack_dirs(const Tuple& a, const Tuple& b, std::index_sequence<I...>) {
  return Tuple{at::stack({std::get<I>(a), std::get<I>(b)})...};
}
template <typename Tuple>
Tuple stack_dirs(const Tuple& a, const Tuple& b) {
  return stack_dirs(a, b, std::make_index_sequence<std::tuple_size<Tuple>::value>{});
}

}  // namespace glue
}  // namespace bk
