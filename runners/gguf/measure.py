"""A GGUF file's perplexity and KL divergence against the reference logits, on as many windows as
its card needs (:mod:`runners.adaptive`), and each domain's figures where they are wanted.

Each step of the adaptive rule is one ``llama-perplexity --kl-divergence`` run of all windows so
far (4, then 8, 16 …), and the settled step's run is the row's figures, percentiles and Δp
included. Scoring only the new windows at each step and pooling (:func:`pool_parts`) would score
each window once during the steps, but percentiles and Δp do not pool, so a whole run is still
owed at the end: 4 + 4 + 8 windows and a run per step to settle on 8, against 4 + 8 here, and the
same 4 to settle on 4, where most files settle.

llama-perplexity prints statistics for the whole file only, so a file's per-domain figures come
from one more run per domain, of that domain's windows among those used (:func:`_domains_alone`):
four runs and the windows once more. The pipeline asks for them on every file where runs are
cheap (the CUDA build) and for the recommended file alone on the CPU, whose per-domain table is
the one the card shows: on the CPU every other file's windows are scored once, not twice.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from runners.adaptive import schedule, settled
from runners.gguf import llama_tools
from runners.gguf.logits import prefix_of, windows_of
from runners.gguf.reference import (
    MIN_SCORED_TOKENS,
    Reference,
    domain_windows,
    pooled_ppl,
    scored,
)
from runners.llamacpp import Toolchain
from runners.proc import ToolRun
from runners.results import DomainQuality, Quality
from runners.stats import pooled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One run's figures on some windows of one domain (``""`` when the run mixes domains)."""

    domain: str
    windows: int
    tokens: int
    quality: Quality


@dataclass(frozen=True)
class Measured:
    """A file's row: its figures, the windows they used, and the runs' cost."""

    quality: Quality
    chunks: int
    peak_rss_bytes: int
    seconds: float
    runs: int


def pool_parts(parts: list[Part]) -> Quality:
    """The figures of all of ``parts``' tokens together (pure): mean KLD, same-top share and
    log-perplexity pooled exactly from each part's count, mean and standard error."""
    tokens = [p.tokens for p in parts]
    kld = [(p.quality.kld_mean, p.quality.kld_err) for p in parts]
    top = [(p.quality.same_top_p, p.quality.same_top_err) for p in parts]
    ppl, ppl_err = pooled_ppl([(p.quality, p.tokens) for p in parts])
    out = Quality(ppl=ppl, ppl_err=ppl_err)
    if all(m is not None and e is not None for m, e in kld):
        mean, err = pooled([(m, e, n) for (m, e), n in zip(kld, tokens, strict=True)])
        out = dataclasses.replace(out, kld_mean=mean, kld_err=err)
    if all(m is not None and e is not None for m, e in top):
        share, err = pooled([(m, e, n) for (m, e), n in zip(top, tokens, strict=True)])
        out = dataclasses.replace(out, same_top_p=share, same_top_err=err)
    return out


def domain_figures(parts: list[Part], order: list[str]) -> list[DomainQuality]:
    """Each domain's figures pooled from its parts, in the text's domain ``order`` (pure)."""
    out = []
    for domain in order:
        mine = [p for p in parts if p.domain == domain]
        if not mine:
            continue
        q = pool_parts(mine)
        out.append(DomainQuality(domain=domain, windows=sum(p.windows for p in mine),
                                 tokens=sum(p.tokens for p in mine), ppl=q.ppl,
                                 ppl_err=q.ppl_err, kld_mean=q.kld_mean, kld_err=q.kld_err,
                                 same_top_p=q.same_top_p, same_top_err=q.same_top_err))
    return out


def measure_file(tc: Toolchain, model: Path, reference: Reference, threads: int,
                 log_file: Path | None, adaptive: bool, domains: bool = True) -> Measured:
    """``model`` against ``reference``: one run of the first 4, 8, 16 … windows until settled (or
    one of all of them when not ``adaptive``), then, with ``domains``, each domain's run."""
    quality, peak, seconds, runs, done = None, 0, 0.0, 0, 0
    for chunks in schedule(reference.chunks) if adaptive else [reference.chunks]:
        run = llama_tools.perplexity_kld(tc, model, prefix_of(reference.logits, chunks), threads,
                                         log_file)
        peak, seconds, runs = max(peak, run.peak_rss_bytes), seconds + run.seconds, runs + 1
        quality, done = llama_tools.parse_kld(run.output), chunks
        if settled(quality):
            break
    assert quality is not None  # the schedule has at least one step
    by_domain = None
    if domains and len(set(reference.labels)) > 1:
        by_domain, alone = _domains_alone(tc, model, reference, done, threads, log_file)
        runs += len(alone)
        seconds += sum(r.seconds for r in alone)
        peak = max([peak, *(r.peak_rss_bytes for r in alone)])
    log.info("gguf: %s measured on %d windows in %d runs, %.1f s", model.name, done, runs,
             seconds)
    return Measured(dataclasses.replace(quality, domains=by_domain), done, peak, seconds, runs)


def domain_quality(tc: Toolchain, model: Path, reference: Reference, chunks: int, threads: int,
                   log_file: Path | None) -> list[DomainQuality] | None:
    """Each domain's figures of ``model`` on its windows among the first ``chunks``: for a file
    measured without them (:func:`measure_file` with ``domains=False``)."""
    return _domains_alone(tc, model, reference, chunks, threads, log_file)[0]


def _domains_alone(tc: Toolchain, model: Path, reference: Reference, chunks: int, threads: int,
                   log_file: Path | None) -> tuple[list[DomainQuality] | None, list[ToolRun]]:
    """Each domain's figures from a run of its windows among the first ``chunks`` alone, and
    those runs; None where no domain has enough tokens."""
    per_window = scored(reference.n_ctx)
    parts, runs = [], []
    for domain, windows in domain_windows(reference.labels, chunks).items():
        if len(windows) * per_window < MIN_SCORED_TOKENS:
            log.info("evaluation: %s has %d scored tokens in the first %d windows, too few for "
                     "llama-perplexity's statistics", domain, len(windows) * per_window, chunks)
            continue
        subset = windows_of(reference.logits, windows, f"{chunks}-{domain}")
        runs.append(llama_tools.perplexity_kld(tc, model, subset, threads, log_file))
        parts.append(Part(domain, len(windows), len(windows) * per_window,
                          llama_tools.parse_kld(runs[-1].output)))
    return domain_figures(parts, list(dict.fromkeys(reference.labels))) or None, runs
