"""The zoo: one :class:`StandIn` per architecture family quantbot is expected to take today.

Each entry names the transformers config class and only the shape knobs that make it tiny; every
other setting (activation, norms, rope flavour, router, layer pattern defaults) is the class's
own default, which is the released model's. Layer patterns are kept where they are the point
(linear/full attention, sliding/full, mamba/attention, conv/attention, NoPE layers, dense-then-MoE).
Vocabularies are the real tokenizers from the pinned llama.cpp tree's ``models/ggml-vocab-*.gguf``;
where a family's own vocabulary is not shipped there, the nearest one is used and ``note`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Tiny text shape shared by most entries: k-quant rows (input dims) stay multiples of 256.
_TEXT: Mapping[str, Any] = {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
                            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
                            "max_position_embeddings": 4096}
#: A tiny mixture of experts: 4 experts, 2 per token, expert width 256.
_MOE: Mapping[str, Any] = {"moe_intermediate_size": 256, "num_experts_per_tok": 2}
#: Template tokens of Qwen's vision models (absent from the Qwen2 vocab GGUF, added like Qwen2-VL).
_QWEN_VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                       "<|video_pad|>")
_QWEN_VISION_IDS: Mapping[str, str] = {
    "image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
    "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}
_QWEN35_LINEAR: Mapping[str, Any] = {
    "layer_types": ["linear_attention", "full_attention"], "linear_num_key_heads": 2,
    "linear_num_value_heads": 4, "linear_key_head_dim": 64, "linear_value_head_dim": 64,
    # rotary dims = head_dim * 0.25 = 16 → 8 frequency pairs split over t/h/w (interleaved MRoPE)
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0,
                        "partial_rotary_factor": 0.25, "mrope_interleaved": True,
                        "mrope_section": [3, 3, 2]}}
_QWEN35_VISION: Mapping[str, Any] = {"depth": 1, "hidden_size": 64, "intermediate_size": 128,
                                     "num_heads": 2, "out_hidden_size": 256}
_MAMBA_HEADS = 16  # x 32 head dim = 512 = expand 2 x hidden 256


def _deepseek(*names: str) -> tuple[str, ...]:
    """DeepSeek's special tokens: fullwidth bars (U+FF5C) and ▁ (U+2581) for spaces."""
    return tuple(f"<\uff5c{n.replace(' ', chr(0x2581))}\uff5c>" for n in names)


@dataclass(frozen=True)
class StandIn:
    """One tiny model standing in for a family of released checkpoints."""

    name: str  # zoo/<name>; also the cache folder's prefix
    stands_for: str  # the releases it imitates, for the matrix
    config_class: str  # transformers config class
    shape: Mapping[str, Any]  # config kwargs (nested text_config/vision_config for multimodal)
    vocab: str  # models/ggml-vocab-<vocab>.gguf of the pinned llama.cpp tree
    template: str | None  # models/templates/<template>, the chat template it ships
    model_class: str = "AutoModelForCausalLM"  # transformers class built with from_config
    multimodal: bool = False
    moe: bool = False
    #: Tokens the family's template uses that the vocab GGUF lacks: added as special tokens.
    extra_tokens: tuple[str, ...] = ()
    #: The end-of-turn token an instruct release stops on (tokenizer eos and generation eos).
    eos: str | None = None
    #: Config keys (of the top-level config) that hold a token id, by token text.
    token_ids: Mapping[str, str] = field(default_factory=dict)
    image_processor: str | None = None  # transformers image processor class (multimodal)
    #: Keys of the saved config.json rewritten to the release's own spelling (None: key removed).
    #: transformers 5 normalises some on save into names the pinned converter does not read.
    release_config: Mapping[str, Any] = field(default_factory=dict)
    #: Round the embedding rows up to a multiple of this, as releases pad their vocabularies
    #: (the converter pads Mamba models' token lists to a multiple of 8 but not the tensor).
    pad_vocab_to: int = 1
    note: str = ""

    @property
    def architecture(self) -> str:
        """The ``architectures[0]`` its config.json names (what ``quantbot support`` takes)."""
        if self.model_class.startswith("Auto"):
            return self.config_class.removesuffix("Config") + "ForCausalLM"
        return self.model_class

    @property
    def text_key(self) -> str | None:
        """Where the language model's settings live: ``text_config`` or the top level."""
        return "text_config" if "text_config" in self.shape else None


ZOO: tuple[StandIn, ...] = (
    StandIn("llama3", "Llama 3.1 / 3.2 / 3.3", "LlamaConfig",
            {**_TEXT, "tie_word_embeddings": True,
             "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                                 "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 8192},
             "max_position_embeddings": 131072},
            "llama-bpe", "meta-llama-Llama-3.2-3B-Instruct.jinja", eos="<|eot_id|>"),
    StandIn("qwen3", "Qwen3 dense (0.6B … 32B)", "Qwen3Config",
            {**_TEXT, "tie_word_embeddings": True},
            "qwen2", "Qwen-Qwen3-0.6B.jinja", eos="<|im_end|>",
            extra_tokens=("<think>", "</think>")),
    StandIn("qwen3-moe", "Qwen3 MoE (30B-A3B, 235B-A22B)", "Qwen3MoeConfig",
            {**_TEXT, **_MOE, "num_experts": 4},
            "qwen2", "Qwen-Qwen3-0.6B.jinja", moe=True, eos="<|im_end|>",
            extra_tokens=("<think>", "</think>")),
    StandIn("qwen3.5-vl", "Qwen3.5 dense with vision", "Qwen3_5Config",
            {"text_config": {**_TEXT, **_QWEN35_LINEAR, "tie_word_embeddings": True},
             "vision_config": dict(_QWEN35_VISION), "tie_word_embeddings": True},
            "qwen35", "Qwen3.5-4B.jinja", "Qwen3_5ForConditionalGeneration", multimodal=True,
            eos="<|im_end|>", extra_tokens=(*_QWEN_VISION_TOKENS, "<think>", "</think>"),
            token_ids=_QWEN_VISION_IDS, image_processor="Qwen2VLImageProcessorPil",
            note="Qwen2 vocabulary with Qwen3.5's pre-tokenizer (the real one has 248k tokens)"),
    StandIn("qwen3.5-moe-vl", "Qwen3.5 MoE with vision (35B-A3B, 397B-A17B)", "Qwen3_5MoeConfig",
            {"text_config": {**_TEXT, **_QWEN35_LINEAR, **_MOE, "num_experts": 4,
                             "shared_expert_intermediate_size": 256},
             "vision_config": dict(_QWEN35_VISION)},
            "qwen35", "Qwen3.5-4B.jinja", "Qwen3_5MoeForConditionalGeneration", multimodal=True,
            moe=True, eos="<|im_end|>", extra_tokens=(*_QWEN_VISION_TOKENS, "<think>", "</think>"),
            token_ids=_QWEN_VISION_IDS, image_processor="Qwen2VLImageProcessorPil",
            note="Qwen2 vocabulary with Qwen3.5's pre-tokenizer (the real one has 248k tokens)"),
    StandIn("gemma4-vl", "Gemma 4 with vision (31B-it)", "Gemma4Config",
            {"text_config": {**_TEXT, "layer_types": ["sliding_attention", "full_attention"],
                             "global_head_dim": 128, "sliding_window": 128,
                             "hidden_size_per_layer_input": 0, "vocab_size_per_layer_input": 0},
             "vision_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                               "num_attention_heads": 2, "num_key_value_heads": 2,
                               "head_dim": 32}},
            "gemma-4", "google-gemma-4-31B-it.jinja", "Gemma4ForConditionalGeneration",
            multimodal=True, eos="<turn|>", image_processor="Gemma4ImageProcessorPil"),
    StandIn("mistral3-vl", "Mistral 3 / Ministral 3 with vision (Pixtral encoder)", "Mistral3Config",
            {"text_config": {"model_type": "ministral3", **_TEXT},
             "vision_config": {"model_type": "pixtral", "hidden_size": 64,
                               # 3 layers: the converter maps projector linear_1/linear_2
                               # through the vision block count
                               "intermediate_size": 128, "num_hidden_layers": 3,
                               "num_attention_heads": 2, "head_dim": 32, "image_size": 256}},
            "llama-bpe", "mistralai-Ministral-3-14B-Reasoning-2512.jinja",
            "Mistral3ForConditionalGeneration", multimodal=True,
            extra_tokens=("[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[THINK]",
                          "[/THINK]", "[TOOL_CALLS]", "[ARGS]", "[AVAILABLE_TOOLS]",
                          "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[IMG]",
                          "[IMG_BREAK]", "[IMG_END]"),
            token_ids={"image_token_index": "[IMG]"}, image_processor="PixtralImageProcessorPil",
            note="Llama 3 vocabulary (Mistral's tekken is not shipped as a vocab GGUF)"),
    StandIn("glm4-moe", "GLM-4.5 / 4.6 / 4.7 (MoE)", "Glm4MoeConfig",
            {**_TEXT, **_MOE, "n_routed_experts": 4, "n_shared_experts": 1,
             "first_k_dense_replace": 1, "use_qk_norm": True, "num_nextn_predict_layers": 0},
            "qwen2", "GLM-4.6.jinja", moe=True, eos="<|user|>",
            extra_tokens=("[gMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>", "<|assistant|>",
                          "<|observation|>", "<think>", "</think>", "<tool_call>",
                          "</tool_call>"),
            note="Qwen2 vocabulary (GLM's own 151k one is not shipped as a vocab GGUF)"),
    StandIn("gpt-oss", "gpt-oss (20b, 120b)", "GptOssConfig",
            {**_TEXT, "intermediate_size": 256, "num_local_experts": 4, "num_experts_per_tok": 2,
             "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 128},
            "llama-bpe", "openai-gpt-oss-120b.jinja", moe=True, eos="<|return|>",
            extra_tokens=("<|start|>", "<|message|>", "<|channel|>", "<|constrain|>", "<|end|>",
                          "<|return|>", "<|call|>"),
            note="Llama 3 vocabulary (o200k_harmony is not shipped as a vocab GGUF)"),
    StandIn("deepseek-v3", "DeepSeek-V3 / R1 / V3.1 (MLA + MoE)", "DeepseekV3Config",
            {**_TEXT, **_MOE, "n_routed_experts": 4, "n_shared_experts": 1,
             "first_k_dense_replace": 1, "n_group": 1, "topk_group": 1, "q_lora_rank": 256,
             "kv_lora_rank": 256, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32,
             "v_head_dim": 64, "num_key_value_heads": 4, "num_nextn_predict_layers": 0,
             "head_dim": 32},  # the rotary part, = qk_rope_head_dim, as transformers derives it
            "llama-bpe", "deepseek-ai-DeepSeek-V3.1.jinja", moe=True,
            extra_tokens=(*_deepseek("User", "Assistant", "tool calls begin", "tool calls end",
                                     "tool call begin", "tool call end", "tool sep",
                                     "tool output begin", "tool output end"),
                          "<think>", "</think>"),
            note="Llama 3 vocabulary (V3's own 128k one is not shipped as a vocab GGUF, and "
                 "transformers rebuilds the shipped DeepSeek LLM one without its pre-tokenizer, "
                 "whose hash the converter then refuses)"),
    StandIn("nemotron-h", "Nemotron-H / Nemotron 3 Nano (Mamba-2 + attention + MoE)",
            "NemotronHConfig",
            {"hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 64, "max_position_embeddings": 4096,
             "layers_block_type": ["linear_attention", "moe", "full_attention", "moe"],
             "mamba_num_heads": _MAMBA_HEADS, "mamba_head_dim": 32, "n_groups": 2,
             "ssm_state_size": 64, "chunk_size": 64, "n_routed_experts": 4,
             "num_experts_per_tok": 2, "moe_intermediate_size": 256,
             "moe_shared_expert_intermediate_size": 256},
            "llama-bpe", "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.jinja", moe=True, eos="<|im_end|>",
            pad_vocab_to=64,
            release_config={"hybrid_override_pattern": "ME*E", "layers_block_type": None},
            extra_tokens=("<|im_start|>", "<|im_end|>", "<think>", "</think>"),
            note="Llama 3 vocabulary (Nemotron's own 131k one is not shipped as a vocab GGUF)"),
    StandIn("granite4-h", "Granite 4.0-H (Mamba-2 + attention, MoE)", "GraniteMoeHybridConfig",
            {"hidden_size": 256, "intermediate_size": 256, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
             "layer_types": ["mamba", "attention"], "num_local_experts": 4,
             "num_experts_per_tok": 2, "shared_intermediate_size": 512,
             "mamba_n_heads": _MAMBA_HEADS, "mamba_d_head": 32, "mamba_n_groups": 1,
             "mamba_d_state": 64, "mamba_chunk_size": 64, "position_embedding_type": "nope",
             "tie_word_embeddings": True},
            "gpt-2", "ibm-granite-granite-4.0.jinja", moe=True, eos="<|end_of_text|>",
            pad_vocab_to=64, release_config={"layer_types": ["mamba", "attention"]},
            extra_tokens=("<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>",
                          "<|tool_call|>"),
            note="GPT-2 vocabulary (Granite's own 100k one is not shipped as a vocab GGUF)"),
    StandIn("lfm2", "LFM2 / LFM2.5 (short convolutions + attention)", "Lfm2Config",
            {**_TEXT, "layer_types": ["conv", "full_attention"], "tie_word_embeddings": True},
            "llama-bpe", "LFM2.5-Instruct.jinja", eos="<|im_end|>",
            extra_tokens=("<|im_start|>", "<|im_end|>"),
            note="Llama 3 vocabulary (LFM2's own 65k one is not shipped as a vocab GGUF)"),
    StandIn("olmo3", "Olmo 3 (sliding + full attention)", "Olmo3Config",
            {**_TEXT, "layer_types": ["sliding_attention", "full_attention"],
             "sliding_window": 128},
            "gpt-2", None,
            note="GPT-2 vocabulary and no chat template (base model; the tree ships neither)"),
    StandIn("smollm3", "SmolLM3 (NoPE every 4th layer)", "SmolLM3Config",
            {**_TEXT, "num_hidden_layers": 4, "no_rope_layers": [1, 1, 1, 0],
             "tie_word_embeddings": True},
            "llama-bpe", "HuggingFaceTB-SmolLM3-3B.jinja", eos="<|im_end|>",
            extra_tokens=("<|im_start|>", "<|im_end|>", "<think>", "</think>")),
)

BY_NAME: Mapping[str, StandIn] = {s.name: s for s in ZOO}


@dataclass(frozen=True)
class KnownFailure:
    """A tool failing on a stand-in for a reason outside quantbot, recorded rather than hidden.

    ``match`` is a piece of the tool's own error that identifies it; ``why`` explains it. The zoo
    test expects exactly this failure, and fails once the tool stops failing so the entry goes.
    """

    match: str
    why: str


_NO_TORCHVISION = KnownFailure(
    "ImportError",
    "GPTQModel 7.6.0 loads the model's AutoProcessor for Qwen3.5 (require_load_processor), and "
    "transformers' Qwen3-VL video processor needs torchvision, which the gpu extra does not "
    "install.")
_META_MASK = KnownFailure(
    "Tensor.item() cannot be called on meta tensors",
    "GPTQModel 7.6.0 captures the first layer's inputs with the rest of the model on the meta "
    "device; transformers 5.24's Ministral 3 text model builds its causal mask with a "
    "data-dependent check (`_ignore_causal_mask_sdpa` calls `.item()`), which a meta tensor "
    "cannot answer.")
_DEFUSER_GLM = KnownFailure(
    "'tuple' object has no attribute 'sigmoid'",
    "GPTQModel's defuser GLM-4 MoE block expects the router to return logits; transformers "
    "5.24's Glm4MoeTopkRouter returns a tuple.")
_NEMOTRON_LAYERS = KnownFailure(
    "'NoneType' object is not subscriptable",
    "GPTQModel 7.6.0 finds no decoder layers to walk in transformers 5.24's NemotronH "
    "(layers is None when it captures the first layer's inputs).")
_GRANITE_MAMBA = KnownFailure(
    "has no attribute 'torch_forward'",
    "GPTQModel 7.6.0 patches GraniteMoeHybridMambaLayer.torch_forward, which transformers 5.24 "
    "no longer has.")

#: (stand-in, method) → the known failure. Methods: gguf (text files and projector), gptq, awq,
#: nf4. The zoo test runs gguf and gptq; the matrix runs all four.
KNOWN_FAILURES: Mapping[tuple[str, str], KnownFailure] = {
    ("mistral3-vl", "gguf"): KnownFailure(
        "v.token_embd.img_break",
        "The pinned converter's MmprojModel.filter_tensors drops every `language_model.` tensor "
        "before LlavaVisionModel can copy the [IMG_BREAK] row of the embeddings, so the "
        "projector of an HF-format Mistral 3 / Pixtral lacks it and mtmd refuses it "
        "(the text GGUFs are fine)."),
    ("qwen3.5-vl", "gptq"): _NO_TORCHVISION,
    ("qwen3.5-vl", "awq"): _NO_TORCHVISION,
    ("qwen3.5-moe-vl", "gptq"): _NO_TORCHVISION,
    ("qwen3.5-moe-vl", "awq"): _NO_TORCHVISION,
    ("gemma4-vl", "awq"): KnownFailure(
        "missing 1 required positional argument: 'layer_type'",
        "GPTQModel 7.6.0's AWQ replay calls Gemma 4's rotary embedding without the layer type "
        "that transformers 5.24 requires (sliding and full layers have their own rope)."),
    ("mistral3-vl", "gptq"): _META_MASK,
    ("mistral3-vl", "awq"): _META_MASK,
    ("glm4-moe", "gptq"): _DEFUSER_GLM,
    ("glm4-moe", "awq"): _DEFUSER_GLM,
    ("gpt-oss", "awq"): KnownFailure(
        "cannot reshape tensor of 0 elements",
        "GPTQModel 7.6.0's AWQ scale search gets an empty input for a gpt-oss expert group "
        "(also with 32 x 128 calibration tokens, so not a matter of routing coverage)."),
    ("deepseek-v3", "awq"): KnownFailure(
        "AssertionError",
        "GPTQModel 7.6.0's AWQ scale search gets a DeepSeek-V3 (MLA) scaling group of several "
        "linears without a module to inspect, and `_search_best_scale` asserts such a group "
        "has one linear (awq_processor.py: `assert len(layers) == 1`)."),
    ("nemotron-h", "gptq"): _NEMOTRON_LAYERS,
    ("nemotron-h", "awq"): _NEMOTRON_LAYERS,
    ("granite4-h", "gptq"): _GRANITE_MAMBA,
    ("granite4-h", "awq"): _GRANITE_MAMBA,
}


def standin(name: str) -> StandIn:
    """The zoo entry ``name``; a clear error naming those there are."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no stand-in {name!r}; the zoo has {', '.join(BY_NAME)}") from None
