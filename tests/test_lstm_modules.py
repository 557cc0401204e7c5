"""bigkernels.nn LSTM/GRU/RNN and cells against torch's modules: same
outputs and gradients (tolerance rule against torch's module in float64),
checkpoints both ways, PackedSequence, dropout, compile, eval backward."""
import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

import bigkernels
from bigkernels import nn as bnn
from bigkernels.testing.tolerance import assert_close

PAIRS = {"LSTM": (bnn.LSTM, torch.nn.LSTM), "GRU": (bnn.GRU, torch.nn.GRU), "RNN": (bnn.RNN, torch.nn.RNN)}
# A covering array over (kind, layers, bidirectional, batch_first, bias, extra, dtype) rather than the product.
CONFIGS = [
    ("LSTM", 2, True, False, True, dict(proj_size=3), torch.float32),
    ("LSTM", 1, False, True, True, {}, torch.bfloat16),
    ("LSTM", 2, False, False, False, {}, torch.float16),
    ("LSTM", 1, True, True, True, dict(proj_size=2), torch.float64),
    ("GRU", 2, True, True, True, {}, torch.float32),
    ("GRU", 1, False, False, False, {}, torch.bfloat16),
    ("RNN", 2, True, False, True, dict(nonlinearity="relu"), torch.float32),
    ("RNN", 1, False, True, False, {}, torch.float16),
]
I, H = 5, 7


def _pair(kind, *args, **kw):
    ours, theirs = PAIRS[kind]
    torch.manual_seed(0)
    t = theirs(*args, **kw)
    torch.manual_seed(0)
    o = ours(*args, **kw)  # torch's init under the same seed: identical parameters
    for (n1, p1), (n2, p2) in zip(o.named_parameters(), t.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)
    return o, t


def _flat(out):
    y, st = out
    return [y] + (list(st) if isinstance(st, tuple) else [st])


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c[0]}-L{c[1]}-bi{int(c[2])}-bf{int(c[3])}-b{int(c[4])}-"
                         f"{'-'.join(map(str, c[5].values()))}-{str(c[6])[6:]}")
@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_module_matches_torch(cfg, backend):
    kind, layers, bi, bf, bias, extra, dtype = cfg
    with bigkernels.use_backend(backend):
        _module_matches_torch(kind, layers, bi, bf, bias, extra, dtype)


def _module_matches_torch(kind, layers, bi, bf, bias, extra, dtype):
    ours, theirs = _pair(kind, I, H, layers, bias=bias, batch_first=bf, bidirectional=bi, **extra)
    ref = PAIRS[kind][1](I, H, layers, bias=bias, batch_first=bf, bidirectional=bi, **extra).double()
    ref.load_state_dict(theirs.state_dict())
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    T, B = 6, 3
    x64 = torch.randn((B, T, I) if bf else (T, B, I), dtype=torch.float64)
    D = 2 if bi else 1
    P = extra.get("proj_size", 0) or H
    hx64 = [torch.randn(layers * D, B, P, dtype=torch.float64) * 0.5]
    if kind == "LSTM":
        hx64.append(torch.randn(layers * D, B, H, dtype=torch.float64) * 0.5)
    runs = []
    for mod, dt in ((ref, torch.float64), (ours, dtype), (theirs, dtype)):
        x = x64.to(dt).requires_grad_()
        hx = [h.to(dt).requires_grad_() for h in hx64]
        outs = _flat(mod(x, tuple(hx) if kind == "LSTM" else hx[0]))
        gen = torch.Generator().manual_seed(1)
        grads = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(dt) for o in outs]
        leaves = [x, *hx, *mod.parameters()]
        runs.append((outs, torch.autograd.grad(outs, leaves, grads)))
    (r_out, r_g), (o_out, o_g), (t_out, t_g) = runs
    for i, (o, r, t) in enumerate(zip(o_out, r_out, t_out)):
        assert_close(o, r, t, name=f"output {i}")
    names = ["x"] + [f"hx{i}" for i in range(len(hx64))] + [n for n, _ in ours.named_parameters()]
    for n, o, r, t in zip(names, o_g, r_g, t_g):
        assert_close(o, r, t, name=f"grad {n}", scale=max(1.0, r.abs().max().item()))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("lengths", [(2, 4, 1, 4), (3, 3, 3), (1,), (5, 3, 1)], ids=str)
def test_packed_sequences(kind, lengths):
    ours, theirs = _pair(kind, I, H, 2, bidirectional=True)
    ours, theirs = ours.double(), theirs.double()
    seqs = [torch.randn(n, I, dtype=torch.float64) for n in lengths]
    sorted_input = list(lengths) == sorted(lengths, reverse=True)
    packs = []
    for _ in range(2):
        leaves = [s.clone().requires_grad_() for s in seqs]
        packs.append((leaves, pack_sequence(leaves, enforce_sorted=sorted_input)))
    (lo, po), (lt, pt) = packs
    o, t = ours(po), theirs(pt)
    assert torch.equal(o[0].batch_sizes, t[0].batch_sizes)
    assert (o[0].sorted_indices is None) == (t[0].sorted_indices is None)
    torch.testing.assert_close(o[0].data, t[0].data)
    torch.testing.assert_close(o[1], t[1])
    loss_o = o[0].data.square().sum() + sum(s.sum() for s in (o[1] if kind == "LSTM" else (o[1],)))
    loss_t = t[0].data.square().sum() + sum(s.sum() for s in (t[1] if kind == "LSTM" else (t[1],)))
    loss_o.backward()
    loss_t.backward()
    for a, b in zip(lo, lt):
        torch.testing.assert_close(a.grad, b.grad)
    for (n, p), q in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=n)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_checkpoints_load_both_ways_and_unbatched(kind):
    ours, theirs = _pair(kind, I, H, 2, bidirectional=True)
    fresh_ours, fresh_theirs = PAIRS[kind][0](I, H, 2, bidirectional=True), PAIRS[kind][1](I, H, 2, bidirectional=True)
    fresh_ours.load_state_dict(theirs.state_dict())
    fresh_theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, I)  # unbatched
    for a, b in ((fresh_ours, theirs), (ours, fresh_theirs)):
        for p, q in zip(_flat(a(x)), _flat(b(x))):
            torch.testing.assert_close(p, q)
    assert _flat(ours(x))[0].shape == (4, 2 * H)


def test_dropout_between_layers_matches_torch_under_one_seed():
    ours, theirs = _pair("LSTM", I, H, 3, dropout=0.5)
    x = torch.randn(6, 2, I)
    torch.manual_seed(5)
    yo = ours(x)[0]
    torch.manual_seed(5)
    yt = theirs(x)[0]
    torch.testing.assert_close(yo, yt)
    ours.eval()
    assert torch.equal(ours(x)[0], ours(x)[0])


def test_backward_in_eval_mode():
    ours, _ = _pair("LSTM", I, H, 2)
    ours.eval()
    x = torch.randn(5, 2, I, requires_grad=True)
    ours(x)[0].sum().backward()
    assert x.grad is not None and ours.weight_hh_l1.grad.abs().sum() > 0


@pytest.mark.parametrize("kind,backend", [("LSTM", "cpu"), ("LSTM", "torch"), ("GRU", "cpu")])
def test_compile_fullgraph(kind, backend):
    ours, theirs = _pair(kind, I, H, 2, bidirectional=True, batch_first=True)
    x = torch.randn(2, 5, I)
    with bigkernels.use_backend(backend):
        compiled = torch.compile(ours, backend="aot_eager", fullgraph=True)
        y = compiled(x)[0]
        y.sum().backward()
    torch.testing.assert_close(y, theirs(x)[0])


@pytest.mark.parametrize("kind,backend", [("LSTMCell", "cpu"), ("LSTMCell", "torch"), ("GRUCell", "cpu"),
                                          ("GRUCell", "torch"), ("RNNCell", "torch"), ("RNNCell", "cpu")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
def test_cells_match_torch(kind, backend, dtype):
    with bigkernels.use_backend(backend):
        _cells_match_torch(kind, dtype)


def _cells_match_torch(kind, dtype):
    ours_cls, theirs_cls = getattr(bnn, kind), getattr(torch.nn, kind)
    torch.manual_seed(0)
    theirs = theirs_cls(I, H)
    torch.manual_seed(0)
    ours = ours_cls(I, H)
    ref = theirs_cls(I, H).double()
    ref.load_state_dict(theirs.state_dict())
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    x = torch.randn(3, I, dtype=torch.float64)
    outs = []
    for mod, dt in ((ref, torch.float64), (ours, dtype), (theirs, dtype)):
        out = mod(x.to(dt))
        outs.append(out if isinstance(out, tuple) else (out,))
    for o, r, t in zip(outs[1], outs[0], outs[2]):
        assert_close(o, r, t)
    unbatched = ours(x[0].to(dtype))
    assert (unbatched[0] if kind == "LSTMCell" else unbatched).shape == (H,)


@pytest.mark.parametrize("kind,args,kwargs", [
    ("LSTM", (I, 0), {}), ("LSTM", (I, H), dict(dropout=1.5)), ("LSTM", (I, H), dict(proj_size=H)),
    ("LSTM", (I, H), dict(num_layers=0)), ("GRU", (I, H), dict(proj_size=2)),
    ("RNN", (I, H), dict(nonlinearity="gelu")),
    ("LSTM", (I, H), dict(dropout=True)),
])
def test_constructor_errors_match_torch(kind, args, kwargs):
    with pytest.raises(Exception) as theirs:
        PAIRS[kind][1](*args, **kwargs)
    with pytest.raises(type(theirs.value), match=str(theirs.value)[:30].replace("(", r"\(").replace(")", r"\)")):
        PAIRS[kind][0](*args, **kwargs)


@pytest.mark.parametrize("hx_shape,cx_shape", [((1, 3, H + 1), (1, 3, H)), ((1, 3, H), (2, 3, H)), ((3, H), (3, H))])
def test_bad_state_shapes_raise_like_torch(hx_shape, cx_shape):
    ours, theirs = _pair("LSTM", I, H)
    x = torch.randn(4, 3, I)
    hx = (torch.zeros(hx_shape), torch.zeros(cx_shape))
    with pytest.raises(RuntimeError):
        theirs(x, hx)
    with pytest.raises(RuntimeError, match="hidden"):
        ours(x, hx)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        ours(torch.randn(4, 3, I + 1))


AUTOCAST_CASES = [("LSTM", {}), ("LSTM", dict(proj_size=3, num_layers=2)), ("LSTM", dict(bidirectional=True)),
                  ("GRU", {}), ("RNN", dict(nonlinearity="relu")), ("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", {})]


@pytest.mark.parametrize("kind,extra", AUTOCAST_CASES,
                         ids=[k + "".join(f"-{n}{v}" for n, v in e.items()) for k, e in AUTOCAST_CASES])
@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_autocast_gives_torchs_dtypes_on_every_backend(kind, extra, backend):
    """Under torch.autocast our modules return the dtypes torch's do (bf16 for
    LSTM, RNN and RNNCell on the CPU; float32 for GRU, LSTMCell and GRUCell),
    whichever backend runs, and stay close to torch's float64 module."""
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(I, H, **extra)
    ours = getattr(bnn, kind)(I, H, **extra)
    ours.load_state_dict(theirs.state_dict())
    ref = getattr(torch.nn, kind)(I, H, **extra).double()
    ref.load_state_dict(theirs.state_dict())
    x = torch.randn(3, I) if "Cell" in kind else torch.randn(6, 3, I)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        t_out = theirs(x)
        with bigkernels.use_backend(backend):
            o_out = ours(x)
    r_out = ref(x.double())

    def flat(out):
        return [t for item in (out if isinstance(out, tuple) else (out,))
                for t in (item if isinstance(item, tuple) else (item,))]

    o_flat, t_flat, r_flat = flat(o_out), flat(t_out), flat(r_out)
    assert [t.dtype for t in o_flat] == [t.dtype for t in t_flat]
    for i, (o, r, t) in enumerate(zip(o_flat, r_flat, t_flat)):
        assert_close(o, r, t, name=f"output {i}")
