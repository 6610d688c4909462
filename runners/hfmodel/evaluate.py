"""Perplexity and KL divergence of a transformers model on the evaluation windows.

Scoring follows llama.cpp's ``llama-perplexity`` so GGUF and GPTQ/AWQ numbers read alike: each
window of ``ctx`` tokens starts with BOS, and only its second half is scored (every scored token
has at least ``ctx/2`` tokens of context). The unquantized model's log-probabilities on the
scored positions are written once (float16 safetensors, one file per window) and every variant's
KL divergence is computed against them; the baseline is reused while its key matches.

The math (:func:`window_terms`, :func:`summarize`) is separate from the loop over the windows
(:func:`score_windows`), which takes any runtime's logits: transformers' (:func:`measure`, called
by the fresh-process worker in :mod:`runners.hfmodel.check`) and MLX's
(:mod:`runners.mlx.check`) share it, adaptive rule and statistics included.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runners.adaptive import schedule, settled
from runners.errors import QuantbotError
from runners.hfmodel.types import Measurement
from runners.results import DomainQuality, Quality
from runners.stats import (
    DELTA_P_PERCENTILES,
    KLD_PERCENTILES,
    mean_and_error,
    percentiles,
    rms_and_error,
    share_and_error,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

BASELINE_META = "baseline.json"


def first_scored(ctx: int) -> int:
    """Index of the first logit that is scored in a window of ``ctx`` tokens."""
    return ctx // 2


def baseline_key(blocks: list[list[int]], source: str) -> str:
    """Names a baseline: the exact tokens and the model they were scored with."""
    digest = hashlib.sha256(json.dumps([source, blocks]).encode())
    return digest.hexdigest()[:24]


def window_terms(logits: torch.Tensor, tokens: torch.Tensor,
                 base_logprobs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-token terms of one window: ``nll``, ``logprobs`` and, with a baseline, ``kld``/``same``.

    ``logits`` is ``[ctx, vocab]`` for ``tokens`` ``[ctx]``; positions ``first_scored(ctx)`` to
    ``ctx - 2`` predict the next token. ``base_logprobs`` is the baseline's ``logprobs`` for the
    same window. Everything is computed in float32.
    """
    import torch

    ctx = tokens.shape[0]
    first = first_scored(ctx)
    lp = torch.log_softmax(logits[first:ctx - 1].float(), dim=-1)
    target = tokens[first + 1:ctx].to(lp.device)
    out = {"nll": -lp.gather(1, target[:, None])[:, 0], "logprobs": lp}
    if base_logprobs is not None:
        base = base_logprobs.to(lp.device).float()
        if base.shape != lp.shape:
            raise QuantbotError(
                f"baseline log-probs have shape {tuple(base.shape)}, this model {tuple(lp.shape)}",
                "delete the baseline folder so it is computed again for this model and text")
        out["kld"] = (base.exp() * (base - lp)).sum(-1).clamp_min(0)
        out["nll_base"] = -base.gather(1, target[:, None])[:, 0]
        out["same"] = (base.argmax(-1) == lp.argmax(-1)).float()
        # Δp: the change in the probability of the right token (llama-perplexity's p - p_base)
        out["dp"] = (lp.gather(1, target[:, None])[:, 0].exp()
                     - base.gather(1, target[:, None])[:, 0].exp())
    return out


def _ppl(nll: list[float]) -> tuple[float, float]:
    """Perplexity and its standard error, as llama.cpp gives it."""
    n = len(nll)
    mean = math.fsum(nll) / n
    var = math.fsum((x - mean) ** 2 for x in nll) / (n - 1)
    ppl = math.exp(mean)
    return ppl, ppl * math.sqrt(var / n)


def summarize(nll: list[float], kld: list[float] | None = None,
              same: list[float] | None = None, dp: list[float] | None = None,
              nll_base: list[float] | None = None) -> Measurement:
    """Perplexity (± its standard error, as llama.cpp gives it) and the divergence statistics
    llama-perplexity prints, by the same formulas (:mod:`runners.stats`) (pure). With the
    original's per-token ``nll_base`` on the same tokens: its PPL and the paired ratio
    PPL(Q)/PPL(base), whose error is that of the mean per-token difference (llama-perplexity's
    ``sqrt(var_q + var_b - 2 cov)``)."""
    n = len(nll)
    if n < 2:
        raise QuantbotError(f"only {n} scored tokens", "evaluate on more or longer windows")
    ppl, ppl_err = _ppl(nll)
    out: dict[str, Any] = {"ppl": ppl, "ppl_err": ppl_err}
    if nll_base:
        base, base_err = _ppl(nll_base)
        log_ratio, log_ratio_err = mean_and_error([q - b for q, b in zip(nll, nll_base,
                                                                         strict=True)])
        ratio = math.exp(log_ratio)
        out |= {"ppl_base": base, "ppl_base_err": base_err, "ppl_ratio": ratio,
                "ppl_ratio_err": ratio * log_ratio_err}
    if kld:
        k_mean, k_err = mean_and_error(kld)
        spread = percentiles(kld, KLD_PERCENTILES)
        out |= {"kld_mean": k_mean, "kld_err": k_err, "kld_p99": spread["p99"],
                "kld_percentiles": spread}
    if same:
        share, err = share_and_error(round(math.fsum(same)), len(same))
        out |= {"same_top_p": share, "same_top_err": err}
    if dp:
        d_mean, d_err = mean_and_error(dp)
        rms, rms_err = rms_and_error(dp)
        out["delta_p"] = {**percentiles(dp, DELTA_P_PERCENTILES), "mean": round(d_mean, 8),
                          "mean_err": round(d_err, 8), "rms": round(rms, 8),
                          "rms_err": round(rms_err, 8)}
    return Measurement(quality=Quality(**out), n_scored=n)


def by_domain(labels: list[str], bounds: list[int], nll: list[float],
              kld: list[float] | None = None, same: list[float] | None = None
              ) -> list[DomainQuality] | None:
    """Each domain's figures from its windows' per-token values (pure): window ``i`` (of domain
    ``labels[i]``) is ``[bounds[i], bounds[i + 1])`` of the flat lists. None for one domain."""
    if len(set(labels)) < 2:
        return None
    spans: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        spans.setdefault(label, []).extend(range(bounds[i], bounds[i + 1]))
    out = []
    for domain, at in spans.items():
        q = summarize([nll[j] for j in at], [kld[j] for j in at] if kld else None,
                      [same[j] for j in at] if same else None).quality
        out.append(DomainQuality(domain=domain, windows=labels.count(domain), tokens=len(at),
                                 ppl=q.ppl, ppl_err=q.ppl_err, kld_mean=q.kld_mean,
                                 kld_err=q.kld_err, same_top_p=q.same_top_p,
                                 same_top_err=q.same_top_err))
    return out


def window_file(folder: Path, index: int) -> Path:
    return folder / f"window_{index:05d}.safetensors"


def baseline_ready(folder: Path, key: str) -> bool:
    meta = folder / BASELINE_META
    if not meta.is_file():
        return False
    data = json.loads(meta.read_text())
    return data.get("key") == key and all(
        window_file(folder, i).is_file() for i in range(data.get("windows", 0)))


def score_windows(logits_of: Callable[[list[int]], torch.Tensor], blocks: list[list[int]],
                  baseline_dir: Path, key: str, write_baseline: bool = False,
                  adaptive: bool = False, labels: list[str] | None = None) -> Measurement:
    """Score a model on ``blocks``, whatever runs it: ``logits_of(block)`` gives the window's
    ``[ctx, vocab]`` logits as a torch tensor (transformers' forward pass, or MLX's converted).

    Writes the baseline (unquantized, every window) or compares with it: on all windows, or with
    ``adaptive`` on the first 4, 8, 16 … until the KLD is settled (:mod:`runners.adaptive`, the
    rule llama-perplexity's measurements follow too). One loop for every runtime, so every
    format's record has the same statistics (:func:`summarize`) and ``windows`` used.
    ``labels`` (the domain of each block) adds each domain's figures on the windows used.
    """
    import torch
    from safetensors.torch import load_file, save_file

    if not write_baseline and not baseline_ready(baseline_dir, key):
        raise QuantbotError(f"no finished baseline in {baseline_dir}",
                            "evaluate the unquantized model first (the pipeline does)")
    baseline_dir.mkdir(parents=True, exist_ok=True)
    nll: list[float] = []
    kld: list[float] = []
    same: list[float] = []
    dp: list[float] = []
    nll_base: list[float] = []
    start = time.perf_counter()
    checkpoints = set(schedule(len(blocks))) if adaptive and not write_baseline else set()
    used = len(blocks)
    bounds = [0]
    for i, block in enumerate(blocks):
        tokens = torch.tensor(block, dtype=torch.long)
        base = None if write_baseline else load_file(window_file(baseline_dir, i))["logprobs"]
        terms = window_terms(logits_of(block), tokens, base)
        nll += terms["nll"].tolist()
        bounds.append(len(nll))
        if write_baseline:
            save_file({"logprobs": terms["logprobs"].half().cpu().contiguous()},
                      window_file(baseline_dir, i))
        else:
            kld += terms["kld"].tolist()
            same += terms["same"].tolist()
            dp += terms["dp"].tolist()
            nll_base += terms["nll_base"].tolist()
            if i + 1 in checkpoints and i + 1 < len(blocks) and settled(
                    summarize(nll, kld, same).quality):
                used = i + 1
                break
    result = summarize(nll, kld or None, same or None, dp or None, nll_base or None)
    domains = by_domain(labels[:len(bounds) - 1], bounds, nll, kld or None,
                        same or None) if labels else None
    result = dataclasses.replace(result, quality=dataclasses.replace(result.quality,
                                                                     domains=domains))
    if write_baseline:
        (baseline_dir / BASELINE_META).write_text(json.dumps(
            {"key": key, "windows": len(blocks), "ppl": result.quality.ppl}, indent=1))
    return replace(result, seconds=round(time.perf_counter() - start, 3), windows=used)


def measure(model: Any, blocks: list[list[int]], baseline_dir: Path, key: str,
            write_baseline: bool = False, adaptive: bool = False,
            labels: list[str] | None = None) -> Measurement:
    """Score a transformers ``model`` on ``blocks`` (:func:`score_windows`)."""
    import torch

    device = next(model.parameters()).device

    def logits_of(block: list[int]) -> torch.Tensor:
        ids = torch.tensor([block], dtype=torch.long, device=device)
        return model(input_ids=ids).logits[0]

    with torch.inference_mode():
        result = score_windows(logits_of, blocks, baseline_dir, key, write_baseline, adaptive,
                               labels)
    return replace(result, dtype=str(next(model.parameters()).dtype).removeprefix("torch."))
