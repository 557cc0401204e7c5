"""A whole multi-layer recurrent network (LSTM, GRU, RNN_TANH, RNN_RELU) as one
routed call, so that `auto` can choose between bigkernels' layer loop and
torch's own fused implementation (torch._VF.lstm/gru/rnn_*: oneDNN or the
native ATen loop on the CPU), whichever measured faster for the shape.

weights: torch's flat order (RNNBase._flat_weights): per layer, then
direction: w_ih, w_hh, [b_ih, b_hh], [w_hr]. x: [T, B, I] (time-major);
states: (h0,) or (h0, c0), each [layers * directions, B, *]."""
import torch
import torch.nn.functional as F

from ..backends import dispatch, register, set_auto_order
from . import _checks
from . import _rnn_checks as rc
from . import gru as _gru
from . import lstm as _lstm
from . import rnn as _rnn
from .linear import project  # the input projections: oneDNN's GEMM where it serves (ops/linear.py)

MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
_VF_FN = {"LSTM": torch._VF.lstm, "GRU": torch._VF.gru, "RNN_TANH": torch._VF.rnn_tanh,
          "RNN_RELU": torch._VF.rnn_relu}


def _per_layer(weights, has_biases, proj):
    n = 2 + 2 * has_biases + (1 if proj else 0)
    return [weights[i:i + n] for i in range(0, len(weights), n)]


def _layer(mode, inp, states, w, has_biases, reverse):
    w_ih, w_hh = w[0], w[1]
    b_ih, b_hh = (w[2], w[3]) if has_biases else (None, None)
    if mode == "GRU":
        y, h = _gru.gru_layer(project(inp, w_ih, b_ih), states[0], w_hh, b_hh, reverse=reverse)
        return y, (h,)
    bias = b_ih + b_hh if has_biases else None
    x_proj = project(inp, w_ih, bias)
    if mode == "LSTM":
        w_hr = w[4 if has_biases else 2] if len(w) in (3, 5) else None
        y, h, c = _lstm.lstm_layer(x_proj, states[0], states[1], w_hh, w_hr=w_hr, reverse=reverse)
        return y, (h, c)
    y, h = _rnn.rnn_layer(x_proj, states[0], w_hh, nonlinearity="tanh" if mode == "RNN_TANH" else "relu",
                          reverse=reverse)
    return y, (h,)


def _bidir(mode, inp, states, w, has_biases):
    """Both directions of an LSTM or GRU layer as one lstm/gru_bidir_layer
    call (one launch on CUDA). w: the two directions' weights. Their input
    projections are one batched GEMM straight into the stacked layout."""
    T, B, I = inp.shape
    w_ih = torch.stack([w[0][0], w[1][0]])
    a = inp.reshape(1, T * B, I).expand(2, T * B, I)
    if has_biases:  # the LSTM folds b_hh in; the GRU's stays inside (r multiplies W_hn h + b_hn)
        bias = torch.stack([wd[2] + wd[3] if mode == "LSTM" else wd[2] for wd in w]).unsqueeze(1)
        x_proj = torch.baddbmm(bias, a, w_ih.transpose(1, 2))
    else:
        x_proj = torch.bmm(a, w_ih.transpose(1, 2))
    x_proj = x_proj.view(2, T, B, -1)
    w_hh = torch.stack([w[0][1], w[1][1]])
    if mode == "GRU":
        y, h = _gru.gru_bidir_layer(x_proj, states[0], w_hh, torch.stack([w[0][3], w[1][3]]) if has_biases else None)
        st = (h,)
    else:
        w_hr = torch.stack([w[0][-1], w[1][-1]]) if len(w[0]) in (3, 5) else None
        y, h, c = _lstm.lstm_bidir_layer(x_proj, states[0], states[1], w_hh, w_hr=w_hr)
        st = (h, c)
    return y.permute(1, 2, 0, 3).reshape(T, B, -1), st


def layered(mode, x, states, weights, has_biases, num_layers, dropout, train, bidirectional, proj):
    """bigkernels' implementation: one whole-layer op per layer and direction,
    both directions of a bidirectional LSTM or GRU layer in one op (each routed
    again, so a forced backend reaches the layer kernels)."""
    D = 2 if bidirectional else 1
    ws = _per_layer(weights, has_biases, proj)
    inp, finals = x, [[] for _ in states]
    for layer in range(num_layers):
        if mode in ("LSTM", "GRU") and D == 2:
            k = 2 * layer
            inp, st = _bidir(mode, inp, [s[k:k + 2] for s in states], ws[k:k + 2], has_biases)
            for acc, s in zip(finals, st):
                acc += [s[0], s[1]]
        else:
            ys = []
            for d in range(D):
                k = layer * D + d
                y, st = _layer(mode, inp, [s[k] for s in states], ws[k], has_biases, d == 1)
                ys.append(y)
                for acc, s in zip(finals, st):
                    acc.append(s)
            inp = ys[0] if D == 1 else torch.cat(ys, dim=2)
        # torch's native loop draws its masks with at::dropout in this same
        # order, so one torch.manual_seed reproduces them.
        if dropout > 0 and train and layer < num_layers - 1:
            inp = F.dropout(inp, dropout, True)
    return inp, tuple(torch.stack(acc) for acc in finals)


def torch_fused(mode, x, states, weights, has_biases, num_layers, dropout, train, bidirectional, proj):
    if torch.compiler.is_compiling():
        # aten.lstm/gru do not trace under AOTAutograd in torch 2.13 (it
        # asserts on the None entries among their saved tensors), so a
        # compiled graph composes torch ops per layer (the layer ops' torch
        # backend) instead.
        return layered(mode, x, states, weights, has_biases, num_layers, dropout, train, bidirectional, proj)
    hx = states if mode == "LSTM" else states[0]
    out = _VF_FN[mode](x, hx, list(weights), has_biases, num_layers, dropout, train, bidirectional, False)
    return out[0], tuple(out[1:])


def _cuda_supports(mode, x, *args):
    """The CUDA layer kernels (csrc/cuda/lstm) serve LSTM and GRU in fp32/fp16/bf16."""
    if mode not in ("LSTM", "GRU"):
        return f"no CUDA kernel for {mode} layers yet"
    return _checks.cuda_recurrent_supports(x)


# triton is not registered until its GRU/RNN layer kernels exist. On a GPU the
# router measures cuda against torch's cuDNN path (measure.py) per shape.
register("rnn_stack", "cpu")(layered)
register("rnn_stack", "cuda", supports=_cuda_supports)(layered)
register("rnn_stack", "cuda_sim", supports=_cuda_supports)(layered)
register("rnn_stack", "reference")(layered)
register("rnn_stack", "torch")(torch_fused)


def _cpu_order(mode, x, states, weights, has_biases, num_layers, dropout, train, bidirectional, proj):
    """Measured on the 2-core CI machine, 2 threads, interleaved medians
    (docs/lstm.md, "Measured"). LSTM, float32, our team kernel
    (csrc/cpu/lstm/lstm_team.cpp) against torch's oneDNN LSTM:
    - training: 1.15-1.77x at batch 1-2 (any H) and at H >= 512 up to batch 8;
      0.87-1.11x (parity) at batch 4-16 with H <= 256;
    - inference: 1.02-1.41x at batch 1-2 with H <= 256; 0.72-0.94x at H = 512
      or batch >= 4, where oneDNN's LSTM runs at 78-94 % of the machine's
      practical GEMM peak and ours at 70-80 % (bench --quick, 2026-11-25).
    With a projection torch has no oneDNN path and ours won 1.28-1.47x. Other
    dtypes (float64; fp16/bf16, which our CPU kernel computes in float32)
    stay with torch, and so do sequences too short to repay packing the
    weights. GRU and RNN (tanh/relu): torch's CPU loop is unfused per step,
    ours measured 1.04-4.7x at every shape tried."""
    if mode != "LSTM" or proj:
        return ("cpu", "torch")
    if x.dtype == torch.float32 and x.shape[0] >= 4:
        B, H = x.shape[1], weights[1].shape[0] // 4
        grad = torch.is_grad_enabled() and (x.requires_grad or any(w.requires_grad for w in weights))
        if (grad and (B <= 2 or H >= 512)) or (not grad and B <= 2 and H <= 256):
            return ("cpu", "torch")
    return ("torch", "cpu")


set_auto_order("rnn_stack", "cpu", _cpu_order)


def rnn_stack(mode, x, states, weights, *, has_biases, num_layers, dropout, train, bidirectional, proj):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        # the dtype torch's module gives under autocast, on every backend (autocast off inside)
        dtype = rc.autocast_dtype(mode, device_type, x.dtype)
        state_dtype = states[-1].dtype
        x, states, weights = _checks.cast(x, dtype), [_checks.cast(s, dtype) for s in states], \
            [_checks.cast(w, dtype) for w in weights]
        with rc.autocast_off(device_type):
            y, finals = dispatch("rnn_stack", device_type, mode, x, tuple(states), list(weights), has_biases,
                                 num_layers, float(dropout), train, bidirectional, proj)
        if mode == "LSTM" and proj and device_type == "cpu":
            # torch's projected LSTM (its native loop: oneDNN has no projection) keeps c in the state's dtype
            finals = (finals[0], _checks.cast(finals[1], state_dtype))
        return y, finals
    return dispatch("rnn_stack", device_type, mode, x, tuple(states), list(weights), has_biases, num_layers,
                    float(dropout), train, bidirectional, proj)


_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _selftest_inputs(seed, mode="LSTM", num_layers=1, bidirectional=False, proj=False):
    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    T, B, I, H = 4, 3, 5, 8
    P = 6 if proj else H
    D = 2 if bidirectional else 1
    G = _GATES[mode] * H
    states = [randn64(gen, num_layers * D, B, P, scale=0.5)]
    if mode == "LSTM":
        states.append(randn64(gen, num_layers * D, B, H, scale=0.5))
    weights = []
    for layer in range(num_layers):
        for _ in range(D):
            weights += [randn64(gen, G, I if layer == 0 else D * P, scale=0.3), randn64(gen, G, P, scale=0.3),
                        randn64(gen, G, scale=0.1), randn64(gen, G, scale=0.1)]
            if proj:
                weights.append(randn64(gen, P, H, scale=0.3))
    return (mode, randn64(gen, T, B, I), len(states), *states, *weights), {
        "num_layers": num_layers, "bidirectional": bidirectional, "proj": P if proj else 0}


def _selftest_fn(mode, x, n_states, *tensors, num_layers, bidirectional, proj):
    # states and weights as separate arguments: the self-test casts top-level tensors only
    return rnn_stack(mode, x, tensors[:n_states], tensors[n_states:], has_biases=True, num_layers=num_layers,
                     dropout=0.0, train=True, bidirectional=bidirectional, proj=proj)


def _register_selftest():
    from ..testing.selftests import register_selftest

    register_selftest(
        "rnn_stack", _selftest_fn, inputs=_selftest_inputs,
        dtypes=(torch.float32, torch.float16, torch.bfloat16, torch.float64),
        cases=[dict(mode="LSTM", num_layers=2, bidirectional=True, proj=False),
               dict(mode="LSTM", num_layers=1, bidirectional=False, proj=True),
               dict(mode="GRU", num_layers=2, bidirectional=False, proj=False),
               dict(mode="RNN_TANH", num_layers=1, bidirectional=True, proj=False)],
        # the case matching a routed call (mode, x, states, weights, has_biases, num_layers, dropout, train,
        # bidirectional, proj); only biased stacks are registered
        features=lambda mode, x, states, weights, has_biases, num_layers, dropout, train, bidirectional, proj, *_:
        dict(mode=mode, num_layers=num_layers, bidirectional=bool(bidirectional), proj=bool(proj))
        if has_biases and dropout == 0 else None)


_register_selftest()
