"""Reference LSTM ops: the composite formulas in float64, cast back."""
import torch

from ..composite import lstm as composite


def _f64(t):
    return None if t is None else t.to(torch.float64)


def lstm_layer(x_proj, h0, c0, w_hh, w_hr, reverse):
    out = composite.lstm_layer(_f64(x_proj), _f64(h0), _f64(c0), _f64(w_hh), _f64(w_hr), reverse)
    return tuple(t.to(x_proj.dtype) for t in out)


def gru_layer(x_proj, h0, w_hh, b_hh, reverse):
    out = composite.gru_layer(_f64(x_proj), _f64(h0), _f64(w_hh), _f64(b_hh), reverse)
    return tuple(t.to(x_proj.dtype) for t in out)


def rnn_layer(x_proj, h0, w_hh, nonlinearity, reverse):
    out = composite.rnn_layer(_f64(x_proj), _f64(h0), _f64(w_hh), nonlinearity, reverse)
    return tuple(t.to(x_proj.dtype) for t in out)


def layernorm_lstm_layer(x_proj, h0, c0, w_hh, ln_hh, ln_c, eps, reverse):
    out = composite.layernorm_lstm_layer(_f64(x_proj), _f64(h0), _f64(c0), _f64(w_hh), tuple(map(_f64, ln_hh)),
                                         tuple(map(_f64, ln_c)), eps, reverse)
    return tuple(t.to(x_proj.dtype) for t in out)
