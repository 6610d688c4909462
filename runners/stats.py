"""Divergence statistics from per-token values, computed as llama-perplexity computes them (pure).

GGUF files are measured by ``llama-perplexity --kl-divergence``; the transformers family by
:mod:`runners.hfmodel.evaluate`, which hands its per-token values here, so both report the same
record with the same formulas (llama.cpp's ``tools/perplexity/perplexity.cpp``): a mean with its
standard error ``sqrt((E[x²] - E[x]²) / (n - 1))``, percentiles by linear interpolation between
sorted values, the RMS of Δp (the change in the probability of the right token) and the
same-top share with its binomial standard error. Cards show 95 % intervals: 1.96 standard errors
(:func:`ci95`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Two-sided 95 % normal quantile: a card's ± is this many standard errors.
Z95 = 1.959963984540054
#: The percentiles llama-perplexity prints (fractions), by the key quantbot.json uses.
KLD_PERCENTILES = {"max": 1.0, "p99.9": 0.999, "p99": 0.99, "p95": 0.95, "p90": 0.9,
                   "median": 0.5, "p10": 0.1, "p5": 0.05, "p1": 0.01, "p0.1": 0.001, "min": 0.0}
DELTA_P_PERCENTILES = {"max": 1.0, "p99.9": 0.999, "p99": 0.99, "p95": 0.95, "p90": 0.9,
                       "p75": 0.75, "median": 0.5, "p25": 0.25, "p10": 0.1, "p5": 0.05,
                       "p1": 0.01, "p0.1": 0.001, "min": 0.0}


def ci95(standard_error: float | None) -> float | None:
    """Half-width of the 95 % interval of an estimate with this standard error."""
    return None if standard_error is None else Z95 * standard_error


def mean_and_error(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error, as llama-perplexity's ``mean_and_uncertainty``."""
    n = len(values)
    if n < 1:
        return 0.0, 0.0
    mean = math.fsum(values) / n
    var = math.fsum(v * v for v in values) / n - mean * mean
    return mean, math.sqrt(var / (n - 1)) if var > 0 and n > 10 else 0.0


def pooled(parts: Sequence[tuple[float, float, int]]) -> tuple[float, float]:
    """Mean and standard error of the union of samples known by ``(mean, error, count)`` each,
    as :func:`mean_and_error` of all the values would give them (exact but for the parts'
    rounding): how one evaluation's figure is made from its domains' separate runs."""
    n = sum(count for _, _, count in parts)
    if n < 1:
        return 0.0, 0.0
    total = math.fsum(mean * count for mean, _, count in parts)
    squares = math.fsum(count * (err * err * (count - 1) + mean * mean)
                        for mean, err, count in parts)
    mean = total / n
    var = squares / n - mean * mean
    return mean, math.sqrt(var / (n - 1)) if var > 0 and n > 10 else 0.0


def lies_below(mean: float, error: float | None, other: float, other_error: float | None
               ) -> bool:
    """Whether the 95 % interval of ``mean`` lies wholly below that of ``other``: the one test
    by which quantbot calls one estimate smaller than another."""
    return mean + (ci95(error) or 0.0) < other - (ci95(other_error) or 0.0)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """llama-perplexity's percentile of sorted values (linear interpolation; the median of an
    even count is the mean of the middle two, which the same rule gives)."""
    if fraction <= 0:
        return ordered[0]
    if fraction >= 1:
        return ordered[-1]
    p = fraction * (len(ordered) - 1)
    i = int(p)
    p -= i
    return (1 - p) * ordered[i] + p * ordered[min(i + 1, len(ordered) - 1)]


def percentiles(values: Sequence[float], which: dict[str, float]) -> dict[str, float]:
    ordered = sorted(values)
    return {key: round(percentile(ordered, fraction), 6) for key, fraction in which.items()}


def rms_and_error(values: Sequence[float]) -> tuple[float, float]:
    """RMS of ``values`` and its standard error (from the mean square's, as llama.cpp does)."""
    mse, mse_err = mean_and_error([v * v for v in values])
    rms = math.sqrt(mse)
    return rms, (0.5 / rms * mse_err) if rms > 0 else 0.0


def share_and_error(hits: int, n: int) -> tuple[float, float]:
    """A share and its binomial standard error (``sqrt(p(1-p)/(n-1))``, llama.cpp's)."""
    if n < 2:
        return (hits / n if n else 0.0), 0.0
    p = hits / n
    return p, math.sqrt(p * (1 - p) / (n - 1))
