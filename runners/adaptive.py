"""Adaptive evaluation windows: measure a file on more windows only while its card needs them
(pure).

The reference logits are computed once on ``--chunks`` windows; each file is then measured on
the first 4 windows, then 8, 16 … up to all of them, and stops as soon as its mean KLD is known
well enough for what the card decides with it: the whole 95 % interval lies inside one quality
band (:data:`bot.cards.quality.KLD_BANDS` are built from :data:`BAND_EDGES`, so the runners need
nothing from the bot), so its use-case label cannot change with more text, *and* its half-width
is at most 10 % of the mean, so neighbouring files can be told apart. Either alone misleads: a
tight interval across a band edge (SmolLM2's Q4_K_M at 0.0613 ± 0.0049 on 4 windows of the
evaluation mix) would put the file in the wrong band, and a wide one inside a band ranks
nothing. A file far from the original stops early; a close one or one near an edge takes more
windows; none takes more than ``--chunks``.
Every evaluator uses this one rule: llama-perplexity for GGUF, and for the others the one window
loop (:func:`runners.hfmodel.evaluate.score_windows`) over transformers' or MLX's logits.
"""

from __future__ import annotations

from runners.results import Quality
from runners.stats import ci95

#: The first measurement's windows; each next step doubles them.
FIRST_CHUNKS = 4
#: Stop when the 95 % half-width is at most this share of the mean KLD.
RELATIVE_HALF_WIDTH = 0.10
#: Upper bounds of the cards' quality bands (mean KLD, nats): the one place they are said.
BAND_EDGES = (0.005, 0.02, 0.06, 0.2)


def schedule(max_chunks: int, first: int = FIRST_CHUNKS) -> list[int]:
    """Window counts to try in order: 4, 8, 16 … and finally ``max_chunks`` itself."""
    steps = []
    k = min(first, max_chunks)
    while k < max_chunks:
        steps.append(k)
        k *= 2
    return [*steps, max_chunks]


def settled(quality: Quality) -> bool:
    """Whether the mean KLD is known well enough: inside one band, and tight."""
    mean, half = quality.kld_mean, ci95(quality.kld_err)
    if mean is None or half is None:
        return True  # nothing more windows would decide
    low, high = mean - half, mean + half
    inside_one_band = not any(low <= edge <= high for edge in BAND_EDGES)
    return inside_one_band and half <= RELATIVE_HALF_WIDTH * max(mean, 0.0)
