"""A GGUF file's perplexity and KL divergence against the reference logits, on as many windows as
its card needs (:mod:`runners.adaptive`), each window measured once while the rule decides.

``llama-perplexity --kl-divergence`` scores every window of the reference file it is given, so
re-running it on the first 4, then 8, then 16 windows would score the first ones again at every
step (4 + 8 + 16 windows to settle on 16). Instead each step measures only its new windows, one
run per domain of the evaluation text (:mod:`runners.gguf.reference`), and the steps' figures are
pooled exactly (:func:`runners.stats.pooled`: means and standard errors combine from counts,
means and errors). That also gives each domain's figure, with no pass of its own. Percentiles
and Δp do not pool, so once the rule has settled one more run scores all the windows used, and
the row's figures are that run's. A settled file thus costs its windows twice (steps + whole
run), where re-running prefixes and a per-domain pass cost about three times; with one domain,
or windows too short for a per-domain run, the first step's run is the whole run when it settles
there.

That is the CPU's way, where windows are the cost. On the CUDA build a window of an 8B model
takes a quarter of a second and each run's start (loading the file) several, so there each step
is one run of all windows so far and the domains get one run each at the end: the fewest runs.
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


def step_runs(labels: list[str], start: int, end: int, per_window: int,
              by_domain: bool = True) -> list[tuple[str, list[int]]]:
    """The runs that measure windows ``start`` … ``end - 1`` (pure): one per domain when
    ``by_domain`` and every domain's share scores enough tokens for llama-perplexity's
    statistics, else one run of all of them (domain ``""``)."""
    domains = domain_windows(labels, end, start)
    if by_domain and len(set(labels)) > 1 and all(len(ws) * per_window >= MIN_SCORED_TOKENS
                                                  for ws in domains.values()):
        return list(domains.items())
    return [("", list(range(start, end)))]


def measure_file(tc: Toolchain, model: Path, reference: Reference, threads: int,
                 log_file: Path | None, adaptive: bool) -> Measured:
    """``model`` against ``reference``: its windows step by step until settled (or all of them
    when not ``adaptive``), then the whole run of the windows used."""
    per_window = scored(reference.n_ctx)
    parts: list[Part] = []
    peak, seconds, runs = 0, 0.0, 0
    done = 0
    for chunks in schedule(reference.chunks) if adaptive else [reference.chunks]:
        if tc.backend != "cpu":  # a tool's start costs more than a window: one run a step
            parts = []
            done = 0
        for domain, windows in step_runs(reference.labels, done, chunks, per_window,
                                         tc.backend == "cpu"):
            subset = (prefix_of(reference.logits, chunks) if windows[0] == 0
                      and windows[-1] == chunks - 1 and len(windows) == chunks
                      else windows_of(reference.logits, windows,
                                      f"{windows[0]}-{windows[-1]}-{domain or 'all'}"))
            run = llama_tools.perplexity_kld(tc, model, subset, threads, log_file)
            peak, seconds, runs = max(peak, run.peak_rss_bytes), seconds + run.seconds, runs + 1
            parts.append(Part(domain, len(windows), len(windows) * per_window,
                              llama_tools.parse_kld(run.output)))
        done = chunks
        if settled(pool_parts(parts)):
            break
    if len(parts) == 1:  # one run scored exactly the windows used
        whole = parts[0].quality
    else:
        run = llama_tools.perplexity_kld(tc, model, prefix_of(reference.logits, done), threads,
                                         log_file)
        peak, seconds, runs = max(peak, run.peak_rss_bytes), seconds + run.seconds, runs + 1
        whole = llama_tools.parse_kld(run.output)
    order = list(dict.fromkeys(reference.labels))
    by_domain = [p for p in parts if p.domain]
    domains = (domain_figures(by_domain, order)
               if len(order) > 1 and len(by_domain) == len(parts) else None)
    if len(order) > 1 and domains is None:
        domains, alone = _domains_alone(tc, model, reference, done, threads, log_file)
        runs += len(alone)
        seconds += sum(r.seconds for r in alone)
        peak = max([peak, *(r.peak_rss_bytes for r in alone)])
    log.info("gguf: %s measured on %d windows in %d runs, %.1f s", model.name, done, runs,
             seconds)
    return Measured(dataclasses.replace(whole, domains=domains), done, peak, seconds, runs)


def _domains_alone(tc: Toolchain, model: Path, reference: Reference, chunks: int, threads: int,
                   log_file: Path | None) -> tuple[list[DomainQuality] | None, list[ToolRun]]:
    """Each domain's figures from a run of its windows among the first ``chunks`` alone, where the
    steps did not run per domain (the CUDA build, or windows too short), and those runs; None
    where no domain has enough tokens."""
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
