"""Whole-layer GRU and the GRU cell, torch's equations (gate order r, z, n;
the reset gate multiplies (W_hn h + b_hn), as torch and cuDNN do):
  r = sig(x_r + W_hr h + b_hr), z = sig(x_z + W_hz h + b_hz)
  n = tanh(x_n + r * (W_hn h + b_hn)),  h' = (1 - z) n + z h
x_proj = x W_ih^T + b_ih for all timesteps is computed by the caller.
Backends: torch (composition) and reference; a C++ kernel is not written yet."""
from ..backends import dispatch, register, set_auto_order
from ..composite import lstm as composite
from ..reference import lstm as reference
from . import _rnn_checks as rc

register("gru_layer", "torch")(composite.gru_layer)
register("gru_layer", "reference")(reference.gru_layer)
set_auto_order("gru_layer", "cpu", ("cpu", "torch"))


def gru_layer(x_proj, h0, w_hh, b_hh=None, *, reverse=False):
    """x_proj: [T, B, 3H]; h0: [B, H]; w_hh: [3H, H]; b_hh: [3H] or None.
    Returns (y [T, B, H], h_T [B, H])."""
    dtype = rc.tensors([(x_proj, "x_proj"), (h0, "h0"), (w_hh, "w_hh"), (b_hh, "b_hh")], ("b_hh",))
    rc.flag(reverse, "reverse")
    T, B, H = rc.seq(x_proj, 3)
    rc.shape(h0, (B, H), "h0", "[batch, hidden_size]")
    rc.shape(w_hh, (3 * H, H), "w_hh", "[3*hidden_size, hidden_size]")
    if b_hh is not None:
        rc.shape(b_hh, (3 * H,), "b_hh", "[3*hidden_size]")
    x_proj, h0, w_hh, b_hh = rc.cast(dtype, x_proj, h0, w_hh, b_hh)
    return dispatch("gru_layer", x_proj.device.type, x_proj, h0, w_hh, b_hh, reverse)


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step, torch.nn.GRUCell's equations: x [B, I] (or [I]), h [B, H]
    (or [H]). Returns h'."""
    named = [(x, "x"), (h, "h"), (w_ih, "w_ih"), (w_hh, "w_hh"), (b_ih, "b_ih"), (b_hh, "b_hh")]
    dtype = rc.tensors(named, ("b_ih", "b_hh"))
    batched = x.dim() == 2
    x2 = rc.cell_input(x, w_ih, 3)
    H = w_ih.shape[0] // 3
    rc.shape(h, (x2.shape[0], H) if batched else (H,), "h", "[batch, hidden_size] like x")
    x2, h, w_ih, w_hh, b_ih, b_hh = rc.cast(dtype, x2, h, w_ih, w_hh, b_ih, b_hh)
    x_proj = rc.linear(x2, w_ih, b_ih).unsqueeze(0).contiguous()
    _, h1 = gru_layer(x_proj, h if batched else h.unsqueeze(0), w_hh, b_hh)
    return h1 if batched else h1.squeeze(0)
