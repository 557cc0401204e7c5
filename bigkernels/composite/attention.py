"""torch backend of attention: torch.nn.functional.scaled_dot_product_attention
(on the CPU, ATen's own flash kernel), adapted to our semantics:

- causal is bottom-right aligned: SDPA's is_causal is top-left, so for
  Sq != Skv (or with a mask) the causal limit becomes part of a bool mask
  (Sq x Skv: this backend then materialises a mask, the kernels never do);
- rows whose keys are all masked give 0 with zero gradient (SDPA gives NaN
  or a uniform average depending on the path): such rows are unmasked for
  SDPA and their output replaced by 0;
- GQA through enable_gqa (no repeated K/V);
- dropout and return_lse use the math formula with the shared Philox mask
  (SDPA's dropout draws from its own RNG and it does not return the lse)."""
import torch
import torch.nn.functional as F

from ..reference import attention as ref

# torch's own function, captured at import: bigkernels.patch_sdpa() replaces
# F.scaled_dot_product_attention, and this backend must not call itself.
TORCH_SDPA = F.scaled_dot_product_attention


def _dead_rows(mask):
    """Bool (..., Sq, 1): rows of a combined mask with no visible key."""
    if mask.dtype == torch.bool:
        return ~mask.any(-1, keepdim=True)
    return torch.isneginf(mask).all(-1, keepdim=True)


def attention(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse):
    sq, skv = q.shape[2], k.shape[2]
    if dropout_p > 0 or return_lse:
        out, lse = ref.attention_math(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset)
        return out, (lse.float() if q.dtype != torch.float64 else lse) if return_lse else None
    gqa = q.shape[1] != k.shape[1]
    mask = attn_mask
    if mask is not None and mask.dtype != torch.bool and mask.dtype != q.dtype:
        mask = mask.to(q.dtype)
    is_causal = causal and mask is None and sq == skv
    if causal and not is_causal:
        keep = ref.causal_keep(sq, skv, q.device)
        if mask is None:
            mask = keep
        elif mask.dtype == torch.bool:
            mask = mask & keep
        else:
            mask = mask.masked_fill(~keep, float("-inf"))
    dead = None
    if mask is not None:  # no data-dependent branch: torch.compile traces it whole
        dead = _dead_rows(mask)
        mask = mask | dead if mask.dtype == torch.bool else mask.masked_fill(dead, 0.0)
    out = TORCH_SDPA(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale,
                     enable_gqa=gqa)
    if dead is not None:
        out = out.masked_fill(dead, 0.0)
    return out, None
