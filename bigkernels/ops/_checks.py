"""Argument checks shared by the op families: errors name the user's argument."""
import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def tensor(value, name, *, floating=True):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float16, bfloat16, float32 or float64, got {value.dtype}")
    return value


def real(value, name):
    """A Python int or float (not a bool) as a float: activation parameters such as negative_slope."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    return float(value)


def same_device(ref, ref_name, value, name):
    if value.device != ref.device:
        raise ValueError(f"{name} is on {value.device} but {ref_name} is on {ref.device}; expected the same device")


def common_dtype(tensors, names):
    """The dtype all tensors run in. Mixed dtypes raise a TypeError, except
    under torch.autocast, where they promote to the widest (torch's rule for
    pointwise ops)."""
    first = tensors[0] if tensors[0] is not None else next(t for t in tensors if t is not None)
    if all(t is None or t.dtype == first.dtype for t in tensors):  # the usual case, without the lists below
        return first.dtype
    present = [(t, n) for t, n in zip(tensors, names) if t is not None]
    device_type = present[0][0].device.type
    if torch.is_autocast_enabled(device_type):
        out = present[0][0].dtype
        for t, _ in present[1:]:
            out = torch.promote_types(out, t.dtype)
        return out
    listing = ", ".join(f"{n}={t.dtype}" for t, n in present)
    raise TypeError(f"expected one dtype for all tensors, got {listing}")


def cast(t, dtype):
    """t in dtype; None stays None. Skips Tensor.to's call when nothing changes (~1 us each)."""
    return t if t is None or t.dtype == dtype else t.to(dtype)


def dim_index(dim, ndim, name):
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise ValueError(f"{name}={dim} is out of range for a tensor of {ndim} dimensions")
    return dim % max(ndim, 1)


def cuda_recurrent_supports(x, *args):
    """`supports` of the CUDA LSTM/GRU kernels (csrc/cuda/lstm): fp16/bf16/fp32
    storage with fp32 math, so float64 calls go to the next backend."""
    if x.dtype == torch.float64:
        return "the cuda kernels store fp16/bf16/fp32 and compute in fp32: float64 is served by cpu/torch"
    return None
