"""Shared by the bidirectional layer ops (lstm_bidir_layer, gru_bidir_layer):
every tensor stacked on a leading dim of 2, [0] forward in time, [1] reverse."""
import torch

from ..backends.registry import impls


def stacked_fake(fake, reverse_at):
    """The fake kernel of a stacked op from its one-direction op's, whose
    `reverse` argument sits at position reverse_at."""
    def run(*args):
        one = [a[0] if isinstance(a, torch.Tensor) else a for a in args]
        one.insert(reverse_at, False)
        return tuple(t.new_empty(2, *t.shape) for t in fake(*one))

    return run


def two_directions(single_op, backend):
    """A backend without a bidirectional kernel: its `single_op` implementation
    once per direction (reverse as its last argument), outputs stacked."""
    def run(*args):
        single = impls(single_op)[backend].fn
        outs = [single(*(None if a is None else a[d] for a in args), d == 1) for d in (0, 1)]
        return tuple(torch.stack(t) for t in zip(*outs))

    return run


def stacked_selftest_inputs(inputs):
    """A stacked op's self-test inputs from its one-direction op's: two draws
    (seed, seed + 1) stacked, every keyword tensor too; `reverse` dropped."""
    def run(seed, **case):
        (a0, k0), (a1, k1) = (inputs(seed + d, **case) for d in (0, 1))
        args = tuple(None if x is None else torch.stack([x, y]) for x, y in zip(a0, a1))
        kw = {k: None if v is None else torch.stack([v, k1[k]]) for k, v in k0.items() if k != "reverse"}
        return args, kw

    return run
