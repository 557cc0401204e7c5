"""Drop-in attention modules over bigkernels.ops.attention.

MultiheadAttention subclasses torch.nn.MultiheadAttention: the constructor,
parameters (in_proj_weight or q/k/v_proj_weight, in_proj_bias, out_proj,
bias_k, bias_v) and state_dict are torch's own, so checkpoints load both ways
and isinstance checks hold. forward follows torch's semantics (masks: bool
True = NOT allowed, or float added; batch_first; unbatched inputs;
add_bias_kv; add_zero_attn; is_causal hint) and runs the fused op.
need_weights=True needs the (L, S) weights, which a fused kernel never forms:
it is served by torch's own implementation (the reference path).

The Transformer layers are torch's, with their attention modules replaced by
ours (a class swap: same parameters, same initialisation) and, for the
encoder, without torch's fused fast path (which would bypass our attention)."""
import torch
import torch.nn.functional as F

from ..ops import attention as _attention_op
from ..ops.linear import project  # the projections: oneDNN's GEMM on the CPU where it serves


def _float_mask(mask, dtype):
    """torch's MHA mask convention -> additive float (bool True = masked)."""
    if mask is None or mask.is_floating_point():
        return None if mask is None else mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))


def _keep_mask(mask):
    """Bool True = masked (torch MHA) -> bool True = attend (our op)."""
    return ~mask


class MultiheadAttention(torch.nn.MultiheadAttention):
    __doc__ = torch.nn.MultiheadAttention.__doc__

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if need_weights:
            return super().forward(query, key, value, key_padding_mask=key_padding_mask, need_weights=True,
                                   attn_mask=attn_mask, average_attn_weights=average_attn_weights,
                                   is_causal=is_causal)
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint (torch.nn.MultiheadAttention's rule)")
        unbatched = query.dim() == 2
        if unbatched:  # (L, E): a batch of one, batch-first
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        # Work in the caller's layout: (N, L, E) when batch_first (or unbatched),
        # else (L, N, E). Transposing first would make every projection copy
        # its input and the output be transposed back (3 copies per call).
        bdim = 0 if (self.batch_first or unbatched) else 1
        out = self._attend(query, key, value, key_padding_mask, attn_mask, is_causal, bdim)
        return (out.squeeze(0) if unbatched else out), None

    def _project(self, query, key, value):
        e = self.embed_dim
        w, b = self.in_proj_weight, self.in_proj_bias
        if self._qkv_same_embed_dim and query is key and key is value:
            # self-attention: one GEMM for q, k and v (torch's packed in-projection), split into views
            return project(query, w, b).unflatten(-1, (3, e)).unbind(-2)
        bq, bk, bv = (None, None, None) if b is None else b.split(e)
        if self._qkv_same_embed_dim:
            wq, wk, wv = w.split(e)
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return project(query, wq, bq), project(key, wk, bk), project(value, wv, bv)

    def _attend(self, query, key, value, key_padding_mask, attn_mask, is_causal, bdim):
        """Inputs (N, L, E) for bdim=0, (L, N, E) for bdim=1 -> output in the same layout."""
        bsz = query.shape[bdim]
        heads, hd = self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        if self.bias_k is not None:  # one learned key/value appended to every sequence
            shape = (bsz, 1, -1) if bdim == 0 else (1, bsz, -1)
            k = torch.cat([k, self.bias_k.view(1, 1, -1).expand(*shape)], 1 - bdim)
            v = torch.cat([v, self.bias_v.view(1, 1, -1).expand(*shape)], 1 - bdim)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        # -> (N, H, S, hd): views (the projections' last dim is dense); the op reads these strides in place
        if bdim == 0:
            q, k, v = (t.view(bsz, t.shape[1], heads, hd).transpose(1, 2) for t in (q, k, v))
        else:
            q, k, v = (t.view(t.shape[0], bsz, heads, hd).permute(1, 2, 0, 3) for t in (q, k, v))
        if self.add_zero_attn:
            zeros = k.new_zeros(bsz, heads, 1, hd)
            k, v = torch.cat([k, zeros], 2), torch.cat([v, zeros], 2)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        tgt_len, src_len = q.shape[2], k.shape[2]
        causal = bool(is_causal) and key_padding_mask is None and tgt_len == src_len
        mask = None if causal else self._merge_masks(attn_mask, key_padding_mask, bsz, q.dtype)
        dropout = self.dropout if self.training else 0.0
        out = _attention_op(q, k, v, causal=causal, attn_mask=mask, dropout_p=dropout)
        if bdim == 0:
            out = out.transpose(1, 2).reshape(bsz, tgt_len, self.embed_dim)
        else:
            out = out.permute(2, 0, 1, 3).reshape(tgt_len, bsz, self.embed_dim)
        return project(out, self.out_proj.weight, self.out_proj.bias)

    def _merge_masks(self, attn_mask, key_padding_mask, bsz, dtype):
        """torch's masks -> one mask broadcastable to (N, H, L, S) for our op:
        bool (True = attend) when both are bool, else additive."""
        if attn_mask is not None and attn_mask.dim() == 3:  # (N * H, L, S)
            attn_mask = attn_mask.view(bsz, self.num_heads, *attn_mask.shape[1:])
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.view(bsz, 1, 1, -1)
        masks = [m for m in (attn_mask, key_padding_mask) if m is not None]
        if not masks:
            return None
        if all(m.dtype == torch.bool for m in masks):
            keep = _keep_mask(masks[0])
            return keep if len(masks) == 1 else keep & _keep_mask(masks[1])
        added = _float_mask(masks[0], dtype)
        return added if len(masks) == 1 else added + _float_mask(masks[1], dtype)


class TransformerEncoderLayer(torch.nn.TransformerEncoderLayer):
    __doc__ = torch.nn.TransformerEncoderLayer.__doc__

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.self_attn.__class__ = MultiheadAttention

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        # torch's forward minus its fused fast path (which bypasses self_attn).
        src_key_padding_mask = F._canonical_mask(mask=src_key_padding_mask, mask_name="src_key_padding_mask",
                                                 other_type=F._none_or_dtype(src_mask), other_name="src_mask",
                                                 target_type=src.dtype)
        src_mask = F._canonical_mask(mask=src_mask, mask_name="src_mask", other_type=None, other_name="",
                                     target_type=src.dtype, check_other=False)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal=is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal=is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x


class TransformerDecoderLayer(torch.nn.TransformerDecoderLayer):
    __doc__ = torch.nn.TransformerDecoderLayer.__doc__

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.self_attn.__class__ = MultiheadAttention
        self.multihead_attn.__class__ = MultiheadAttention
