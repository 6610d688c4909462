"""KV cache and memory estimates on real model shapes (config dicts as their config.json files give them).

Values are from the public config.json files. Where a value is uncertain or the model is only an
illustration of a config style, the constant is named ``*_FIXTURE`` and its docstring says so.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cards.memory import (
    CPU_RUNTIME_BYTES,
    GPU_RUNTIME_BYTES,
    KvLayers,
    compute_buffer_bytes,
    fits,
    kv_cache_bytes,
    kv_shape,
    max_context,
    memory_row,
    memory_table,
)

GIB = 2**30
MIB = 2**20

LLAMA_3_1_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 14336, "max_position_embeddings": 131072, "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "rope_scaling": {"factor": 8.0, "rope_type": "llama3"}, "torch_dtype": "bfloat16",
}
QWEN3_8B = {
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "head_dim": 128, "hidden_size": 4096,
    "intermediate_size": 12288, "max_position_embeddings": 40960, "max_window_layers": 36,
    "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8, "sliding_window": None,
    "use_sliding_window": False, "vocab_size": 151936,
}
#: Qwen2.5-7B-style: a window is set but switched off; it must not be applied.
QWEN2_5_7B_FIXTURE = {
    "model_type": "qwen2", "hidden_size": 3584, "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "max_position_embeddings": 32768, "sliding_window": 131072,
    "use_sliding_window": False, "max_window_layers": 28, "vocab_size": 152064,
}
#: As on the Hub: text_config leaves head_dim (256), the 5:1 pattern and max context to the model class.
GEMMA_3_12B = {
    "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
    "mm_tokens_per_image": 256,
    "text_config": {
        "hidden_size": 3840, "intermediate_size": 15360, "model_type": "gemma3_text",
        "num_attention_heads": 16, "num_hidden_layers": 48, "num_key_value_heads": 8,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024,
    },
    "vision_config": {"hidden_size": 1152, "num_attention_heads": 16, "num_hidden_layers": 27,
                      "model_type": "siglip_vision_model", "image_size": 896},
}
GEMMA_3_12B_EXPLICIT = {
    "model_type": "gemma3",
    "text_config": {
        "hidden_size": 3840, "model_type": "gemma3_text", "num_attention_heads": 16,
        "num_hidden_layers": 48, "num_key_value_heads": 8, "head_dim": 256, "sliding_window": 1024,
        "sliding_window_pattern": 6, "max_position_embeddings": 131072, "vocab_size": 262208,
    },
}
DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 7168,
    "intermediate_size": 18432, "kv_lora_rank": 512, "max_position_embeddings": 163840,
    "moe_intermediate_size": 2048, "n_routed_experts": 256, "n_shared_experts": 1,
    "num_experts_per_tok": 8, "first_k_dense_replace": 3, "num_attention_heads": 128,
    "num_hidden_layers": 61, "num_key_value_heads": 128, "num_nextn_predict_layers": 1,
    "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "vocab_size": 129280,
}
GPT_OSS_20B = {
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 2880,
    "intermediate_size": 2880, "head_dim": 64, "num_attention_heads": 64, "num_key_value_heads": 8,
    "num_hidden_layers": 24, "num_local_experts": 32, "experts_per_token": 4, "sliding_window": 128,
    "max_position_embeddings": 131072, "initial_context_length": 4096, "vocab_size": 201088,
    "layer_types": ["sliding_attention", "full_attention"] * 12,
}
#: Nemotron-H-8B-Base-8K: 52 layers = 24 Mamba-2 + 24 MLP + 4 attention (paper); exact order as recalled.
NEMOTRON_H_8B_PATTERN = "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-"
NEMOTRON_H_8B = {
    "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h", "hidden_size": 4096,
    "num_hidden_layers": 52, "hybrid_override_pattern": NEMOTRON_H_8B_PATTERN, "num_attention_heads": 32,
    "num_key_value_heads": 8, "head_dim": 128, "mamba_num_heads": 128, "mamba_head_dim": 64,
    "ssm_state_size": 128, "n_groups": 8, "conv_kernel": 4, "expand": 2, "intermediate_size": 21504,
    "max_position_embeddings": 8192, "vocab_size": 131072,
}
QWEN3_NEXT_80B_A3B = {
    "architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next", "hidden_size": 2048,
    "num_hidden_layers": 48, "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
    "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_key_head_dim": 128,
    "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4, "full_attention_interval": 4,
    "num_experts": 512, "num_experts_per_tok": 10, "moe_intermediate_size": 512,
    "max_position_embeddings": 262144, "vocab_size": 151936,
    "layer_types": ["linear_attention"] * 3 + ["full_attention"],
}
QWEN3_NEXT_80B_A3B["layer_types"] = QWEN3_NEXT_80B_A3B["layer_types"] * 12
LFM2_1_2B = {
    "architectures": ["Lfm2ForCausalLM"], "model_type": "lfm2", "hidden_size": 2048, "num_hidden_layers": 16,
    "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 128000,
    "vocab_size": 65536, "conv_L_cache": 3, "block_ff_dim": 12288, "full_attn_idxs": [2, 5, 8, 10, 12, 14],
    "layer_types": ["full_attention" if i in (2, 5, 8, 10, 12, 14) else "conv" for i in range(16)],
}
MISTRAL_7B_V0_1 = {
    "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "sliding_window": 4096, "vocab_size": 32000,
}
#: Granite-4.0-H style hybrid (shape illustrative, not a specific checkpoint): 4 attention layers in 40.
GRANITE_4_H_FIXTURE = {
    "model_type": "granitemoehybrid", "hidden_size": 4096, "num_hidden_layers": 40,
    "num_attention_heads": 32, "num_key_value_heads": 8, "mamba_n_heads": 128, "mamba_d_head": 64,
    "mamba_d_state": 128, "mamba_n_groups": 1, "mamba_d_conv": 4, "mamba_expand": 2,
    "max_position_embeddings": 131072, "vocab_size": 100352,
    "layer_types": ["attention" if i % 10 == 5 else "mamba" for i in range(40)],
}
#: Gemma-4 style (shape illustrative): wider global heads, k=v global KV heads, the last layers share KV.
GEMMA_4_FIXTURE = {
    "model_type": "gemma4",
    "text_config": {
        "model_type": "gemma4_text", "hidden_size": 2560, "num_hidden_layers": 12, "num_attention_heads": 8,
        "num_key_value_heads": 2, "head_dim": 256, "global_head_dim": 512, "attention_k_eq_v": True,
        "num_global_key_value_heads": 1, "sliding_window": 512, "num_kv_shared_layers": 6,
    },
}
#: Jamba-style (period/offset instead of a layer list; shape illustrative).
JAMBA_FIXTURE = {
    "model_type": "jamba", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "attn_layer_period": 8, "attn_layer_offset": 4, "mamba_d_state": 16,
    "mamba_d_conv": 4, "mamba_expand": 2, "max_position_embeddings": 262144,
}
#: Llama-4-style chunked attention (shape illustrative): RoPE layers see 8192-token chunks.
LLAMA_4_FIXTURE = {
    "model_type": "llama4",
    "text_config": {
        "model_type": "llama4_text", "hidden_size": 5120, "num_hidden_layers": 8, "num_attention_heads": 40,
        "num_key_value_heads": 8, "head_dim": 128, "attention_chunk_size": 8192,
        "no_rope_layers": [1, 1, 1, 0] * 2, "max_position_embeddings": 10485760,
    },
}

ALL = {
    "llama-3.1-8b": LLAMA_3_1_8B, "qwen3-8b": QWEN3_8B, "qwen2.5-7b": QWEN2_5_7B_FIXTURE,
    "gemma-3-12b": GEMMA_3_12B, "deepseek-v3": DEEPSEEK_V3, "gpt-oss-20b": GPT_OSS_20B,
    "nemotron-h-8b": NEMOTRON_H_8B, "qwen3-next": QWEN3_NEXT_80B_A3B, "lfm2-1.2b": LFM2_1_2B,
    "mistral-7b-v0.1": MISTRAL_7B_V0_1, "granite-4-h": GRANITE_4_H_FIXTURE, "gemma-4": GEMMA_4_FIXTURE,
    "jamba": JAMBA_FIXTURE, "llama-4": LLAMA_4_FIXTURE,
}


# --- KV shapes -------------------------------------------------------------------------------------------

def test_llama_3_1_8b_kv_at_8192_is_exactly_one_gib():
    shape = kv_shape(LLAMA_3_1_8B)
    assert shape.bytes_per_token == 2 * 32 * 8 * 128 * 2 == 128 * 1024
    assert kv_cache_bytes(shape, 8192) == GIB


@pytest.mark.parametrize(("config", "per_token", "ctx_max"), [
    (LLAMA_3_1_8B, 131072, 131072),
    (QWEN3_8B, 2 * 36 * 8 * 128 * 2, 40960),
    (QWEN2_5_7B_FIXTURE, 2 * 28 * 4 * 128 * 2, 32768),
    (MISTRAL_7B_V0_1, 131072, 32768),
    (DEEPSEEK_V3, 61 * (512 + 64) * 2, 163840),
    (LFM2_1_2B, 6 * 2 * 8 * 64 * 2, 128000),
])
def test_per_token_bytes_and_max_context(config, per_token, ctx_max):
    assert kv_shape(config).bytes_per_token == per_token
    assert max_context(config) == ctx_max


@pytest.mark.parametrize("config", [QWEN3_8B, QWEN2_5_7B_FIXTURE])
def test_disabled_sliding_window_is_not_applied(config):
    shape = kv_shape(config)
    assert all(g.window is None for g in shape.attention)
    assert kv_cache_bytes(shape, 32768) == 32768 * shape.bytes_per_token


def test_gemma_3_12b_uses_text_config_and_model_defaults():
    shape = kv_shape(GEMMA_3_12B)
    per_layer = 2 * 8 * 256  # head_dim 256 from the model class, not 3840 / 16 = 240
    assert shape.layers == 48
    assert sorted(shape.attention, key=lambda g: g.count) == [
        KvLayers(8, per_layer, None), KvLayers(40, per_layer, 1024)]
    assert max_context(GEMMA_3_12B) == 131072


def test_gemma_3_12b_sliding_layers_stop_growing_at_the_window():
    shape = kv_shape(GEMMA_3_12B)
    per_layer_token = 2 * 8 * 256 * 2
    assert kv_cache_bytes(shape, 1024) == 48 * per_layer_token * 1024
    assert kv_cache_bytes(shape, 32768) == (8 * 32768 + 40 * 1024) * per_layer_token
    assert shape.full_bytes_per_token == 8 * per_layer_token


def test_gemma_3_explicit_config_matches_hub_minimal_config():
    assert kv_shape(GEMMA_3_12B_EXPLICIT) == kv_shape(GEMMA_3_12B)
    assert max_context(GEMMA_3_12B_EXPLICIT) == max_context(GEMMA_3_12B)


def test_deepseek_v3_caches_the_mla_latent():
    shape = kv_shape(DEEPSEEK_V3)
    assert shape.mla
    assert shape.attention == (KvLayers(61, 576, None),)
    # Far below decompressed per-head K/V (128 heads x (192 + 128)): the reason MLA exists.
    assert shape.bytes_per_token * 50 < 61 * 128 * (192 + 128) * 2
    assert kv_cache_bytes(shape, 163840) == 61 * 576 * 2 * 163840


def test_moe_does_not_change_the_cache():
    moe_keys = {"n_routed_experts", "n_shared_experts", "num_experts_per_tok", "moe_intermediate_size",
                "first_k_dense_replace"}
    dense = {k: v for k, v in DEEPSEEK_V3.items() if k not in moe_keys}
    assert kv_shape(dense) == kv_shape(DEEPSEEK_V3)
    no_experts = {k: v for k, v in GPT_OSS_20B.items() if k not in {"num_local_experts", "experts_per_token"}}
    assert kv_shape(no_experts) == kv_shape(GPT_OSS_20B)


def test_gpt_oss_20b_alternates_sliding_128_and_full():
    shape = kv_shape(GPT_OSS_20B)
    per_layer_token = 2 * 8 * 64 * 2
    assert sorted(shape.attention, key=lambda g: g.window or 0) == [
        KvLayers(12, 2 * 8 * 64, None), KvLayers(12, 2 * 8 * 64, 128)]
    assert kv_cache_bytes(shape, 8192) == 12 * per_layer_token * (8192 + 128)
    assert kv_cache_bytes(shape, 100) == 24 * per_layer_token * 100


def test_gpt_oss_without_layer_types_uses_the_model_default_alternation():
    config = {k: v for k, v in GPT_OSS_20B.items() if k != "layer_types"}
    assert kv_shape(config) == kv_shape(GPT_OSS_20B)


def test_nemotron_h_8b_only_attention_layers_grow():
    shape = kv_shape(NEMOTRON_H_8B)
    assert shape.layers == 52
    assert shape.attention == (KvLayers(4, 2 * 8 * 128, None),)
    assert shape.recurrent_layers == 24
    ssm = 128 * 64 * 128
    conv = 3 * (128 * 64 + 2 * 8 * 128)
    assert shape.recurrent_bytes == 24 * (ssm + conv) * 4
    assert kv_cache_bytes(shape, 8192) == 4 * 2 * 8 * 128 * 2 * 8192 + shape.recurrent_bytes


def test_nemotron_h_layer_list_spellings_match_the_pattern():
    names = {"M": "mamba", "*": "attention", "-": "mlp"}
    legacy = {k: v for k, v in NEMOTRON_H_8B.items() if k != "hybrid_override_pattern"}
    legacy["layers_block_type"] = [names[c] for c in NEMOTRON_H_8B_PATTERN]
    names5 = {"M": "linear_attention", "*": "full_attention", "-": "mlp"}
    v5 = dict(legacy, layers_block_type=[names5[c] for c in NEMOTRON_H_8B_PATTERN])
    assert kv_shape(legacy) == kv_shape(NEMOTRON_H_8B) == kv_shape(v5)


def test_qwen3_next_full_attention_every_fourth_layer():
    shape = kv_shape(QWEN3_NEXT_80B_A3B)
    assert shape.attention == (KvLayers(12, 2 * 2 * 256, None),)
    assert shape.recurrent_layers == 36
    delta = 32 * 128 * 128
    conv = 3 * (2 * 16 * 128 + 32 * 128)
    assert shape.recurrent_bytes == 36 * (delta + conv) * 4
    assert max_context(QWEN3_NEXT_80B_A3B) == 262144


def test_qwen3_next_interval_without_layer_list():
    config = {k: v for k, v in QWEN3_NEXT_80B_A3B.items() if k != "layer_types"}
    assert kv_shape(config) == kv_shape(QWEN3_NEXT_80B_A3B)


def test_lfm2_conv_layers_hold_a_small_constant_state():
    shape = kv_shape(LFM2_1_2B)
    assert shape.attention_layers == 6
    assert shape.recurrent_layers == 10
    assert shape.recurrent_bytes == 10 * 2 * 2048 * 4
    assert kv_cache_bytes(shape, 4096) - kv_cache_bytes(shape, 0) == 4096 * 12288


def test_mistral_7b_v0_1_every_layer_slides():
    shape = kv_shape(MISTRAL_7B_V0_1)
    assert shape.attention == (KvLayers(32, 2 * 8 * 128, 4096),)
    assert shape.full_bytes_per_token == 0
    assert kv_cache_bytes(shape, 32768) == kv_cache_bytes(shape, 4096) == 512 * MIB


def test_granite_4_hybrid_mamba_and_attention():
    shape = kv_shape(GRANITE_4_H_FIXTURE)
    assert shape.attention == (KvLayers(4, 2 * 8 * 128, None),)
    d_inner = 128 * 64
    assert shape.recurrent_bytes == 36 * (d_inner * 128 + 3 * (d_inner + 2 * 128)) * 4


def test_gemma_4_global_heads_and_shared_kv_layers():
    shape = kv_shape(GEMMA_4_FIXTURE)
    # Layers 0-5 cache (5 sliding + layer 5 global); 6-11 reuse earlier K/V.
    assert sorted(shape.attention, key=lambda g: g.count) == [
        KvLayers(1, 2 * 1 * 512, None), KvLayers(5, 2 * 2 * 256, 512)]
    assert shape.layers == 12


def test_jamba_period_and_llama_4_chunks():
    jamba = kv_shape(JAMBA_FIXTURE)
    assert jamba.attention_layers == 4
    assert jamba.recurrent_bytes == 28 * (8192 * 16 + 3 * 8192) * 4
    llama4 = kv_shape(LLAMA_4_FIXTURE)
    assert sorted(llama4.attention, key=lambda g: g.count) == [
        KvLayers(2, 2 * 8 * 128, None), KvLayers(6, 2 * 8 * 128, 8192)]


def test_text_config_wins_over_wrapper_and_vision_keys():
    wrapped = {"model_type": "llava", "hidden_size": 1, "vision_config": {"num_hidden_layers": 99},
               "text_config": dict(LLAMA_3_1_8B)}
    assert kv_shape(wrapped) == kv_shape(LLAMA_3_1_8B)
    assert max_context(wrapped) == 131072


def test_zero_context_is_only_the_recurrent_state_and_negative_is_rejected():
    assert kv_cache_bytes(kv_shape(LLAMA_3_1_8B), 0) == 0
    shape = kv_shape(NEMOTRON_H_8B)
    assert kv_cache_bytes(shape, 0) == shape.recurrent_bytes > 0
    with pytest.raises(ValueError):
        kv_cache_bytes(shape, -1)


def test_unknown_max_context_falls_back_and_missing_layers_is_an_error():
    assert max_context({"num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 8}) == 4096
    with pytest.raises(ValueError):
        kv_shape({"num_attention_heads": 2, "hidden_size": 8})


@pytest.mark.parametrize("name", sorted(ALL))
@given(a=st.integers(0, 2**21), b=st.integers(0, 2**21))
def test_cache_never_shrinks_and_never_exceeds_full_growth(name, a, b):
    shape = kv_shape(ALL[name])
    lo, hi = sorted((a, b))
    assert kv_cache_bytes(shape, lo) <= kv_cache_bytes(shape, hi)
    assert kv_cache_bytes(shape, hi) <= hi * shape.bytes_per_token + shape.recurrent_bytes


# --- memory table and fits --------------------------------------------------------------------------------

def test_memory_row_adds_weights_cache_and_labelled_overheads():
    row = memory_row(4_920_000_000, LLAMA_3_1_8B, 8192)
    compute = compute_buffer_bytes(LLAMA_3_1_8B, 8192)
    assert row.kv_bytes == GIB
    assert row.gpu_bytes == 4_920_000_000 + GIB + compute + GPU_RUNTIME_BYTES
    assert row.cpu_bytes == 4_920_000_000 + GIB + compute + CPU_RUNTIME_BYTES
    assert 200 * MIB < compute < 400 * MIB  # llama.cpp reports ~250-300 MiB for this model with FA


def test_memory_table_default_contexts_and_model_max():
    rows = memory_table(4_920_000_000, LLAMA_3_1_8B)
    assert [r.ctx for r in rows] == [4096, 32768, 131072]
    assert [r.kv_bytes for r in rows] == [GIB // 2, 4 * GIB, 16 * GIB]
    assert all(a.gpu_bytes < b.gpu_bytes for a, b in itertools.pairwise(rows))


def test_memory_table_skips_contexts_above_the_maximum():
    assert [r.ctx for r in memory_table(1, NEMOTRON_H_8B)] == [4096, 8192]


def test_memory_table_does_not_repeat_the_maximum():
    assert [r.ctx for r in memory_table(1, MISTRAL_7B_V0_1)] == [4096, 32768]
    assert [r.ctx for r in memory_table(1, QWEN3_8B, contexts=(None, 40960, 50000))] == [40960]


def test_fits_llama_8b_files_on_common_cards():
    assert fits(4_920_000_000, LLAMA_3_1_8B) == {8: True, 12: True, 16: True, 24: True, 48: True, 80: True}
    assert fits(16_070_000_000, LLAMA_3_1_8B) == {
        8: False, 12: False, 16: False, 24: True, 48: True, 80: True}


def test_fits_budgets_are_gib():
    overhead = memory_row(0, LLAMA_3_1_8B, 8192).gpu_bytes
    exact = 8 * GIB - overhead
    assert fits(exact, LLAMA_3_1_8B, budgets_gb=(8,)) == {8: True}
    assert fits(exact + 1, LLAMA_3_1_8B, budgets_gb=(8,)) == {8: False}


def test_fits_clamps_context_to_the_model_maximum():
    big = 15 * GIB
    assert fits(big, NEMOTRON_H_8B, ctx=1_000_000) == fits(big, NEMOTRON_H_8B, ctx=8192)
