"""Full-size stand-ins, offline: seeded random models with the exact shapes of real releases.

A stand-in is a Hugging Face model folder as a Hub release has it: ``config.json`` (from
transformers' own config class), ``generation_config.json``, sharded bf16 safetensors
(``model-0000i-of-0000n.safetensors`` + ``model.safetensors.index.json``) and the real tokenizer
with its chat template, taken from the pinned llama.cpp tree (``models/ggml-vocab-*.gguf``, rebuilt
as the release's byte-level BPE ``tokenizer.json``; ``models/templates/*.jinja``). The vocabulary
size is the tokenizer's length (128,256 for Llama 3, as released), so every token id has an
embedding row.

The weights are random: every tensor is drawn from its own generator, seeded from the stand-in's
seed and the tensor's name (so one tensor can be regenerated alone, and a rerun writes the same
bytes on the same kind of device; CPU and CUDA generators give different streams, and the
folder's ``standin.json`` says which made it). Linear and embedding weights are normal with the
config's ``initializer_range``, norms are ones. **Random weights make perplexity meaningless**
(every quantized file's PPL and KLD measure noise against noise); the work, the sizes, the memory
and the timings are real, which is what the stand-ins are for.

The model is never whole in memory: tensors are generated a few at a time and streamed into the
safetensors files, whose headers are written first from the shapes alone (transformers builds the
model on the ``meta`` device to list them). Peak memory is a few of the largest tensors
(the 1 GB embedding at 8B).

    python bench/standin.py llama-3.1-8b /data/llama-8b-standin
    python bench/standin.py qwen3-moe-16l /data/moe-standin --device cuda
    python bench/standin.py --list
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: A shard's size at most, as Hub releases write them (``max_shard_size="5GB"``).
SHARD_BYTES = 5 * 10**9

LLAMA_3_1_8B: dict[str, Any] = {
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
    "tie_word_embeddings": False, "hidden_act": "silu", "initializer_range": 0.02,
    "attention_bias": False, "mlp_bias": False,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
}

#: Qwen3-30B-A3B's shapes per layer (128 experts of 768, 8 active, 32 query heads of 128 over a
#: 2048 hidden size, 4 KV heads, 151,936-token vocabulary).
QWEN3_30B_A3B: dict[str, Any] = {
    "hidden_size": 2048, "intermediate_size": 6144, "moe_intermediate_size": 768,
    "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4,
    "head_dim": 128, "num_experts": 128, "num_experts_per_tok": 8, "decoder_sparse_step": 1,
    "norm_topk_prob": True, "mlp_only_layers": [], "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": False,
    "hidden_act": "silu", "initializer_range": 0.02, "attention_bias": False,
    "bos_token_id": 151643, "eos_token_id": 151645, "router_aux_loss_coef": 0.001,
}


@dataclass(frozen=True)
class StandinSpec:
    """What one stand-in is shaped like."""

    name: str
    model_type: str  # "llama" or "qwen3_moe"
    vocab_file: str  # in the llama.cpp tree's models/
    template_file: str  # in models/templates/
    config: dict[str, Any]
    shaped_like: str
    note: str = ""
    generation: dict[str, Any] = field(default_factory=dict)
    #: The release's tokenizer puts BOS before every text (Llama 3 does, Qwen3 does not).
    add_bos: bool = False


SPECS: dict[str, StandinSpec] = {s.name: s for s in (
    StandinSpec("llama-3.1-8b", "llama", "ggml-vocab-llama-bpe.gguf",
                "meta-llama-Llama-3.1-8B-Instruct.jinja", LLAMA_3_1_8B,
                "meta-llama/Llama-3.1-8B-Instruct", "every shape of the real model",
                {"do_sample": True, "temperature": 0.6, "top_p": 0.9}, add_bos=True),
    # Llama-3.2-3B-Instruct's shapes (tied embeddings, rope factor 32): the CPU-only GGUF set
    # of bench/gguf_pipeline.py fits one 10-minute command of the GPU machine at this size.
    StandinSpec("llama-3.2-3b", "llama", "ggml-vocab-llama-bpe.gguf",
                "meta-llama-Llama-3.2-3B-Instruct.jinja",
                {**LLAMA_3_1_8B, "hidden_size": 3072, "intermediate_size": 8192,
                 "num_hidden_layers": 28, "num_attention_heads": 24, "num_key_value_heads": 8,
                 "tie_word_embeddings": True,
                 "rope_scaling": {**LLAMA_3_1_8B["rope_scaling"], "factor": 32.0}},
                "meta-llama/Llama-3.2-3B-Instruct", "every shape of the real model",
                {"do_sample": True, "temperature": 0.6, "top_p": 0.9}, add_bos=True),
    # Sized for one GPU runner's 64 GiB disk over a whole GGUF run: bf16 source S, the converted
    # GGUF S, the largest quantized file 0.53 S (Q8_0) and 2.1 GB of reference logits must fit
    # at once (2.53 S + 3 GB <= ~58 GB usable: S <= 21 GB). 16 of Qwen3-30B-A3B's 48 layers,
    # each layer exactly its shape: 10.6 B parameters, 21.2 GB in bf16.
    StandinSpec("qwen3-moe-16l", "qwen3_moe", "ggml-vocab-qwen2.gguf", "Qwen-Qwen3-0.6B.jinja",
                {**QWEN3_30B_A3B, "num_hidden_layers": 16}, "Qwen/Qwen3-30B-A3B",
                "Qwen3-30B-A3B's layer shapes, 16 of its 48 layers (a 64 GiB disk's worth)"),
    # CI: the same code paths and the real tokenizers at a few MB.
    StandinSpec("llama-tiny", "llama", "ggml-vocab-llama-bpe.gguf",
                "meta-llama-Llama-3.1-8B-Instruct.jinja",
                {**LLAMA_3_1_8B, "hidden_size": 64, "intermediate_size": 256,
                 "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "head_dim": 16, "max_position_embeddings": 4096,
                 "rope_scaling": {**LLAMA_3_1_8B["rope_scaling"],
                                  "original_max_position_embeddings": 512}},
                "meta-llama/Llama-3.1-8B-Instruct (tiny)", "CI shapes", add_bos=True),
    StandinSpec("qwen3-moe-tiny", "qwen3_moe", "ggml-vocab-qwen2.gguf", "Qwen-Qwen3-0.6B.jinja",
                {**QWEN3_30B_A3B, "hidden_size": 64, "intermediate_size": 128,
                 "moe_intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "head_dim": 16, "num_experts": 4,
                 "num_experts_per_tok": 2, "max_position_embeddings": 4096},
                "Qwen/Qwen3-30B-A3B (tiny)", "CI shapes"),
)}


def llama_cpp_tree() -> Path:
    """The pinned llama.cpp tree (vendored in the llama-cpp-python sdist quantbot builds)."""
    from runners.llamacpp import toolchain

    return toolchain().src_dir


#: The pre-tokenizer regular expressions of the two vocabularies (llama.cpp's ``llama-bpe`` and
#: ``qwen2`` pre-tokenizers; the same strings as the releases' tokenizer.json files).
PRETOKENIZE = {
    "ggml-vocab-llama-bpe.gguf": (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
                                  r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
    "ggml-vocab-qwen2.gguf": (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
}
#: llama.cpp's token type of special (control) tokens.
CONTROL = 3


@dataclass(frozen=True)
class GgufVocab:
    """A vocabulary as llama.cpp's vocab GGUF stores it."""

    tokens: list[str]
    types: list[int]
    merges: list[str]
    bos_id: int
    eos_id: int


def read_vocab(path: Path) -> GgufVocab:
    """Tokens, token types, merges and BOS/EOS of a ``ggml-vocab-*.gguf``."""
    from gguf import GGUFReader

    reader = GGUFReader(path)

    def strings(key: str) -> list[str]:
        f = reader.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def ints(key: str) -> list[int]:
        f = reader.fields[key]
        return [int(f.parts[i][0]) for i in f.data]

    return GgufVocab(strings("tokenizer.ggml.tokens"), ints("tokenizer.ggml.token_type"),
                     strings("tokenizer.ggml.merges"), ints("tokenizer.ggml.bos_token_id")[0],
                     ints("tokenizer.ggml.eos_token_id")[0])


def load_tokenizer(spec: StandinSpec, tree: Path) -> Any:
    """The real tokenizer from the tree's vocabulary GGUF, with the real chat template.

    The byte-level BPE is rebuilt with ``tokenizers`` from the GGUF's tokens, merges and
    special tokens, as the release's ``tokenizer.json`` has it (Llama 3: ``ignore_merges``, BOS
    put first by the post-processor). Not ``AutoTokenizer.from_pretrained(dir, gguf_file=...)``:
    transformers 5.17 (the GPU image's) turns this vocabulary into a SentencePiece-style BPE
    (``byte_fallback``), which llama.cpp's converter then writes as an SPM vocabulary that
    ``llama-perplexity`` cannot tokenize with (seen on the device: ``unordered_map::at`` in
    ``llama_vocab::byte_to_token``); 5.24 gets it right. The rebuilt one is the same whatever
    the transformers version, and ``tests/test_standin.py`` checks it against 5.24's loader.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    models_dir = tree / "models"
    vocab = read_vocab(models_dir / spec.vocab_file)
    bpe = models.BPE(vocab={t: i for i, t in enumerate(vocab.tokens)},
                     merges=[tuple(m.split(" ", 1)) for m in vocab.merges],
                     ignore_merges=spec.add_bos, byte_fallback=False, fuse_unk=False)
    tk = Tokenizer(bpe)
    if not spec.add_bos:
        tk.normalizer = normalizers.NFC()  # Qwen2's tokenizer.json
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE[spec.vocab_file]), behavior="isolated",
                             invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t, kind in zip(vocab.tokens, vocab.types, strict=True)
                           if kind == CONTROL])
    bos = vocab.tokens[vocab.bos_id]
    if spec.add_bos:
        tk.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
            special_tokens=[(bos, vocab.bos_id)])
    else:
        tk.post_processor = processors.ByteLevel(trim_offsets=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=bos,
                                  eos_token=vocab.tokens[vocab.eos_id],
                                  clean_up_tokenization_spaces=False)
    tok.chat_template = (models_dir / "templates" / spec.template_file).read_text()
    return tok


def make_config(spec: StandinSpec, vocab_size: int) -> Any:
    """transformers' config for ``spec`` with ``vocab_size`` rows (bf16, as released)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = AutoConfig.for_model(spec.model_type, **{**spec.config, "vocab_size": vocab_size,
                                                      "dtype": "bfloat16"})
    # A release's config names its class; converters and loaders dispatch on it.
    config.architectures = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[spec.model_type]]
    return config


@dataclass(frozen=True)
class TensorPlan:
    """One tensor to write: its name, shape and how it is initialised."""

    name: str
    shape: tuple[int, ...]
    init: str  # "normal" or "ones"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return 2 * self.numel  # bf16


def tensor_plan(config: Any) -> list[TensorPlan]:
    """Every tensor a ``from_pretrained`` of ``config`` reads, with its shape, in module order.

    The model is built on the ``meta`` device: no memory for weights.
    """
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    plan = []
    for name, tensor in model.state_dict().items():
        init = "ones" if tensor.dim() == 1 and name.endswith("norm.weight") else "normal"
        if tensor.dim() == 1 and init != "ones":
            init = "zeros"  # biases (none in these specs) start at zero, as transformers does
        plan.append(TensorPlan(name, tuple(tensor.shape), init))
    if getattr(config, "tie_word_embeddings", False):
        plan = [p for p in plan if p.name != "lm_head.weight"]
    return plan


def n_params(plan: Sequence[TensorPlan]) -> int:
    return sum(p.numel for p in plan)


def tensor_seed(seed: int, name: str) -> int:
    """A tensor's own seed: from the stand-in's seed and the tensor's name (pure)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def generate(entry: TensorPlan, seed: int, std: float, device: str = "cpu") -> Any:
    """The tensor's bf16 values on the CPU (generated on ``device``)."""
    import torch

    if entry.init == "ones":
        return torch.ones(entry.shape, dtype=torch.bfloat16)
    if entry.init == "zeros":
        return torch.zeros(entry.shape, dtype=torch.bfloat16)
    g = torch.Generator(device=device).manual_seed(tensor_seed(seed, entry.name))
    values = torch.empty(entry.shape, dtype=torch.float32, device=device)
    values.normal_(0.0, std, generator=g)
    return values.to(torch.bfloat16).cpu()


def shard_plan(plan: Sequence[TensorPlan], max_bytes: int = SHARD_BYTES) -> list[list[TensorPlan]]:
    """Tensors in order, cut into shards of at most ``max_bytes`` (a larger tensor alone; pure)."""
    shards: list[list[TensorPlan]] = [[]]
    size = 0
    for entry in plan:
        if shards[-1] and size + entry.nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(entry)
        size += entry.nbytes
    return shards


def safetensors_header(entries: Sequence[TensorPlan]) -> bytes:
    """The safetensors header for ``entries`` laid out in order (8-byte length + JSON, padded to
    8 bytes with spaces, as the format allows; pure)."""
    meta: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for e in entries:
        meta[e.name] = {"dtype": "BF16", "shape": list(e.shape),
                        "data_offsets": [offset, offset + e.nbytes]}
        offset += e.nbytes
    body = json.dumps(meta, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)
    return struct.pack("<Q", len(body)) + body


def _in_order(entries: Sequence[TensorPlan], make: Callable[[TensorPlan], Any],
              workers: int) -> Iterator[tuple[TensorPlan, Any]]:
    """``make(entry)`` for each entry, ``workers`` at a time, yielded in order (bounded memory)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: list[tuple[TensorPlan, Future]] = []
        for entry in entries:
            pending.append((entry, pool.submit(make, entry)))
            if len(pending) >= workers:
                first, fut = pending.pop(0)
                yield first, fut.result()
        for entry, fut in pending:
            yield entry, fut.result()


def write_shards(out: Path, plan: Sequence[TensorPlan], make: Callable[[TensorPlan], Any],
                 max_bytes: int = SHARD_BYTES, workers: int = 4) -> list[str]:
    """Write ``plan`` as sharded safetensors into ``out`` tensor by tensor; return file names."""
    import torch

    shards = shard_plan(plan, max_bytes)
    names = ([f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
             if len(shards) > 1 else ["model.safetensors"])
    weight_map = {}
    for fname, entries in zip(names, shards, strict=True):
        tmp = out / f".{fname}.partial"
        with tmp.open("wb") as fh:
            fh.write(safetensors_header(entries))
            for entry, tensor in _in_order(entries, make, workers):
                if tuple(tensor.shape) != entry.shape or tensor.dtype != torch.bfloat16:
                    raise ValueError(f"{entry.name}: made {tuple(tensor.shape)} {tensor.dtype}")
                fh.write(memoryview(tensor.contiguous().view(torch.int16).numpy()))
                weight_map[entry.name] = fname
        tmp.rename(out / fname)
    if len(shards) > 1:
        total = sum(e.nbytes for e in plan)
        (out / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    return names


def write_standin(name: str, out: Path, seed: int = 0, device: str = "cpu",
                  tree: Path | None = None, workers: int = 4,
                  max_shard_bytes: int = SHARD_BYTES) -> dict[str, Any]:
    """Write stand-in ``name`` into ``out`` (created; must be empty); return its description."""
    from transformers import GenerationConfig

    spec = SPECS[name]
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tok = load_tokenizer(spec, tree or llama_cpp_tree())
    config = make_config(spec, len(tok))
    plan = tensor_plan(config)
    planned = time.perf_counter()
    std = float(config.initializer_range)
    files = write_shards(out, plan, lambda e: generate(e, seed, std, device), max_shard_bytes,
                         workers)
    written = time.perf_counter()
    config.save_pretrained(out)
    tok.save_pretrained(out)
    gen = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                           **spec.generation)
    gen.save_pretrained(out)
    info = {
        "standin": name, "shaped_like": spec.shaped_like, "note": spec.note, "seed": seed,
        "generator": f"torch {device}", "n_params": n_params(plan), "vocab_size": len(tok),
        "bytes": sum(e.nbytes for e in plan), "files": files, "tensors": len(plan),
        "tokenizer": f"llama.cpp models/{spec.vocab_file}",
        "chat_template": f"llama.cpp models/templates/{spec.template_file}",
        "warning": "random weights: perplexity and KL divergence measured on this model are "
                   "meaningless; sizes, memory and timings are real",
        "seconds": {"tokenizer_and_plan": round(planned - start, 2),
                    "weights": round(written - planned, 2)},
    }
    (out / "standin.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", nargs="?", choices=sorted(SPECS))
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="where to draw the numbers (cpu, cuda)")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--tree", type=Path, default=None, help="llama.cpp tree (default: quantbot's)")
    ap.add_argument("--list", action="store_true", help="list the stand-ins and their sizes")
    args = ap.parse_args(argv)
    if args.list or not args.name:
        for spec in SPECS.values():
            print(f"{spec.name:16} {spec.model_type:10} like {spec.shaped_like}: {spec.note}")
        return 0
    if args.out is None:
        ap.error("give the output folder")
    info = write_standin(args.name, args.out, args.seed, args.device, args.tree, args.workers)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
