"""The built-in default model: a small Llama trained offline on the shipped corpus.

``quantbot demo`` needs a real causal LM and this machine cannot download one, so quantbot makes
one: a sentencepiece BPE tokenizer (byte fallback) and a 4-layer Llama trained for a fixed number
of steps with a fixed seed on the corpus's ``train`` split (:mod:`runners.texts`). It takes a few
minutes on 2 cores, once; the result is cached under quantbot's cache directory, keyed by
everything that shapes it. Its perplexity on the held-out evaluation split is far below chance
(the vocabulary size), so quantization error shows in the measurements.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from runners.paths import build_once, cache_dir
from runners.progress import progress
from runners.texts import text_set

log = logging.getLogger(__name__)

DEMO_REPO_ID = "quantbot/pydocs-llama-mini"

CARD = """---
license: apache-2.0
language:
- en
pipeline_tag: text-generation
library_name: transformers
tags:
- llama
---

# pydocs-llama-mini

A small Llama-architecture language model made offline by quantbot (`quantbot demo`): a
sentencepiece BPE tokenizer ({vocab} tokens) and a {layers}-layer, {hidden}-wide Llama trained
for {steps} steps on the prose of Python's own documentation. It exists so that quantbot's whole
pipeline can run on a real, trained model without a network.
"""


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that shapes the demo model; its hash names the cache entry."""

    vocab_size: int = 2048
    hidden_size: int = 256
    intermediate_size: int = 768
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 512
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 300
    lr: float = 3e-3
    warmup: int = 30
    seed: int = 1234
    recipe_version: int = 2

    def key(self) -> str:
        payload = json.dumps({**asdict(self), "corpus": text_set("train").sha256}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _train_tokenizer(recipe: DemoRecipe, text: str, out: Path) -> None:
    import sentencepiece as spm

    corpus = out / "train.txt"
    corpus.write_text(text, encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out / "tokenizer"), vocab_size=recipe.vocab_size,
        model_type="bpe", byte_fallback=True, character_coverage=1.0, split_digits=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=2, minloglevel=2,
        input_sentence_size=0, shuffle_input_sentence=False,
    )
    corpus.unlink()
    (out / "tokenizer.vocab").unlink()


def _token_stream(tokenizer_model: Path, text: str):
    import sentencepiece as spm
    import torch

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_model))
    ids: list[int] = []
    for paragraph in text.split("\n\n"):
        ids += [sp.bos_id(), *sp.encode(paragraph)]
    return torch.tensor(ids, dtype=torch.long)


def _train_model(recipe: DemoRecipe, tokens, out: Path) -> float:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(recipe.seed)
    config = LlamaConfig(
        vocab_size=recipe.vocab_size, hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size, num_hidden_layers=recipe.num_hidden_layers,
        num_attention_heads=recipe.num_attention_heads,
        num_key_value_heads=recipe.num_key_value_heads,
        max_position_embeddings=recipe.max_position_embeddings, rms_norm_eps=1e-5,
        bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.1, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:
        if step < recipe.warmup:
            return (step + 1) / recipe.warmup
        progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(recipe.seed)
    span = recipe.seq_len
    loss_value = float("nan")
    bar = progress(range(recipe.steps), desc="training demo model", unit="step")
    for _ in bar:
        starts = torch.randint(0, len(tokens) - span, (recipe.batch_size,), generator=gen)
        batch = torch.stack([tokens[s : s + span] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss  # the model shifts labels itself
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = 0.9 * loss_value + 0.1 * loss.item() if loss_value == loss_value else loss.item()
        bar.set_postfix(loss=f"{loss_value:.3f}")
    model.eval()
    model.generation_config.do_sample = False
    model.save_pretrained(out, safe_serialization=True)
    return loss_value


def _save_tokenizer_config(out: Path) -> None:
    """tokenizer.json + tokenizer_config.json from tokenizer.model, checked to round-trip."""
    import sentencepiece as spm
    from transformers import AutoTokenizer, LlamaTokenizer

    tok = LlamaTokenizer.from_pretrained(out, legacy=False, add_bos_token=True,
                                         add_eos_token=False)
    tok.save_pretrained(out)
    sample = "The if statement is used for conditional execution."
    expected = [1, *spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model")).encode(sample)]
    got = AutoTokenizer.from_pretrained(out)(sample).input_ids
    if got != expected:  # fails here, not later, if transformers reads the folder differently
        raise RuntimeError(f"the saved tokenizer encodes {sample!r} as {got}, not {expected}")


def build_demo_model(recipe: DemoRecipe | None = None, root: Path | None = None) -> Path:
    """The demo model's folder (a Hugging Face model folder), trained and cached on first use.

    ``root`` defaults to ``<cache>/models``; tests pass a temporary folder and a small recipe.
    """
    import torch

    recipe = recipe or DemoRecipe()
    root = root or cache_dir() / "models"
    dest = root / f"pydocs-llama-mini-{recipe.key()}"

    def make(tmp: Path) -> None:
        torch.set_num_threads(max(1, torch.get_num_threads()))
        log.info("making the demo model (once; cached in %s)", dest)
        text = text_set("train").text
        _train_tokenizer(recipe, text, tmp)
        tokens = _token_stream(tmp / "tokenizer.model", text)
        loss = _train_model(recipe, tokens, tmp)
        _save_tokenizer_config(tmp)
        (tmp / "README.md").write_text(CARD.format(
            vocab=recipe.vocab_size, layers=recipe.num_hidden_layers,
            hidden=recipe.hidden_size, steps=recipe.steps))
        (tmp / "quantbot-recipe.json").write_text(json.dumps(
            {**asdict(recipe), "final_train_loss": round(loss, 4),
             "train_tokens": len(tokens)}, indent=2))

    return build_once(dest, make, ready=lambda d: (d / "config.json").is_file())
