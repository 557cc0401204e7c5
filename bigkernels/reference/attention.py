"""Reference attention: the textbook formula in float64 with the full score
matrix (ground truth for tests only: memory O(Sq * Skv)).

Semantics shared by every backend: scores = scale * q k^T (+ additive mask, or
-inf where a bool mask is False); causal keeps key j for query i iff
j <= i + Skv - Sq (bottom-right); a row with no visible key outputs 0 and has
lse = -inf; dropout multiplies the probabilities by keep / (1 - p), keep from
ops.philox at flat (b, h, i, j) index + offset."""
import torch

from ..ops import philox


def causal_keep(sq, skv, device):
    """Bool (Sq, Skv): key j visible to query i (bottom-right aligned)."""
    i = torch.arange(sq, device=device).view(-1, 1)
    j = torch.arange(skv, device=device).view(1, -1)
    return j <= i + (skv - sq)


def masked_scores(q, k, attn_mask, causal, scale):
    """scale * q k^T with the mask and the causal limit applied, GQA by
    repeating k (Hq / Hkv times)."""
    group = q.shape[1] // k.shape[1]
    if group > 1:
        k = k.repeat_interleave(group, dim=1)
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            s = s.masked_fill(~attn_mask, float("-inf"))
        else:
            s = s + attn_mask.to(s.dtype)
    if causal:
        s = s.masked_fill(~causal_keep(q.shape[2], k.shape[2], q.device), float("-inf"))
    return s


def softmax_lse(s):
    """(P, lse) with rows that see nothing giving P = 0, lse = -inf, and
    finite gradients everywhere (no 0 * inf)."""
    m = s.amax(-1, keepdim=True).detach()
    m = torch.where(torch.isinf(m), torch.zeros_like(m), m)  # softmax is shift-invariant
    e = torch.exp(s - m)
    l = e.sum(-1, keepdim=True)
    dead = l == 0
    l_safe = torch.where(dead, torch.ones_like(l), l)
    p = e / l_safe
    lse = torch.where(dead, torch.full_like(l, float("-inf")), m + torch.log(l_safe))
    return p, lse.squeeze(-1)


def apply_dropout(p, dropout_p, seed, offset):
    if dropout_p <= 0:
        return p
    keep = philox.keep_mask(seed, offset, p.shape, dropout_p, device=p.device)
    return torch.where(keep, p / (1 - dropout_p), torch.zeros_like(p))


def attention_math(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset):
    """The formula in the inputs' dtype: (out, lse)."""
    s = masked_scores(q, k, attn_mask, causal, scale)
    p, lse = softmax_lse(s)
    p = apply_dropout(p, dropout_p, seed, offset)
    group = q.shape[1] // v.shape[1]
    if group > 1:
        v = v.repeat_interleave(group, dim=1)
    return torch.matmul(p, v), lse


def attention(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse):
    def f64(t):
        return None if t is None or t.dtype == torch.bool else t.to(torch.float64)

    mask = attn_mask if attn_mask is None or attn_mask.dtype == torch.bool else f64(attn_mask)
    out, lse = attention_math(f64(q), f64(k), f64(v), mask, causal, scale, dropout_p, seed, offset)
    return out.to(q.dtype), (lse.to(torch.float64 if q.dtype == torch.float64 else torch.float32)
                              if return_lse else None)
