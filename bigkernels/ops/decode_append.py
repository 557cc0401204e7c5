"""The cache append of attention_decode on the backends that do it apart from
their kernel (cpu's C++ glue does the same scatter; the CUDA decode kernel
stores the new rows itself)."""
import torch


def append_to_cache(k_cache, v_cache, cache_seqlens, k_new, v_new):
    """The cache append of a decode step, in place: k_new/v_new (B, Hkv, Sn, D)
    into the caches at positions cache_seqlens[b] .. + Sn. Returns the key
    counts after it (int64)."""
    lens = cache_seqlens.to(torch.int64)
    if k_new is None:
        return lens
    b, hkv, n, d = k_new.shape
    idx = (lens.view(b, 1, 1, 1) + torch.arange(n, device=lens.device).view(1, 1, n, 1)).expand(b, hkv, n, d)
    k_cache.scatter_(2, idx, k_new.to(k_cache.dtype))
    v_cache.scatter_(2, idx, v_new.to(v_cache.dtype))
    return lens + n
