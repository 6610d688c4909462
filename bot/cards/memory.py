"""Memory to run a model file: weights + KV cache + runtime overhead, from the model's ``config.json`` (pure).

Cards answer "will this file run on my card at this context?". The file size is measured; the KV cache
and recurrent state follow from the architecture, so they are computed from the model's own Hugging Face
config dict (for multimodal configs, the language model's ``text_config``). Everything here is an
*estimate*: real use adds the runtime's own allocations, which vary by version, backend and flags.

Assumptions, chosen to match llama.cpp's defaults (the runtime most quantized files are run with):

* K and V are cached in **f16, 2 bytes per element** (llama.cpp ``-ctk/-ctv f16``; transformers caches
  in the bf16/f16 compute dtype, also 2 bytes).
* **MLA** (DeepSeek-V2/V3, Kimi-K2, GLM-4.7-Flash: configs with ``kv_lora_rank``): one compressed latent of
  ``kv_lora_rank + qk_rope_head_dim`` elements per layer per token, as llama.cpp caches it (V is read as
  a view of the latent, not stored again). transformers instead caches decompressed per-head K/V, which
  is far larger.
* **Sliding-window / chunked** layers hold ``min(ctx, window)`` tokens (llama.cpp adds a ubatch of slack
  to its SWA cache; ignored). Note llama.cpp runs Mistral-7B-v0.1 (``sliding_window`` on a plain Llama
  architecture) with full attention, so for its GGUF files the estimate is low past 4096 tokens.
* **Recurrent layers** (Mamba, gated DeltaNet "linear_attention", LFM2 short convolutions) keep a state
  whose size does not depend on context, in **f32, 4 bytes per element** (llama.cpp's recurrent cache
  type; transformers' ``mamba_ssm_cache_dtype`` default). It is 0 when the config does not describe it.
* Layers without a token mixer (Nemotron-H ``-``/``E`` MLP/MoE layers), KV-sharing layers (Gemma 3n/4
  ``num_kv_shared_layers``) and multi-token-prediction layers cache nothing. MoE does not change the
  cache: experts are feed-forward weights, already counted in the file size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KV_BYTES_PER_ELEMENT = 2  # f16 K/V cache (llama.cpp default; transformers' bf16/f16 cache is also 2 bytes)
STATE_BYTES_PER_ELEMENT = 4  # f32 recurrent state (llama.cpp's r/s cache type)
F32 = 4
MIB = 2**20
GIB = 2**30

#: llama.cpp's default micro-batch: the compute buffer holds activations for this many tokens at once.
UBATCH = 512
#: CUDA context + cuBLAS workspaces: 300-500 MiB on current drivers whatever the model; rounded up.
GPU_RUNTIME_BYTES = 512 * MIB
#: Process, tokenizer, host-side copies of small tensors when running on the CPU only.
CPU_RUNTIME_BYTES = 256 * MIB
#: Used when a config has no ``vocab_size`` (the logits buffer scales with it): a typical modern vocabulary.
FALLBACK_VOCAB = 131_072
#: Used when a config gives no maximum context: small, so unknown models are never promised long contexts.
FALLBACK_MAX_CONTEXT = 4096

# Keys transformers leaves out of saved configs because the model class supplies them (Gemma 3's hub
# config.json has no head_dim, and 3840 / 16 heads would give a wrong 240). Values from transformers 5.x.
_MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma2": {"head_dim": 256, "sliding_window": 4096, "sliding_window_pattern": 2,
               "max_position_embeddings": 8192},
    "gemma3_text": {"head_dim": 256, "sliding_window": 4096, "sliding_window_pattern": 6,
                    "max_position_embeddings": 131_072},
    "gemma3n_text": {"head_dim": 256, "sliding_window": 512, "sliding_window_pattern": 5,
                     "num_kv_shared_layers": 15, "max_position_embeddings": 32_768},
    "gemma4_text": {"head_dim": 256, "global_head_dim": 512, "sliding_window": 512,
                    "sliding_window_pattern": 6, "max_position_embeddings": 131_072},
    "gpt_oss": {"head_dim": 64, "sliding_window": 128, "sliding_window_pattern": 2},
    "qwen3_next": {"head_dim": 256, "full_attention_interval": 4},
    "qwen3_5_text": {"head_dim": 256, "full_attention_interval": 4},
    "qwen3_5_moe_text": {"head_dim": 256, "full_attention_interval": 4},
    "lfm2": {"conv_L_cache": 3},
}
# Multimodal wrappers whose text_config may omit model_type.
_TEXT_MODEL_TYPE = {"gemma3": "gemma3_text", "gemma3n": "gemma3n_text", "gemma4": "gemma4_text",
                    "qwen3_5": "qwen3_5_text", "qwen3_5_moe": "qwen3_5_moe_text"}
_TEXT_CONFIG_KEYS = ("text_config", "llm_config", "language_config")
_RECURRENT_ONLY_MODELS = frozenset({"mamba", "mamba2", "falcon_mamba", "rwkv", "rwkv6", "rwkv7"})

# Layer kinds after normalising every spelling configs use.
FULL, WINDOW, RECURRENT, HYBRID, NONE = "full", "window", "recurrent", "hybrid", "none"
_LAYER_TYPE_KIND = {
    "full_attention": FULL, "attention": FULL, "global_attention": FULL, "global": FULL,
    "indexed_attention": FULL, "deepseek_sparse_attention": FULL,
    "sliding_attention": WINDOW, "local_attention": WINDOW, "local": WINDOW, "chunked_attention": WINDOW,
    "linear_attention": RECURRENT, "mamba": RECURRENT, "mamba2": RECURRENT, "conv": RECURRENT,
    "short_conv": RECURRENT, "ssm": RECURRENT, "recurrent": RECURRENT,
    "hybrid": HYBRID,
    "mlp": NONE, "moe": NONE, "dense": NONE, "sparse": NONE,
}
# Nemotron-H hybrid_override_pattern: M = Mamba-2, * = attention, - = MLP, E = MoE.
_PATTERN_KIND = {"M": RECURRENT, "*": FULL, "-": NONE, "E": NONE}


@dataclass(frozen=True)
class KvLayers:
    """Attention layers that share one cache geometry."""

    count: int
    elements_per_token: int  # K + V (or MLA latent) elements one layer stores per token
    window: int | None  # most tokens a layer holds (sliding/chunked); None = every token


@dataclass(frozen=True)
class KvShape:
    """What a model caches while generating: attention layers grow with context, recurrent ones do not."""

    layers: int  # decoder layers, of every kind
    attention: tuple[KvLayers, ...]
    recurrent_layers: int
    recurrent_bytes: int  # constant state of all recurrent layers together (f32)
    mla: bool

    @property
    def attention_layers(self) -> int:
        return sum(g.count for g in self.attention)

    @property
    def bytes_per_token(self) -> int:
        """Cache bytes one token adds while the context is shorter than every window."""
        return sum(g.count * g.elements_per_token for g in self.attention) * KV_BYTES_PER_ELEMENT

    @property
    def full_bytes_per_token(self) -> int:
        """Cache bytes one token adds once windows are full: only full-attention layers keep growing."""
        return sum(g.count * g.elements_per_token for g in self.attention
                   if g.window is None) * KV_BYTES_PER_ELEMENT


@dataclass(frozen=True)
class MemoryRow:
    """Estimated memory to run one file at one context: on a GPU (fully offloaded) and on the CPU alone."""

    file_bytes: int
    ctx: int
    gpu_bytes: int
    cpu_bytes: int
    kv_bytes: int = 0  # KV cache + recurrent state, included in both figures


def text_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The language model's config: a multimodal ``text_config`` over the wrapper's keys, plus the
    defaults transformers would fill in for keys the saved file leaves out."""
    merged = dict(config)
    for key in _TEXT_CONFIG_KEYS:
        sub = config.get(key)
        if isinstance(sub, Mapping):
            merged = {k: v for k, v in config.items() if not k.endswith("_config")} | dict(sub)
            if not sub.get("model_type") and config.get("model_type"):
                merged["model_type"] = config["model_type"]
            break
    model_type = str(merged.get("model_type") or "")
    model_type = _TEXT_MODEL_TYPE.get(model_type, model_type)
    merged["model_type"] = model_type
    for key, value in _MODEL_DEFAULTS.get(model_type, {}).items():
        if merged.get(key) is None:
            merged[key] = value
    return merged


def _first(cfg: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return None


def _positive(value: Any) -> int | None:
    """``value`` as a positive int, or None (missing, null, zero, negative, a string such as "auto")."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        return None
    return int(value)


def max_context(config: Mapping[str, Any]) -> int:
    """The longest context the model was built for: ``max_position_embeddings`` (the text config's for
    multimodal models). Falls back to :data:`FALLBACK_MAX_CONTEXT` when the config names none."""
    cfg = text_config(config)
    found = _first(cfg, "max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
    return _positive(found) or FALLBACK_MAX_CONTEXT


def _n_layers(cfg: Mapping[str, Any]) -> int:
    n = _positive(_first(cfg, "num_hidden_layers", "n_layer", "num_layers", "n_layers"))
    if n is None:
        raise ValueError("config has no num_hidden_layers")
    return n


def _sliding_window(cfg: Mapping[str, Any]) -> int | None:
    """The window, or None when sliding attention is off (Qwen2/3 set a window but ``use_sliding_window``
    false)."""
    if cfg.get("use_sliding_window") is False:
        return None
    return _positive(cfg.get("sliding_window"))


def _layer_kinds(cfg: Mapping[str, Any]) -> list[tuple[str, int | None]]:
    """(kind, window) for every decoder layer."""
    window = _sliding_window(cfg)
    chunk = _positive(cfg.get("attention_chunk_size"))
    listed = _first(cfg, "layer_types", "layers_block_type")
    pattern = cfg.get("hybrid_override_pattern")
    if isinstance(listed, Sequence) and not isinstance(listed, str) and listed:
        kinds: list[tuple[str, int | None]] = []
        for name in listed:
            kind = _LAYER_TYPE_KIND.get(str(name).lower(), FULL)  # unknown: assume it caches, the safe side
            if kind == WINDOW:
                size = chunk if str(name).lower() == "chunked_attention" else window
                kinds.append((WINDOW, size) if size else (FULL, None))
            else:
                kinds.append((kind, None))
        return kinds
    if isinstance(pattern, str) and pattern:
        return [(_PATTERN_KIND.get(ch, FULL), None) for ch in pattern]
    n = _n_layers(cfg)
    if cfg.get("model_type") in _RECURRENT_ONLY_MODELS:
        return [(RECURRENT, None)] * n
    period = _positive(cfg.get("attn_layer_period"))
    if period:  # Jamba: attention every `period` layers at `offset`, Mamba elsewhere
        offset = int(cfg.get("attn_layer_offset") or 0)
        return [(FULL, None) if i % period == offset else (RECURRENT, None) for i in range(n)]
    interval = _positive(cfg.get("full_attention_interval"))
    if interval:  # Qwen3-Next / Qwen3.5 without an explicit list
        return [(FULL, None) if (i + 1) % interval == 0 else (RECURRENT, None) for i in range(n)]
    no_rope = cfg.get("no_rope_layers")
    if chunk and isinstance(no_rope, Sequence) and len(no_rope) == n:  # Llama 4: RoPE layers are chunked
        return [(WINDOW, chunk) if no_rope[i] else (FULL, None) for i in range(n)]
    if window is None:
        return [(FULL, None)] * n
    every = _positive(cfg.get("sliding_window_pattern"))
    if every:  # Gemma: layer i is global when (i + 1) % pattern == 0
        return [(FULL, None) if (i + 1) % every == 0 else (WINDOW, window) for i in range(n)]
    max_window_layers = cfg.get("max_window_layers")
    if cfg.get("use_sliding_window") and isinstance(max_window_layers, int):  # Qwen2: SWA from this layer
        return [(WINDOW, window) if i >= max_window_layers else (FULL, None) for i in range(n)]
    return [(WINDOW, window)] * n  # Mistral-7B-v0.1: every layer slides


def _recurrent_state_elements(cfg: Mapping[str, Any]) -> int:
    """Elements of one recurrent layer's state (conv + SSM/delta), from whichever description the
    config carries; 0 when it carries none."""
    hidden = _positive(_first(cfg, "hidden_size", "d_model", "n_embd")) or 0
    # Gated DeltaNet (Qwen3-Next, Qwen3.5): a k x v matrix per value head + a short conv over q, k, v.
    v_heads = _positive(cfg.get("linear_num_value_heads"))
    if v_heads:
        k_dim = _positive(cfg.get("linear_key_head_dim")) or 128
        v_dim = _positive(cfg.get("linear_value_head_dim")) or 128
        k_heads = _positive(cfg.get("linear_num_key_heads")) or v_heads
        conv = (_positive(cfg.get("linear_conv_kernel_dim")) or 4) - 1
        return v_heads * k_dim * v_dim + conv * (2 * k_heads * k_dim + v_heads * v_dim)
    # Mamba-2 (Nemotron-H, Granite-4 hybrid, Falcon-H1): d_state per head channel + conv over x, B, C.
    heads = _positive(_first(cfg, "mamba_num_heads", "mamba_n_heads"))
    d_state = _positive(_first(cfg, "ssm_state_size", "mamba_d_state", "state_size", "d_state"))
    expand = _positive(_first(cfg, "mamba_expand", "expand")) or 2
    d_conv = _positive(_first(cfg, "conv_kernel", "mamba_d_conv", "d_conv")) or 4
    if heads and d_state:
        head_dim = _positive(_first(cfg, "mamba_head_dim", "mamba_d_head")) or (expand * hidden) // heads
        d_inner = _positive(cfg.get("mamba_d_ssm")) or heads * head_dim
        groups = _positive(_first(cfg, "n_groups", "mamba_n_groups")) or 1
        return d_inner * d_state + (d_conv - 1) * (d_inner + 2 * groups * d_state)
    # Mamba-1 (Jamba, Falcon-Mamba): d_inner x d_state + conv over x.
    if d_state:
        d_inner = expand * hidden
        return d_inner * d_state + (d_conv - 1) * d_inner
    # LFM2 short convolution: llama.cpp keeps (L_cache - 1) past inputs of width hidden_size.
    l_cache = _positive(cfg.get("conv_L_cache"))
    if l_cache:
        return (l_cache - 1) * hidden
    return 0


def _attention_elements(cfg: Mapping[str, Any], full_layer: bool) -> int:
    """K + V elements per token for one attention layer (or the MLA latent)."""
    if _positive(cfg.get("kv_lora_rank")):
        return int(cfg["kv_lora_rank"]) + int(cfg.get("qk_rope_head_dim") or 0)
    heads = _positive(_first(cfg, "num_attention_heads", "n_head", "num_heads"))
    if heads is None:
        raise ValueError("config has no num_attention_heads")
    kv_heads = _positive(_first(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv",
                                "multi_query_group_num"))
    if kv_heads is None:
        kv_heads = 1 if cfg.get("multi_query") else heads
    head_dim = _positive(_first(cfg, "head_dim", "kv_channels"))
    if head_dim is None:
        hidden = _positive(_first(cfg, "hidden_size", "d_model", "n_embd"))
        if hidden is None:
            raise ValueError("config has neither head_dim nor hidden_size")
        head_dim = hidden // heads
    if full_layer and _positive(cfg.get("global_head_dim")):  # Gemma 4: wider heads on global layers
        head_dim = int(cfg["global_head_dim"])
        if cfg.get("attention_k_eq_v") and _positive(cfg.get("num_global_key_value_heads")):
            kv_heads = int(cfg["num_global_key_value_heads"])
    return 2 * kv_heads * head_dim


def kv_shape(config: Mapping[str, Any]) -> KvShape:
    """The cache geometry of the model ``config`` (a parsed HF ``config.json``) describes."""
    cfg = text_config(config)
    kinds = _layer_kinds(cfg)
    shared = int(cfg.get("num_kv_shared_layers") or 0)
    if 0 < shared <= len(kinds):  # Gemma 3n/4: the last layers reuse earlier layers' K/V
        kinds = kinds[: len(kinds) - shared] + [(NONE, None)] * shared
    groups: dict[tuple[int, int | None], int] = {}
    recurrent = 0
    for kind, window in kinds:
        if kind in (RECURRENT, HYBRID):
            recurrent += 1
        if kind in (FULL, WINDOW, HYBRID):
            key = (_attention_elements(cfg, full_layer=kind != WINDOW), window)
            groups[key] = groups.get(key, 0) + 1
    state = _recurrent_state_elements(cfg) if recurrent else 0
    return KvShape(
        layers=len(kinds),
        attention=tuple(KvLayers(count, elements, window) for (elements, window), count in groups.items()),
        recurrent_layers=recurrent,
        recurrent_bytes=recurrent * state * STATE_BYTES_PER_ELEMENT,
        mla=bool(_positive(cfg.get("kv_lora_rank"))),
    )


def kv_cache_bytes(shape: KvShape, ctx: int) -> int:
    """Bytes of KV cache (f16) plus recurrent state (f32) for ``ctx`` tokens of context."""
    if ctx < 0:
        raise ValueError(f"context must be >= 0, got {ctx}")
    tokens = sum(g.count * g.elements_per_token * (ctx if g.window is None else min(ctx, g.window))
                 for g in shape.attention)
    return tokens * KV_BYTES_PER_ELEMENT + shape.recurrent_bytes


def compute_buffer_bytes(config: Mapping[str, Any], ctx: int) -> int:
    """Estimate of llama.cpp's compute buffer with flash attention (its GPU default): f32 logits and a few
    hidden-state activations for one ubatch, plus the f16 attention mask, which grows with context."""
    cfg = text_config(config)
    vocab = _positive(_first(cfg, "vocab_size", "padded_vocab_size")) or FALLBACK_VOCAB
    hidden = _positive(_first(cfg, "hidden_size", "d_model", "n_embd")) or 0
    return UBATCH * F32 * (vocab + 4 * hidden) + UBATCH * ctx * KV_BYTES_PER_ELEMENT


def memory_row(file_bytes: int, config: Mapping[str, Any], ctx: int,
               shape: KvShape | None = None) -> MemoryRow:
    """Estimated memory at one context. GPU = weights + cache + compute buffer + CUDA runtime;
    CPU = weights + cache + compute buffer + process overhead."""
    kv = kv_cache_bytes(shape or kv_shape(config), ctx)
    base = file_bytes + kv + compute_buffer_bytes(config, ctx)
    return MemoryRow(file_bytes=file_bytes, ctx=ctx, gpu_bytes=base + GPU_RUNTIME_BYTES,
                     cpu_bytes=base + CPU_RUNTIME_BYTES, kv_bytes=kv)


def memory_table(file_bytes: int, config: Mapping[str, Any],
                 contexts: Iterable[int | None] = (4096, 32768, None)) -> list[MemoryRow]:
    """One estimate row per context (None = the model's maximum); contexts above the maximum and
    repeats are skipped, so a 32k model shows no 32768 row twice."""
    limit = max_context(config)
    shape = kv_shape(config)
    rows: list[MemoryRow] = []
    seen: set[int] = set()
    for ctx in contexts:
        n = limit if ctx is None else ctx
        if n > limit or n in seen:
            continue
        seen.add(n)
        rows.append(memory_row(file_bytes, config, n, shape))
    return rows


def fits(file_bytes: int, config: Mapping[str, Any], ctx: int = 8192,
         budgets_gb: Iterable[int] = (8, 12, 16, 24, 48, 80)) -> dict[int, bool]:
    """Whether the file runs fully on a GPU of each size at ``ctx`` (clamped to the model's maximum).

    Budgets are GiB (2**30 bytes): cards sold as "24 GB" have 24 GiB, so GiB is the honest reading.
    """
    row = memory_row(file_bytes, config, min(ctx, max_context(config)))
    return {budget: row.gpu_bytes <= budget * GIB for budget in budgets_gb}


__all__ = [
    "CPU_RUNTIME_BYTES", "GPU_RUNTIME_BYTES", "KV_BYTES_PER_ELEMENT", "STATE_BYTES_PER_ELEMENT", "UBATCH",
    "KvLayers", "KvShape", "MemoryRow", "compute_buffer_bytes", "fits", "kv_cache_bytes", "kv_shape",
    "max_context", "memory_row", "memory_table", "text_config",
]
