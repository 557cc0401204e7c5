"""Fused single-step LSTM and GRU cells for the `cuda` backend (and
`cuda_sim`): one launch computes x W_ih^T, h W_hh^T, the biases and the
gates (csrc/cuda/lstm/cell.cu). The forward saves the workspace of a
one-step layer, so the backward reuses that backend's layer backward op
(lstm_layer_backward / gru_layer_backward with T = 1) for the recurrent part
and adds the input GEMMs: dx = dz W_ih, dW_ih = dz^T x, db = sum dz.

Routed through `lstm_cell` / `gru_cell` (bigkernels/ops/lstm.py, gru.py);
the public functions stay there."""
import torch

from ..backends import register
from . import _checks
from ._library import call, define_native, op, register_autograd, wants_grad

_LSTM = ("(Tensor x, Tensor h, Tensor c, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, bool train) "
         "-> (Tensor, Tensor, Tensor, Tensor)")
_GRU = "(Tensor x, Tensor h, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, bool train) -> (Tensor, Tensor)"


def _fake_lstm(x, h, c, w_ih, w_hh, b_ih, b_hh, train):
    B, H = h.shape
    n = 1 if train else 0
    return (x.new_empty(B, H), x.new_empty(B, H), x.new_empty(n, B, 4 * H, dtype=torch.float32),
            x.new_empty(n, B, H, dtype=torch.float32))


def _fake_gru(x, h, w_ih, w_hh, b_ih, b_hh, train):
    B, H = h.shape
    return x.new_empty(B, H), x.new_empty(1 if train else 0, B, 4 * H, dtype=torch.float32)


define_native("lstm_cell_fused", _LSTM, _fake_lstm)
define_native("gru_cell_fused", _GRU, _fake_gru)


def _input_grads(dz, x, w_ih, has_b_ih, has_b_hh):
    """The input GEMM's share: dx, dW_ih and the bias gradients from dz [B, GH]."""
    db = dz.sum(0)
    return dz @ w_ih, dz.t() @ x, db if has_b_ih else None, db if has_b_hh else None


def _register_lstm(suffix):
    def setup_context(ctx, inputs, output):
        x, h, c, w_ih, w_hh, b_ih, b_hh, _ = inputs
        h1, _, gates, cs = output
        ctx.mark_non_differentiable(gates, cs)
        ctx.save_for_backward(x, h, c, w_ih, w_hh, b_ih, b_hh, h1, gates, cs)
        ctx.has_b = (b_ih is not None, b_hh is not None)

    def backward(ctx, gh1, gc1, _gg, _gcs):
        x, h, c, w_ih, w_hh, b_ih, b_hh, h1, gates, cs = ctx.saved_tensors
        if gates.shape[0] == 0:  # forward ran without a workspace (train=False): recompute it
            h1, _, gates, cs = op("lstm_cell_fused" + suffix)(x, h, c, w_ih, w_hh, b_ih, b_hh, True)
        dz, dh, dc, dw_hh, _ = op("lstm_layer_backward" + suffix)(
            gh1.unsqueeze(0).contiguous(), torch.zeros_like(h), gc1.contiguous(), h, c, w_hh, None,
            h1.unsqueeze(0), gates, cs, False)
        dx, dw_ih, db_ih, db_hh = _input_grads(dz[0], x, w_ih, *ctx.has_b)
        return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, None

    register_autograd("lstm_cell_fused" + suffix, backward, setup_context=setup_context)


def _register_gru(suffix):
    def setup_context(ctx, inputs, output):
        x, h, w_ih, w_hh, b_ih, b_hh, _ = inputs
        h1, ws = output
        ctx.mark_non_differentiable(ws)
        ctx.save_for_backward(x, h, w_ih, w_hh, b_ih, b_hh, h1, ws)
        ctx.has_b = (b_ih is not None, b_hh is not None)

    def backward(ctx, gh1, _gws):
        x, h, w_ih, w_hh, b_ih, b_hh, h1, ws = ctx.saved_tensors
        if ws.shape[0] == 0:  # forward ran without a workspace (train=False): recompute it
            h1, ws = op("gru_cell_fused" + suffix)(x, h, w_ih, w_hh, b_ih, b_hh, True)
        dxp, dh, dw_hh, db_hh = op("gru_layer_backward" + suffix)(
            gh1.unsqueeze(0).contiguous(), torch.zeros_like(h), h, w_hh, b_hh, h1.unsqueeze(0), ws, False)
        dx, dw_ih, db_ih, _ = _input_grads(dxp[0], x, w_ih, ctx.has_b[0], False)
        return dx, dh, dw_ih, dw_hh, db_ih, (db_hh if ctx.has_b[1] else None), None

    register_autograd("gru_cell_fused" + suffix, backward, setup_context=setup_context)


def _lstm(name):
    def run(x, h, c, w_ih, w_hh, b_ih, b_hh):
        train = wants_grad(x, h, c, w_ih, w_hh, b_ih, b_hh)
        return tuple(call(name, x, h, c, w_ih, w_hh, b_ih, b_hh, train, grad=train)[:2])

    return run


def _gru(name):
    def run(x, h, w_ih, w_hh, b_ih, b_hh):
        train = wants_grad(x, h, w_ih, w_hh, b_ih, b_hh)
        return call(name, x, h, w_ih, w_hh, b_ih, b_hh, train, grad=train)[0]

    return run


for _suffix, _backend in (("", "cuda"), ("_sim", "cuda_sim")):
    _register_lstm(_suffix)
    _register_gru(_suffix)
    register("lstm_cell", _backend, kernel="bigkernels::lstm_cell_fused" + _suffix,
             supports=_checks.cuda_recurrent_supports)(_lstm("lstm_cell_fused" + _suffix))
    register("gru_cell", _backend, kernel="bigkernels::gru_cell_fused" + _suffix,
             supports=_checks.cuda_recurrent_supports)(_gru("gru_cell_fused" + _suffix))

