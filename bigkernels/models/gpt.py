"""GPT: a decoder-only transformer with rotary position embeddings (RoPE),
grouped-query attention (n_kv_head key/value heads shared by n_head query
heads) and generation over a KV cache.

kernels=True runs attention through bigkernels.ops.attention (prefill,
training, and decoding over the cache, its causal mask being bottom-right
aligned) and ops.attention_decode (decoding, in place) when this build has
them; kernels=False, or a build without them, uses
torch's scaled_dot_product_attention. Parameters are the same either way.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ._common import finish, positive_int


def _ops(name):
    from .. import ops

    return getattr(ops, name, None)


def rotate(x, cos, sin):
    """RoPE on (B, H, T, D) with cos/sin (T, D/2): pairs (x[2i], x[2i+1])
    rotated by angle pos * base^(-2i/D) (Su et al. 2021, interleaved form)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, d_model, n_head, n_kv_head):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, d_model // n_head
        self.q_proj = nn.Linear(d_model, n_head * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d_model, n_kv_head * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d_model, n_kv_head * self.head_dim, bias=False)
        self.o_proj = nn.Linear(n_head * self.head_dim, d_model, bias=False)
        self.kernels = False

    def _heads(self, x, n):
        return x.view(x.shape[0], x.shape[1], n, self.head_dim).transpose(1, 2)

    def forward(self, x, cos, sin, cache=None, pos=0):
        B, T, _ = x.shape
        q = rotate(self._heads(self.q_proj(x), self.n_head), cos, sin)
        k = rotate(self._heads(self.k_proj(x), self.n_kv_head), cos, sin)
        v = self._heads(self.v_proj(x), self.n_kv_head)
        if cache is not None and pos > 0:
            y = self._decode(q, k, v, cache, pos)
        else:
            if cache is not None:  # prefill: attend within the prompt, then fill the cache
                cache[0][:, :, :T] = k
                cache[1][:, :, :T] = v
            attention = _ops("attention") if self.kernels else None
            if attention is not None:
                y = attention(q, k, v, causal=True)
            else:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))

    def _decode(self, q, k, v, cache, pos):
        k_cache, v_cache = cache
        # attention_decode is inference-only (no autograd): generate() runs under no_grad.
        decode = _ops("attention_decode") if self.kernels and not torch.is_grad_enabled() else None
        if decode is not None:
            seqlens = torch.full((q.shape[0],), pos, dtype=torch.int32, device=q.device)
            return decode(q, k_cache, v_cache, seqlens, k_new=k, v_new=v)
        T = q.shape[2]
        k_cache[:, :, pos:pos + T] = k
        v_cache[:, :, pos:pos + T] = v
        keys, values = k_cache[:, :, :pos + T], v_cache[:, :, :pos + T]
        attention = _ops("attention") if self.kernels else None
        if attention is not None:  # its causal mask is bottom-right aligned: query i sees keys 0..pos + i
            return attention(q, keys, values, causal=True)
        mask = torch.ones(T, pos + T, dtype=torch.bool, device=q.device).tril(pos)
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=True)


class Block(nn.Module):
    def __init__(self, d_model, n_head, n_kv_head):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_head, n_kv_head)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * d_model, d_model))

    def forward(self, x, cos, sin, cache=None, pos=0):
        x = x + self.attn(self.ln1(x), cos, sin, cache, pos)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, n_layer=4, n_head=4, n_kv_head=None, d_model=128, max_seq_len=256, *,
                 rope_base=10000.0, kernels=True):
        super().__init__()
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        for name, value in (("vocab_size", vocab_size), ("n_layer", n_layer), ("n_head", n_head),
                            ("n_kv_head", n_kv_head), ("d_model", d_model), ("max_seq_len", max_seq_len)):
            positive_int(name, value)
        if n_head % n_kv_head:
            raise ValueError(f"n_head ({n_head}) must be a multiple of n_kv_head ({n_kv_head})")
        if d_model % n_head or (d_model // n_head) % 2:
            raise ValueError(f"d_model ({d_model}) must be n_head ({n_head}) x an even head dim")
        self.max_seq_len, self.n_kv_head = max_seq_len, n_kv_head
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_head, n_kv_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # tied (GPT-2)
        head_dim = d_model // n_head
        freq = rope_base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angle = torch.arange(max_seq_len, dtype=torch.float64)[:, None] * freq
        # Not saved: derived from the config, and float64-exact before the cast.
        self.register_buffer("rope_cos", angle.cos().float(), persistent=False)
        self.register_buffer("rope_sin", angle.sin().float(), persistent=False)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2: residual projections scaled by 1/sqrt(2 n_layer)
            nn.init.normal_(block.attn.o_proj.weight, std=0.02 / math.sqrt(2 * n_layer))
        for block in self.blocks:
            block.attn.kernels = kernels
        finish(self, kernels)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def forward(self, idx, cache=None, pos=0):
        """idx (B, T) -> logits (B, T, vocab). cache: from new_cache(), filled
        from position `pos` on (pos 0 = prefill)."""
        if idx.dim() != 2:
            raise ValueError(f"idx must be (batch, time), got shape {tuple(idx.shape)}")
        T = idx.shape[1]
        if pos + T > self.max_seq_len:
            raise ValueError(f"sequence of {pos + T} tokens exceeds max_seq_len={self.max_seq_len}")
        cos, sin = self.rope_cos[pos:pos + T].to(self.ln_f.weight.dtype), self.rope_sin[pos:pos + T].to(
            self.ln_f.weight.dtype)
        x = self.tok_emb(idx)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, None if cache is None else cache[i], pos)
        return self.lm_head(self.ln_f(x))

    def new_cache(self, batch_size):
        """One (k, v) pair per layer, each (B, n_kv_head, max_seq_len, head_dim)."""
        w = self.ln_f.weight
        shape = (batch_size, self.n_kv_head, self.max_seq_len, self.blocks[0].attn.head_dim)
        return [(w.new_zeros(shape), w.new_zeros(shape)) for _ in self.blocks]

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, use_cache=True):
        """Append max_new_tokens sampled tokens to idx (B, T). temperature=0 is
        greedy. Without the cache the whole (cropped) context is recomputed
        per token; with it, prompt + new tokens must fit in max_seq_len."""
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if top_k is not None and (not isinstance(top_k, int) or top_k <= 0):
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        if use_cache and idx.shape[1] + max_new_tokens > self.max_seq_len:
            raise ValueError(f"prompt ({idx.shape[1]}) + max_new_tokens ({max_new_tokens}) exceeds "
                             f"max_seq_len={self.max_seq_len}; use_cache=False crops the context instead")
        cache = self.new_cache(idx.shape[0]) if use_cache else None
        pos, step_input = 0, idx
        for _ in range(max_new_tokens):
            if cache is None:
                logits = self(idx[:, -self.max_seq_len:])[:, -1]
            else:
                logits = self(step_input, cache, pos)[:, -1]
                pos += step_input.shape[1]
            nxt = self._sample(logits, temperature, top_k)
            idx = torch.cat([idx, nxt], dim=1)
            step_input = nxt
        return idx

    @staticmethod
    def _sample(logits, temperature, top_k):
        if temperature == 0:
            return logits.argmax(-1, keepdim=True)
        logits = logits / temperature
        if top_k is not None:
            kth = logits.topk(min(top_k, logits.shape[-1])).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.multinomial(logits.softmax(-1), 1)
