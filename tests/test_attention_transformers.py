"""transformers integration: our attention gives the outputs of transformers'
`sdpa` implementation on a BERT-style encoder with padding and a Llama-style
causal GQA decoder (tiny random models built from configs, no downloads)."""
import copy

import pytest
import torch

transformers = pytest.importorskip("transformers")

from bigkernels.integrations import transformers as bk_hf  # noqa: E402


def _twins(model_cls, config, name):
    """The same weights under `sdpa` and under ours (separate configs: the
    implementation is a config attribute)."""
    torch.manual_seed(0)
    ref = model_cls(copy.deepcopy(config)).eval()
    ours = model_cls(copy.deepcopy(config)).eval()
    ours.load_state_dict(ref.state_dict())
    ref.set_attn_implementation("sdpa")
    ours.set_attn_implementation(name)
    assert ref.config._attn_implementation == "sdpa" and ours.config._attn_implementation == name
    return ref, ours


def _mask(b, s):
    m = torch.ones(b, s, dtype=torch.long)
    m[0, -3:] = 0  # left-over padding in the first sequence
    return m


def test_register_returns_the_name():
    assert bk_hf.register() == "bigkernels"
    assert "bigkernels" in transformers.AttentionInterface._global_mapping


@pytest.fixture
def calls(monkeypatch):
    """Counts calls into our attention, so a silent fallback to sdpa fails."""
    seen = []
    real = bk_hf.scaled_dot_product_attention
    monkeypatch.setattr(bk_hf, "scaled_dot_product_attention", lambda *a, **kw: seen.append(1) or real(*a, **kw))
    return seen


def test_bert_encoder_with_padding_matches_sdpa(calls):
    name = bk_hf.register()
    cfg = transformers.BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=64)
    ref, ours = _twins(transformers.BertModel, cfg, name)
    ids = torch.randint(0, 97, (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = ref(input_ids=ids, attention_mask=_mask(2, 11)).last_hidden_state
        b = ours(input_ids=ids, attention_mask=_mask(2, 11)).last_hidden_state
    torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-4)
    assert len(calls) == 2  # one per layer


def test_llama_causal_gqa_matches_sdpa_including_generation(calls):
    name = bk_hf.register()
    cfg = transformers.LlamaConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64)
    ref, ours = _twins(transformers.LlamaForCausalLM, cfg, name)
    ids = torch.randint(0, 97, (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for mask in (None, _mask(2, 9)):
            a = ref(input_ids=ids, attention_mask=mask).logits
            b = ours(input_ids=ids, attention_mask=mask).logits
            torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-4)
        ga = ref.generate(ids, max_new_tokens=4, do_sample=False)
        gb = ours.generate(ids, max_new_tokens=4, do_sample=False)
    assert torch.equal(ga, gb)
    assert len(calls) >= 2 * 2 + 2 * 4
