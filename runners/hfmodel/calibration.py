"""Calibration and evaluation tokens from quantbot's shipped texts.

The docs corpus's calibration split (:mod:`runners.texts`) feeds the quantizer; the evaluation
text (the evaluation mix of :mod:`runners.evaluation_mix` for real models, the docs' evaluation
split for the fast demo; no paragraph in common with the calibration text) measures every
variant. Both are cut into contiguous, non-overlapping blocks of the model's tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from runners.errors import QuantbotError
from runners.evaluation_mix import EvaluationText, docs_text, window_order, windows_wanted
from runners.hfmodel.types import CalibrationSet
from runners.texts import text_set

log = logging.getLogger(__name__)


def cut_blocks(ids: Sequence[int], block_len: int, n_blocks: int,
               bos_id: int | None = None) -> list[list[int]]:
    """Up to ``n_blocks`` contiguous blocks of ``block_len`` tokens (pure).

    With ``bos_id`` each block starts with BOS followed by ``block_len - 1`` text tokens, as a
    model sees a document. Fewer blocks come back when the text is short; none is padded.
    """
    if block_len < 2 or n_blocks < 1:
        raise QuantbotError(f"bad block shape {n_blocks} x {block_len}",
                            "use at least one block of two or more tokens")
    body = block_len - 1 if bos_id is not None else block_len
    blocks = []
    for i in range(n_blocks):
        part = list(ids[i * body:(i + 1) * body])
        if len(part) < body:
            break
        blocks.append([bos_id, *part] if bos_id is not None else part)
    return blocks


def _tokenize(tokenizer: Any, text: str, as_text: bool = False) -> list[int]:
    """The text's tokens; ``as_text``: special-token strings in it (a chat template's
    ``<|im_start|>``) tokenized as the plain text they are, as llama-perplexity reads a text."""
    return list(tokenizer(text, add_special_tokens=False,
                          split_special_tokens=as_text)["input_ids"])


def calibration_set(tokenizer: Any, seq_len: int = 512, n_samples: int = 128,
                    min_samples: int = 1) -> CalibrationSet:
    """``n_samples`` blocks of ``seq_len`` tokens from the calibration split."""
    text = text_set("calibration")
    ids = _tokenize(tokenizer, text.text)
    blocks = cut_blocks(ids, seq_len, n_samples, getattr(tokenizer, "bos_token_id", None))
    if len(blocks) < min_samples:
        raise QuantbotError(
            f"the calibration text gives only {len(blocks)} blocks of {seq_len} tokens",
            "lower --calib-len or --calib-samples")
    if len(blocks) < n_samples:
        log.warning("calibration: %d of %d blocks of %d tokens (text exhausted)",
                    len(blocks), n_samples, seq_len)
    return CalibrationSet(blocks=blocks, text_name=f"{text.name}, calibration split",
                          text_sha256=text.sha256)


def perplexity_windows(ids: Sequence[int], ctx: int, chunks: int,
                       bos_id: int | None) -> list[list[int]]:
    """The windows ``llama-perplexity`` scores, token for token (pure).

    llama.cpp tokenizes the whole text with BOS first, cuts it into consecutive windows of
    ``ctx`` tokens and puts BOS at the start of each (overwriting that window's first token).
    Cutting the same way here is what puts GGUF and transformers-family variants on one scale:
    the same tokens in the same windows.
    """
    tokens = [bos_id, *ids] if bos_id is not None else list(ids)
    windows = []
    for i in range(min(chunks, len(tokens) // ctx)):
        window = tokens[i * ctx:(i + 1) * ctx]
        if bos_id is not None:
            window[0] = bos_id
        windows.append(window)
    return windows


def bos_it_adds(tokenizer: Any) -> int | None:
    """The BOS id when the tokenizer puts BOS before a text (as llama.cpp then does, from the
    same tokenizer config), else None: SmolLM2, Qwen and others add none."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bos if ids and ids[0] == bos else None


def evaluation_blocks(tokenizer: Any, ctx: int = 512, chunks: int = 32,
                      text: EvaluationText | None = None
                      ) -> tuple[list[list[int]], list[str], EvaluationText]:
    """Up to ``chunks`` windows of ``ctx`` tokens of ``text`` (default: the docs' evaluation
    split), exactly as llama-perplexity cuts them (:func:`perplexity_windows`) from each domain's
    text on its own, the domains in turn (:func:`runners.evaluation_mix.window_order`); the
    windows, the domain of each, and the text. Like llama-perplexity, which tokenizes without
    parsing special tokens, it reads a chat template's markers in the text as plain text."""
    text = text or docs_text()
    bos = bos_it_adds(tokenizer)
    per_domain = [perplexity_windows(_tokenize(tokenizer, d.text, as_text=True), ctx, wanted, bos)
                  for d, wanted in zip(text.domains, windows_wanted(len(text.domains), chunks),
                                       strict=True)]
    order = window_order([len(w) for w in per_domain], chunks)
    if not order:
        raise QuantbotError(f"the evaluation text is shorter than one window of {ctx} tokens",
                            "lower --ctx")
    return ([per_domain[d][w] for d, w in order], [text.domains[d].domain for d, _ in order],
            text)
