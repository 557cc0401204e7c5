"""The dropout generator every backend shares (CONVENTIONS: counter-based
Philox keyed by a seed drawn from torch's generator, indexed by element
position), in plain torch for the torch/reference backends.

Philox4x32-10 with Triton's conventions (`tl.randint(seed, offset)`: key =
the seed's two 32-bit halves, counter = (offset_lo, offset_hi, 0, 0), first
output word; `tl.rand`'s fold to [0, 2**31)), so a Triton or C++ kernel drawing at the
same element index gets the same bits and the same keep decision."""
import torch

_MASK32 = 0xFFFFFFFF
_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85


def _mulhilo(a: int, b: torch.Tensor):
    """(hi, lo) 32-bit halves of a * b, a < 2**32 constant, b uint32 in int64:
    split b in 16-bit halves so every partial product fits int64 (2**48)."""
    x = a * (b & 0xFFFF)
    y = a * (b >> 16)
    low = x + ((y & 0xFFFF) << 16)
    return ((y >> 16) + (low >> 32)) & _MASK32, low & _MASK32


def randint(seed: int, index: torch.Tensor) -> torch.Tensor:
    """Philox4x32-10 first output word (uint32 in int64) for counters `index`
    (int64, >= 0) under key `seed` (0 <= seed < 2**63)."""
    k0, k1 = seed & _MASK32, (seed >> 32) & _MASK32
    c0, c1 = index & _MASK32, (index >> 32) & _MASK32
    c2 = torch.zeros_like(index)
    c3 = torch.zeros_like(index)
    for _ in range(10):
        hi0, lo0 = _mulhilo(_M0, c0)
        hi1, lo1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    return c0


def folded(seed: int, index: torch.Tensor) -> torch.Tensor:
    """The word as a non-negative int in [0, 2**31), folded as tl.rand folds
    it (bitcast to int32, x < 0 -> -x - 1); tl.rand is this times 2**-31."""
    x = randint(seed, index)
    x = torch.where(x >= 2**31, x - 2**32, x)  # bitcast to int32
    return torch.where(x < 0, -x - 1, x)


def threshold(p: float) -> int:
    """floor(p * 2**31), as the kernels compute it (double precision)."""
    return int(p * 2147483648.0)


def keep_mask(seed: int, offset: int, shape, p: float, device="cpu") -> torch.Tensor:
    """Dropout keep mask (True = kept) for a dense row-major `shape`: the
    element at flat index n uses counter offset + n and is kept iff its folded
    word >= threshold(p) (an integer test: identical on every backend)."""
    numel = 1
    for s in shape:
        numel *= s
    index = torch.arange(numel, dtype=torch.int64, device=device) + offset
    return (folded(seed, index) >= threshold(p)).view(shape)


def draw_seed() -> int:
    """A seed from torch's default generator: torch.manual_seed reproduces it."""
    return int(torch.randint(0, 2**62, (1,), dtype=torch.int64).item())
