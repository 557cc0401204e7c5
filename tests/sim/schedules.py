"""Race check for any op under cuda_sim: run it under every schedule of the
emulator and require bit-for-bit equal outputs (or, for a kernel that
declares floating-point atomics, agreement within the tolerance rule)."""
import torch

from bigkernels.backends import sim_loader

# (kind, seed): forward and reverse catch deleted barriers that random orders
# can miss; warp_ahead runs one warp to its next barrier before the others.
SCHEDULES = [("forward", 0), ("reverse", 0), ("warp_ahead", 0), ("warp_ahead", 1), ("random", 1), ("random", 2)]


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _flat(o)] if isinstance(out, (tuple, list)) else []


def assert_schedule_invariant(fn, *, float_atomics=False, rtol=1e-5, atol=1e-6):
    """fn() runs the op(s) on cuda_sim and returns tensor(s)."""
    outs = {}
    sim_loader.launched_kernels()  # reset
    try:
        for kind, seed in SCHEDULES:
            sim_loader.set_schedule(kind, seed)
            outs[(kind, seed)] = [t.detach().clone() for t in _flat(fn())]
    finally:
        sim_loader.set_schedule("forward", 0)
    kernels = sorted(set(sim_loader.launched_kernels()))
    ref = outs[SCHEDULES[0]]
    for sched, got in outs.items():
        for i, (a, b) in enumerate(zip(ref, got)):
            if float_atomics:
                torch.testing.assert_close(b, a, rtol=rtol, atol=atol)
            else:
                same = torch.equal(a.view(torch.uint8) if a.dtype != torch.bool else a,
                                   b.view(torch.uint8) if b.dtype != torch.bool else b)
                assert same, (f"race: output {i} under schedule {sched[0]}/{sched[1]} differs from forward "
                              f"bit for bit; kernels launched: {kernels}")
