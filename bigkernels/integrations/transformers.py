"""Hugging Face transformers integration (optional: transformers is imported
only inside register()).

    import bigkernels.integrations.transformers as bk_hf
    name = bk_hf.register()               # "bigkernels"
    model = AutoModelForCausalLM.from_pretrained(..., attn_implementation=name)

Registers our attention with transformers' AttentionInterface, and sdpa's mask
builder under the same name (without a mask builder transformers would pass
no padding mask at all to a custom implementation). The forward mirrors
transformers' `sdpa_attention_forward` (is_causal only for prefill without a
mask; GQA without repeating K/V) with bigkernels' stand-in for
torch's scaled_dot_product_attention, so outputs match the `sdpa` path."""

from ..ops.attention_sdpa import scaled_dot_product_attention

NAME = "bigkernels"


def attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None,
                      position_bias=None, **kwargs):
    """transformers' attention-function signature: query (B, H, Sq, D),
    key/value (B, Hkv, Skv, D); returns ((B, Sq, H, D), None)."""
    if kwargs.get("softcap") is not None:
        raise ValueError("bigkernels attention does not support `softcap`; use `eager` or `flex_attention`")
    q_length = query.shape[2]
    if is_causal is None:
        is_causal = getattr(module, "is_causal", True)
    is_causal = q_length > 1 and attention_mask is None and bool(is_causal)
    if is_causal and key.shape[2] > q_length:  # prefill into an empty static cache: as transformers' sdpa path
        key, value = key[:, :, :q_length], value[:, :, :q_length]
        position_bias = None if position_bias is None else position_bias[..., :q_length]
    if position_bias is not None:
        from transformers.integrations.sdpa_attention import create_position_bias_mask

        attention_mask = create_position_bias_mask(position_bias, attention_mask, is_causal, query, key)
        is_causal = False
    out = scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout,
                                       is_causal=is_causal, scale=scaling,
                                       enable_gqa=query.shape[1] != key.shape[1])
    return out.transpose(1, 2).contiguous(), None


def register(name: str = NAME) -> str:
    """Register bigkernels' attention with transformers; returns the name to
    pass as `attn_implementation`. Raises ImportError without transformers."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    except ImportError as exc:
        raise ImportError("bigkernels.integrations.transformers needs the `transformers` package "
                          "(pip install 'bigkernels[hf]')") from exc
    AttentionInterface.register(name, attention_forward)
    AttentionMaskInterface.register(name, sdpa_mask)
    return name


__all__ = ["NAME", "attention_forward", "register"]
