"""Layer-normalised LSTM layer (LN on the recurrent pre-activations and on
the cell before its tanh; the input projection's LN is the caller's, like
the projection itself). Backends: torch (composition) and reference; no
fused kernel yet."""
from ..backends import dispatch, register, set_auto_order
from ..composite import lstm as composite
from ..reference import lstm as reference
from . import _rnn_checks as rc

register("layernorm_lstm_layer", "torch")(composite.layernorm_lstm_layer)
register("layernorm_lstm_layer", "reference")(reference.layernorm_lstm_layer)
set_auto_order("layernorm_lstm_layer", "cpu", ("cpu", "torch"))


def layernorm_lstm_layer(x_proj, h0, c0, w_hh, ln_hh, ln_c, *, eps=1e-5, reverse=False):
    """x_proj: [T, B, 4H] (already layer-normalised, with the bias); h0, c0:
    [B, H]; w_hh: [4H, H]; ln_hh: (weight, bias) of [4H]; ln_c: (weight, bias)
    of [H]. Returns (y [T, B, H], h_T, c_T)."""
    ln_names = [(ln_hh[0], "ln_hh[0]"), (ln_hh[1], "ln_hh[1]"), (ln_c[0], "ln_c[0]"), (ln_c[1], "ln_c[1]")]
    dtype = rc.tensors([(x_proj, "x_proj"), (h0, "h0"), (c0, "c0"), (w_hh, "w_hh")] + ln_names)
    rc.flag(reverse, "reverse")
    if not isinstance(eps, float) or eps <= 0:
        raise ValueError(f"eps must be a positive float, got {eps!r}")
    T, B, H = rc.seq(x_proj, 4)
    rc.shape(h0, (B, H), "h0", "[batch, hidden_size]")
    rc.shape(c0, (B, H), "c0", "[batch, hidden_size]")
    rc.shape(w_hh, (4 * H, H), "w_hh", "[4*hidden_size, hidden_size]")
    for t, name in ln_names:
        rc.shape(t, (4 * H,) if name.startswith("ln_hh") else (H,), name, "layer-norm affine parameter")
    x_proj, h0, c0, w_hh, a, b, c, d = rc.cast(dtype, x_proj, h0, c0, w_hh, *(t for t, _ in ln_names))
    return dispatch("layernorm_lstm_layer", x_proj.device.type, x_proj, h0, c0, w_hh, (a, b), (c, d), eps, reverse)


def _selftest_inputs(seed, reverse=False):
    import torch

    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    T, B, H = 4, 3, 8
    args = (randn64(gen, T, B, 4 * H), randn64(gen, B, H, scale=0.5), randn64(gen, B, H, scale=0.5),
            randn64(gen, 4 * H, H, scale=0.3))
    # layer-norm affine parameters near (1, 0)
    ln_hh = (1 + randn64(gen, 4 * H, scale=0.1), randn64(gen, 4 * H, scale=0.1))
    ln_c = (1 + randn64(gen, H, scale=0.1), randn64(gen, H, scale=0.1))
    return args + ln_hh + ln_c, {"reverse": reverse}


def _selftest_fn(x_proj, h0, c0, w_hh, a, b, c, d, reverse=False):
    # the layer-norm parameters as separate arguments: the self-test casts top-level tensors only
    return layernorm_lstm_layer(x_proj, h0, c0, w_hh, (a, b), (c, d), reverse=reverse)


def _register_selftest():
    import torch

    from ..testing.selftests import register_selftest

    register_selftest(
        "layernorm_lstm_layer", _selftest_fn, inputs=_selftest_inputs,
        dtypes=(torch.float32, torch.float16, torch.bfloat16, torch.float64),
        cases=[dict(reverse=False), dict(reverse=True)],
        features=lambda x, h0, c0, w_hh, ln_hh, ln_c, eps, reverse, *_: dict(reverse=bool(reverse)))


_register_selftest()
