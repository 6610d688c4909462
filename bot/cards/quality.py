"""How good a variant is, in words, and which one to recommend: one rule for every card (pure).

The mean KL divergence from the unquantized model sets the quality band; the recommended file is
the smallest whose loss is at most "low".
"""

from __future__ import annotations

from runners.results import Variant

#: (upper bound of mean KLD in nats, quality band): thresholds as llama.cpp's KLD tables use them.
KLD_BANDS: tuple[tuple[float, str], ...] = (
    (0.005, "near-lossless"),
    (0.02, "very low quality loss"),
    (0.06, "low quality loss"),
    (0.2, "moderate quality loss"),
    (float("inf"), "high quality loss"),
)
_ADVICE = {
    "near-lossless": "indistinguishable from the original on our text; use when memory allows",
    "very low quality loss": "barely differs from the original",
    "low quality loss": "balanced size and quality",
    "moderate quality loss": "smaller; for tight memory, expect visibly worse text",
    "high quality loss": "smallest; not recommended for most purposes",
}


def quality_band(kld_mean: float | None) -> str:
    if kld_mean is None:
        return "not measured"
    return next(band for bound, band in KLD_BANDS if kld_mean <= bound)


def use_case(variant: Variant, smallest: bool, best: bool) -> str:
    band = quality_band(variant.quality.kld_mean)
    notes = [band, _ADVICE.get(band, "")]
    if smallest:
        notes.append("smallest file")
    if best:
        notes.append("closest to the original")
    return " - ".join(n for n in notes if n)


def recommended(variants: list[Variant]) -> Variant:
    """The smallest file whose loss is at most "low"; if none is, the closest to the original."""
    acceptable = [v for v in variants
                  if v.quality.kld_mean is not None and v.quality.kld_mean <= KLD_BANDS[2][0]]
    if acceptable:
        return min(acceptable, key=lambda v: v.size_bytes)
    return min(variants, key=lambda v: v.quality.kld_mean or float("inf"))
