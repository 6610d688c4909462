"""Mixture-of-experts models: the weights stored against the weights one token runs through (pure).

The Hub counts every stored weight (``safetensors.total``), which is what a job downloads, holds
and quantizes; but a MoE model routes each token through ``k`` of its ``E`` routed experts in
every MoE layer (plus its shared experts), so what it costs to *run* per token is far smaller, and
that is the number users compare models by (Qwen3-30B-A3B: 30.5B total, 3.3B active). The active
count is the total minus what a token skips:

* in every MoE layer, ``E - k`` routed experts of ``m x hidden x expert_intermediate`` weights
  each (``m`` = 3 for gated MLPs; 2 for Nemotron-H's ungated ``relu2`` experts);
* every multi-token-prediction layer (DeepSeek-V3, GLM-4.5 ``num_nextn_predict_layers``): ordinary
  decoding never runs it, and the checkpoint stores it with all its experts, its shared experts,
  its projection and its own copy of the embedding and output head.

Which decoder layers are MoE layers follows each family's own spelling in ``config.json``
(``decoder_sparse_step``/``mlp_only_layers``, ``first_k_dense_replace``/``moe_layer_freq``,
``num_dense_layers``, ``interleave_moe_layer_step``/``moe_layers``, ``expert_layer_period``,
``moe_layer_start_index``/``moe_layer_interval``, Nemotron-H's ``hybrid_override_pattern``,
``mlp_layer_types``). Attention, norms, routers and biases are all counted as active, so the
figure is a close estimate, never a measurement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.cards.memory import text_config

_ROUTED = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")
_PER_TOKEN = ("num_experts_per_tok", "experts_per_token", "num_experts_per_token", "moe_k",
              "moe_topk", "top_k_experts")
_SHARED = ("n_shared_experts", "num_shared_experts", "moe_num_shared_experts")
_EXPERT_WIDTH = ("moe_intermediate_size", "expert_intermediate_size", "intermediate_size")
_SHARED_WIDTH = ("moe_shared_expert_intermediate_size", "shared_expert_intermediate_size")
#: Activations of ungated expert MLPs (an up and a down projection, no gate).
_UNGATED = frozenset({"relu2", "squared_relu"})


@dataclass(frozen=True)
class Experts:
    """A MoE model's size: all it stores, and what one token runs through."""

    total: int  # every stored weight (the Hub's safetensors total)
    active: int  # the weights one token runs through
    routed: int  # routed experts per MoE layer (E)
    per_token: int  # routed experts each token goes through (k)
    shared: int  # shared experts per MoE layer, which every token also runs
    moe_layers: int


def _int(value: Any) -> int | None:
    """A positive int, else None (missing, null, zero, a list, a string, a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _first(cfg: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        found = _int(cfg.get(key))
        if found is not None:
            return found
    return None


def _ints(value: Any) -> list[int] | None:
    if isinstance(value, Sequence) and not isinstance(value, str) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    return None


def moe_layers(cfg: Mapping[str, Any], layers: int) -> int:
    """How many of the ``layers`` decoder layers route tokens to experts."""
    pattern = cfg.get("hybrid_override_pattern")  # Nemotron-H: M Mamba, * attention, - MLP, E MoE
    if isinstance(pattern, str) and pattern:
        return pattern.count("E")
    kinds = cfg.get("mlp_layer_types")
    if isinstance(kinds, Sequence) and not isinstance(kinds, str) and kinds:
        return sum(1 for kind in kinds if kind in ("sparse", "moe"))
    listed = _ints(cfg.get("moe_layers"))  # Llama 4
    if listed:
        return len({i for i in listed if 0 <= i < layers})
    dense = set(_ints(cfg.get("mlp_only_layers")) or ())
    start = (_int(cfg.get("first_k_dense_replace")) or _int(cfg.get("num_dense_layers"))
             or _int(cfg.get("moe_layer_start_index")) or 0)
    end = cfg.get("moe_layer_end_index")
    end = end if isinstance(end, int) and not isinstance(end, bool) and end >= 0 else layers - 1
    every = (_int(cfg.get("decoder_sparse_step")) or _int(cfg.get("interleave_moe_layer_step"))
             or _int(cfg.get("moe_layer_interval")) or 1)  # layer i when (i + 1) % every == 0
    freq = _int(cfg.get("moe_layer_freq")) or 1  # DeepSeek: layer i when i % freq == 0
    period = _int(cfg.get("expert_layer_period"))  # Jamba: i % period == offset
    offset = cfg.get("expert_layer_offset") if isinstance(cfg.get("expert_layer_offset"), int) else 0
    return sum(1 for i in range(layers)
               if i not in dense and start <= i <= end and (i + 1) % every == 0 and i % freq == 0
               and (period is None or i % period == offset))


def experts(config: Mapping[str, Any], total: int) -> Experts | None:
    """The MoE shape of a model of ``total`` stored weights, or None when its config describes
    no routed experts (a dense model) or the figures do not add up (then nothing is claimed)."""
    cfg = text_config(config)
    routed, per_token = _first(cfg, _ROUTED), _first(cfg, _PER_TOKEN)
    hidden = _first(cfg, ("hidden_size", "d_model", "n_embd"))
    layers = _first(cfg, ("num_hidden_layers", "n_layer", "num_layers"))
    width = _first(cfg, _EXPERT_WIDTH)
    if None in (routed, per_token, hidden, layers, width) or total <= 0:
        return None
    assert routed and per_token and hidden and layers and width
    if routed < 2 or not 0 < per_token < routed:
        return None
    act = cfg.get("mlp_hidden_act") or cfg.get("hidden_act")
    matrices = 2 if act in _UNGATED else 3
    expert = matrices * hidden * width
    shared = _first(cfg, _SHARED) or 0
    sparse = moe_layers(cfg, layers)
    skipped = sparse * (routed - per_token) * expert
    mtp = _int(cfg.get("num_nextn_predict_layers")) or 0
    if mtp:
        shared_width = _first(cfg, _SHARED_WIDTH) or shared * width
        vocab = _int(cfg.get("vocab_size")) or 0
        skipped += mtp * (routed * expert + matrices * hidden * shared_width
                          + 2 * hidden * hidden + 2 * vocab * hidden)
    active = total - skipped
    if sparse == 0 or not 0 < active < total:
        return None
    return Experts(total=total, active=active, routed=routed, per_token=per_token, shared=shared,
                   moe_layers=sparse)
