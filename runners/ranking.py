"""Which file of a set to recommend, and which no other file beats, from the measurements alone
(pure).

The cards say it in words (:mod:`bot.cards.quality`); the GGUF pipeline needs the pick itself on
the CPU, where it measures each domain's figures for the recommended file only (four more runs of
llama-perplexity per file, worth it for the one file whose per-domain table the card shows).
"""

from __future__ import annotations

from dataclasses import dataclass

from runners.adaptive import BAND_EDGES
from runners.results import Variant
from runners.stats import lies_below

#: The recommendation's bar: mean KLD at most the upper edge of the "low quality loss" band.
LOW_LOSS_KLD = BAND_EDGES[2]
#: "Nearly the same size": a file at most this much larger than the pick is worth it when the
#: intervals say it is clearly closer to the original.
NEAR_SIZE = 1.05


@dataclass(frozen=True)
class Pick:
    """The recommended file; ``first`` is the smallest file with at most low loss, which the
    front rule may have passed over (None when no file has at most low loss)."""

    chosen: Variant
    first: Variant | None


def clearly_worse(a: Variant, b: Variant) -> bool:
    """``a``'s mean KLD is above ``b``'s by more than both standard errors' 95 % intervals."""
    ka, kb = a.quality.kld_mean, b.quality.kld_mean
    if ka is None or kb is None:
        return False
    return lies_below(kb, b.quality.kld_err, ka, a.quality.kld_err)


def pick(variants: list[Variant]) -> Pick:
    """The smallest file whose mean KLD is at most "low"; if none is, the closest to the
    original. Then the front: a file at most 5 % larger whose KLD is lower beyond both 95 %
    intervals (stock mixes on small models are erratic) is picked instead."""
    acceptable = [v for v in variants
                  if v.quality.kld_mean is not None and v.quality.kld_mean <= LOW_LOSS_KLD]
    if not acceptable:
        return Pick(min(variants, key=lambda v: v.quality.kld_mean or float("inf")), None)
    first = chosen = min(acceptable, key=lambda v: v.size_bytes)
    while True:
        better = [v for v in variants if v is not chosen
                  and v.size_bytes <= chosen.size_bytes * NEAR_SIZE and clearly_worse(chosen, v)]
        if not better:
            return Pick(chosen, first)
        chosen = min(better, key=lambda v: v.quality.kld_mean or 0.0)


def pareto_front(variants: list[Variant]) -> list[Variant]:
    """The files no other file beats: none at most as large is clearly closer to the original
    (KLD intervals apart), smallest first. Overlapping intervals rank nothing, so a file stays on
    the front unless the measurement says it is dominated."""
    measured = [v for v in variants if v.quality.kld_mean is not None]
    return sorted((v for v in measured
                   if not any(o is not v and o.size_bytes <= v.size_bytes and clearly_worse(v, o)
                              for o in measured)), key=lambda v: v.size_bytes)
