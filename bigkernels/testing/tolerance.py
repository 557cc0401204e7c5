"""The tolerance rule (FlashAttention's): our error against the float64
reference is at most 2x the error of PyTorch's own implementation in the same
dtype, plus a small per-dtype floor. For fp32/fp64 the floor dominates and the
check is tight."""
import torch

# Absolute floors: a few units in the last place of each dtype at O(1)
# magnitudes; the 2x term carries the rest.
FLOOR = {torch.float64: 1e-10, torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def max_error(value, reference):
    return (value.detach().double() - reference.detach().double()).abs().max().item() if value.numel() else 0.0


def assert_close(ours, reference64, torch_same_dtype, *, name="output", factor=2.0, floor=None, scale=1.0):
    """ours and torch_same_dtype: results in the tested dtype; reference64:
    the float64 ground truth. `scale` widens the floor for values far from O(1)."""
    if ours.shape != reference64.shape:
        raise AssertionError(f"{name}: shape {tuple(ours.shape)} != reference {tuple(reference64.shape)}")
    if torch.isnan(ours).any() and not torch.isnan(reference64).any():
        raise AssertionError(f"{name}: NaN in our result where the reference has none")
    ours_err = max_error(ours, reference64)
    torch_err = max_error(torch_same_dtype, reference64)
    bound = factor * torch_err + (FLOOR[ours.dtype] if floor is None else floor) * scale
    if not ours_err <= bound:
        raise AssertionError(f"{name} ({ours.dtype}): max error {ours_err:.3g} > bound {bound:.3g} "
                             f"(torch's own error {torch_err:.3g} x {factor} + floor)")
    return ours_err, bound
