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


def gru_layer(x_proj, h0, w_hh, b_hh, reverse):
    """torch's GRU: the reset gate multiplies (W_hn h + b_hn), gate order r, z, n."""
    h = h0
    T = x_proj.shape[0]
    ys = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        xr, xz, xn = x_proj[t].chunk(3, dim=-1)
        hr, hz, hn = torch.nn.functional.linear(h, w_hh, b_hh).chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = n + z * (h - n)
        ys[t] = h
    y = torch.stack(ys) if ys else x_proj.new_empty(0, *h0.shape)
    return y, h


def rnn_layer(x_proj, h0, w_hh, nonlinearity, reverse):
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    h = h0
    T = x_proj.shape[0]
    ys = [None] * T
    w_t = w_hh.t()
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        h = act(torch.addmm(x_proj[t], h, w_t))
        ys[t] = h
    y = torch.stack(ys) if ys else x_proj.new_empty(0, *h0.shape)
    return y, h


def layernorm_lstm_layer(x_proj, h0, c0, w_hh, ln_hh, ln_c, eps, reverse):
    """Layer-normalised LSTM (Ba et al. 2016; haste's LayerNormLSTM): the
    caller passes x_proj = LN_ih(x W_ih^T) + b; per step
    z = x_proj[t] + LN_hh(h W_hh^T), c = f c + i g, h = o tanh(LN_c(c)).
    ln_hh = (weight [4H], bias [4H]), ln_c = (weight [H], bias [H])."""
    F = torch.nn.functional
    h, c = h0, c0
    H = c0.shape[-1]
    T = x_proj.shape[0]
    ys = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        z = x_proj[t] + F.layer_norm(h @ w_hh.t(), (4 * H,), ln_hh[0], ln_hh[1], eps)
        i, f, g, o = z.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, (H,), ln_c[0], ln_c[1], eps))
        ys[t] = h
    y = torch.stack(ys) if ys else x_proj.new_empty(0, *h0.shape)
    return y, h, c
