"""The unquantized model's reference logits on a text of several domains, and each file's KL
divergence per domain, with llama.cpp's ``llama-perplexity``.

llama-perplexity tokenizes one text and cuts it into windows, so a window could straddle two
domains. Instead each domain's text gets its own reference run (the windows it needs, as
:func:`runners.evaluation_mix.window_order` takes them), and the runs' windows are interleaved
into one reference file (:func:`runners.gguf.logits.write_windows`): every window holds one
domain, tokenized by llama.cpp itself, and the transformers evaluator cuts the same windows
(:func:`runners.hfmodel.calibration.evaluation_blocks`). The baseline's PPL is pooled from the
domains' runs with :func:`runners.stats.pooled`.

llama-perplexity tokenizes its text without parsing special tokens, so the chat domain's template
markers (``<|im_start|>``) are read as the plain text they are written in, by both evaluators:
the chats are measured in the model's format, not with its control tokens.

llama-perplexity prints statistics for the whole file only (its per-window running values have
5 decimals, too few to difference into a small domain's interval), so a file's per-domain KLD is
measured on files of that domain's windows alone (:mod:`runners.gguf.measure`).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from runners.evaluation_mix import EvaluationText, window_order, windows_wanted
from runners.gguf import llama_tools
from runners.gguf.logits import write_windows
from runners.llamacpp import Toolchain
from runners.results import DomainQuality, Quality
from runners.stats import pooled

log = logging.getLogger(__name__)

#: llama-perplexity prints KL-divergence statistics from this many scored tokens on.
MIN_SCORED_TOKENS = 100


@dataclass(frozen=True)
class Reference:
    """The reference logits of a run and what each of its windows is."""

    logits: Path
    labels: list[str]  # the domain of each window, in file order
    quality: Quality  # the unquantized model on every window (per domain when several)
    n_ctx: int

    @property
    def chunks(self) -> int:
        return len(self.labels)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"labels": self.labels, "quality": asdict(self.quality),
                                    "n_ctx": self.n_ctx}))

    @classmethod
    def load(cls, logits: Path, path: Path) -> Reference:
        data = json.loads(path.read_text())
        return cls(logits, data["labels"], Quality(**data["quality"]), data["n_ctx"])


def scored(n_ctx: int) -> int:
    """Tokens llama-perplexity scores per window: the second half, less the last."""
    return n_ctx - 1 - n_ctx // 2


def domain_windows(labels: list[str], chunks: int, start: int = 0) -> dict[str, list[int]]:
    """The windows of each domain among windows ``start`` … ``chunks - 1``, domains in
    first-seen order (pure)."""
    out: dict[str, list[int]] = {}
    for index in range(start, min(chunks, len(labels))):
        out.setdefault(labels[index], []).append(index)
    return out


def pooled_ppl(parts: list[tuple[Quality, int]]) -> tuple[float, float]:
    """PPL and its standard error over every token of runs known by ``(quality, scored
    tokens)`` each (pure): pooled on the log scale, as a PPL is the exp of a mean NLL."""
    mean, err = pooled([(math.log(q.ppl), q.ppl_err / q.ppl, tokens) for q, tokens in parts])
    ppl = math.exp(mean)
    return ppl, ppl * err


def pooled_baseline(parts: list[tuple[str, int, int, Quality]]) -> Quality:
    """The unquantized model's PPL on all windows from each domain's run ``(domain, windows,
    scored tokens, quality)``, with the per-domain figures kept (pure). One domain is itself."""
    if len(parts) == 1:
        return parts[0][3]
    ppl, ppl_err = pooled_ppl([(q, tokens) for _, _, tokens, q in parts])
    return Quality(ppl=ppl, ppl_err=ppl_err, domains=[
        DomainQuality(domain=d, windows=w, tokens=t, ppl=q.ppl, ppl_err=q.ppl_err)
        for d, w, t, q in parts])


def build_reference(tc: Toolchain, model: Path, text: EvaluationText, logits: Path, ctx: int,
                    max_chunks: int, threads: int, log_file: Path | None = None) -> Reference:
    """The reference logits of ``model`` on ``text`` (each domain's windows in turn) at
    ``logits``, and its layout beside it; reused while both are there."""
    layout = logits.with_suffix(".json")
    if logits.exists() and layout.exists():
        return Reference.load(logits, layout)
    names = [d.domain for d in text.domains]
    texts = [d.text for d in text.domains]
    parts = [logits.with_name(f"{logits.stem}.domain{i}.partial") for i in range(len(names))]

    def run(i: int, chunks: int) -> tuple[int, int, Quality]:
        text_file = logits.with_name(f"evaluation-{names[i]}.txt")
        text_file.write_text(texts[i], encoding="utf-8")
        done = llama_tools.perplexity_base(tc, model, text_file, parts[i], ctx, chunks, threads,
                                           log_file)
        got, n_ctx = llama_tools.parse_chunks(done.output)
        return got, n_ctx, llama_tools.parse_base_ppl(done.output)

    runs = [run(i, wanted) for i, wanted in enumerate(windows_wanted(len(names), max_chunks))]
    order = window_order([got for got, _, _ in runs], max_chunks)
    used = [sum(1 for d, _ in order if d == i) for i in range(len(names))]
    if len(order) < max_chunks:
        log.warning("evaluation: the text gives %d of %d windows of %d tokens with every "
                    "domain even", len(order), max_chunks, ctx)
    for i, (got, _, _) in enumerate(runs):
        if 0 < used[i] < got:  # a shorter domain stopped the others early: score what is used
            runs[i] = run(i, used[i])
    n_ctx = runs[0][1]
    present = [i for i in range(len(names)) if used[i]]
    quality = pooled_baseline([(names[i], used[i], used[i] * scored(n_ctx), runs[i][2])
                               for i in present])
    if len(names) == 1:
        parts[0].rename(logits)
    else:
        write_windows(parts, order, logits)
        for part in parts:
            part.unlink(missing_ok=True)
    reference = Reference(logits, [names[d] for d, _ in order], quality, n_ctx)
    reference.save(layout)
    return reference
