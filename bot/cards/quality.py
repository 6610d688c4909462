"""How good a variant is, in words, and which one to recommend: one rule for every card (pure).

The mean KL divergence from the unquantized model sets the quality band; the recommended file is
the smallest whose loss is at most "low" (the rule itself is :mod:`runners.ranking`).
"""

from __future__ import annotations

from runners.adaptive import BAND_EDGES
from runners.answers import Answers
from runners.ranking import clearly_worse, pick
from runners.results import Quality, Variant
from runners.stats import ci95

#: (upper bound of mean KLD in nats, quality band): thresholds as llama.cpp's KLD tables use them.
#: The edges are the runners' (runners.adaptive.BAND_EDGES: adaptive windows settle against them).
KLD_BANDS: tuple[tuple[float, str], ...] = tuple(zip(
    (*BAND_EDGES, float("inf")),
    ("near-lossless", "very low quality loss", "low quality loss", "moderate quality loss",
     "high quality loss"), strict=True))
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


def recommendation(variants: list[Variant]) -> tuple[Variant, str]:
    """The file to recommend (:func:`runners.ranking.pick`) and why, in words that are true of
    it."""
    picked = pick(variants)
    chosen, first = picked.chosen, picked.first
    if first is None:
        return chosen, (f'no file here measured "low" quality loss or better; this one is the '
                        f'closest to the original ({quality_band(chosen.quality.kld_mean)})')
    if chosen is first:
        return chosen, 'the smallest file whose measured quality loss is at most "low"'
    extra = 100 * (chosen.size_bytes / first.size_bytes - 1)
    return chosen, (f"not `{first.name}`, the smallest file whose measured loss is at most "
                    f"\"low\": this one is {extra:.0f} % larger and measured clearly closer to "
                    f"the original (KLD {chosen.quality.kld_mean:.4f} against "
                    f"{first.quality.kld_mean:.4f}, 95 % intervals apart)")


def recommended(variants: list[Variant]) -> Variant:
    """The file :func:`recommendation` picks."""
    return recommendation(variants)[0]


def interval_text(value: float | None, standard_error: float | None, spec: str,
                  scale: float = 1.0) -> str:
    """``value ± half-width`` of its 95 % interval: the cards' one way to show an estimate."""
    if value is None:
        return "n/a"
    half = ci95(standard_error)
    shown = format(value * scale, spec)
    return shown if half is None else f"{shown} ± {format(half * scale, spec.lstrip('+'))}"


def ppl_cell(q: Quality) -> str:
    """PPL with its interval, then its change against the original on the same tokens (paired,
    with the change's own 95 % interval): the figure that compares rows measured on different
    numbers of windows."""
    shown = interval_text(q.ppl, q.ppl_err, ".3f")
    if q.ppl_ratio is None:
        return shown
    change = interval_text(q.ppl_ratio - 1, q.ppl_ratio_err, "+.1f", 100)
    return f"{shown} ({change} %)"


def answers_cell(answers: Answers | None) -> str:
    """The answer-agreement cell: mean share of identical leading tokens with its 95 % interval,
    then how many answers were identical."""
    if answers is None:
        return "n/a"
    return (f"{100 * answers.prefix_mean:.0f} % ({100 * answers.prefix_low:.0f}-"
            f"{100 * answers.prefix_high:.0f}), {answers.identical}/{answers.prompts} identical")


def name_notes(variants: list[Variant]) -> list[str]:
    """Sentences for files whose name does not say what they hold (pure): one file standing for
    several requested types, a file mostly of another type, and a larger file measured further
    from the original than a smaller one (beyond both KLD intervals)."""
    notes = []
    for v in variants:
        names = v.params.get("stands_for") or []
        if len(names) > 1:
            others = ", ".join(n for n in names if n != v.name)
            notes.append(f"`{v.name}` also stands for {others}: llama-quantize made identical "
                         f"tensor types for them, so one file is published")
        if v.params.get("content_note"):
            notes.append(f"`{v.name}`: {v.params['content_note']}")
    measured = sorted((v for v in variants if v.quality.kld_mean is not None),
                      key=lambda v: v.size_bytes)
    for index, large in enumerate(measured[1:], 1):
        small = min(measured[:index], key=lambda v: v.quality.kld_mean or 0.0)
        if clearly_worse(large, small):
            notes.append(f"`{large.name}` is larger than `{small.name}` but measured further "
                         f"from the original (KLD {large.quality.kld_mean:.4f} against "
                         f"{small.quality.kld_mean:.4f}): each type is a different per-tensor "
                         f"mix, so size alone does not rank them; the recommendation follows "
                         f"the measurement")
    return notes
