"""torch backend of the LSTM ops: the per-step loop of torch's own native
CPU path (one addmm per step, then the pointwise gates), differentiated by
autograd. The whole-layer op takes x_proj, so torch's fused _VF.lstm (which
computes the input projection itself) cannot serve it."""
import torch


def lstm_cell_pre(z, c):
    """Gates from the pre-activations z [B, 4H] (i, f, g, o) and the cell c."""
    i, f, g, o = z.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def lstm_layer(x_proj, h0, c0, w_hh, w_hr, reverse):
    h, c = h0, c0
    steps = range(x_proj.shape[0] - 1, -1, -1) if reverse else range(x_proj.shape[0])
    ys = [None] * x_proj.shape[0]
    w_t = w_hh.t()
    for t in steps:
        m, c = lstm_cell_pre(torch.addmm(x_proj[t], h, w_t), c)
        h = m if w_hr is None else m @ w_hr.t()
        ys[t] = h
    y = torch.stack(ys) if ys else x_proj.new_empty(0, h0.shape[0], h0.shape[1])
    return y, h, c
