// CPU LSTM recurrence run by one OpenMP team for the whole sequence (float32,
// no projection): each thread owns a range of hidden units, keeps its slice
// of W_hh packed in its own cache, and meets the others at one barrier per
// step. Forward: the thread computes the four gates of its units straight
// from registers (panel_gemm.h) and writes h, c (and the saved gates).
// Backward: it computes dh for its units from the whole of the next step's
// dz, then its units' gate backward. See docs/lstm.md ("CPU team kernel").
#pragma once
#include "common/lstm_params.h"

namespace bk {
namespace cpu {

// Whether the team kernels serve this call (float32, no projection, enough
// steps to repay packing the weight once).
bool lstm_team_applies(const LstmParams& p);
// Everything lstm_layer_forward computes.
void lstm_team_forward(const LstmParams& p);
// The recurrence of lstm_layer_backward: grad_x_proj (dz), grad_h0, grad_c0;
// the weight gradient stays the caller's (large GEMMs after the loop).
void lstm_team_backward_recurrence(const LstmParams& p);

}  // namespace cpu
}  // namespace bk
