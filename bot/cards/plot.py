"""Quality-vs-size plot for a model card: KL divergence (log y) against file size for every variant.

A card's table answers "what is each file"; the plot answers "which file is worth its size". Choices:

* x is the file size in **GB (10**9 bytes)**, the unit the Hub and the card's table show.
* y is the mean KL divergence from the unquantized model on a log scale (variants span 1e-4..1).
* Formats (GGUF, GPTQ, AWQ, NF4, ...) are whatever display labels the points carry: each gets a
  colour and marker in order of first appearance, so no method name is hard-coded here.
* KLD 0 (a file identical to the reference, e.g. the f16 conversion) cannot sit on a log axis: it is
  drawn at a *floor* one decade below the smallest measured KLD, hollow, on a dashed line labelled
  "KLD 0 (drawn at floor, 1e-04)". KLD None means *not measured*: such variants are left out, because any
  position would claim a quality, and a footnote counts them.
* Names longer than 32 characters (titles: 80) are cut with "…" so the axes keep their room.
* Every text is drawn with mathtext off, so a ``$`` in a model or variant name is shown, not parsed.
* Output is byte-identical for the same data: Agg canvas, matplotlib's default style (not the user's
  matplotlibrc), and no ``Software`` metadata. Bytes may change across matplotlib versions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

GB = 10**9
#: Tableau 10 (matplotlib's default cycle) and distinct filled markers; formats past these wrap around.
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
FIGSIZE = (8.0, 5.0)  # inches
DPI = 120  # 960 x 600 px: readable on a model card page without being heavy
FALLBACK_FLOOR = 1e-4  # floor when no variant has a positive KLD
NAME_CHARS, FORMAT_CHARS, TITLE_CHARS = 32, 32, 80  # longer texts are cut with "…"


@dataclass(frozen=True)
class PlotPoint:
    """One variant: ``format`` is its display label (e.g. "GGUF"), ``name`` the variant (e.g. "Q4_K_M")."""

    format: str
    name: str
    size_bytes: int
    kld: float | None
    recommended: bool = False
    on_front: bool = False  # no point at most as large is measured clearly closer


def _measured(kld: float | None) -> bool:
    return kld is not None and math.isfinite(kld)


def kld_floor(points: list[PlotPoint]) -> float:
    """One decade below the smallest positive KLD, at a power of ten, so floor points sit clearly apart."""
    positive = [p.kld for p in points if p.kld is not None and math.isfinite(p.kld) and p.kld > 0]
    if not positive:
        return FALLBACK_FLOOR
    return 10.0 ** (math.floor(math.log10(min(positive))) - 1)


def _at_floor(point: PlotPoint) -> bool:
    """KLD 0 (or tiny negative noise from the evaluator): identical to the reference as measured."""
    return point.kld is not None and point.kld <= 0


def _y(point: PlotPoint, floor: float) -> float:
    return floor if point.kld is None or _at_floor(point) else point.kld


def _clip(text: str, limit: int) -> str:
    """Long names would squeeze the axes to nothing; the card's table has them in full."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: Text) -> Text:
    text.set_parse_math(False)
    return text


def _style(formats: list[str]) -> dict[str, tuple[str, str]]:
    return {f: (COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)]) for i, f in enumerate(formats)}


def draw_quality_plot(points: list[PlotPoint], title: str, path: Path) -> Path:
    """Write the plot of ``points`` as a PNG at ``path`` and return ``path``."""
    # The default style, not the user's matplotlibrc, so the bytes depend on the data alone. A glyph
    # missing from DejaVu Sans (e.g. CJK in a name) is drawn as a box: not worth a warning per card.
    with matplotlib.style.context("default"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        fig = _figure(points, title)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def _figure(points: list[PlotPoint], title: str) -> Figure:
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = [p for p in points if _measured(p.kld)]
    hidden = len(points) - len(shown)
    floor = kld_floor(shown)
    formats = list(dict.fromkeys(p.format for p in points))
    style = _style(formats)
    handles: list[Line2D] = []
    labels: list[str] = []

    for fmt in formats:
        colour, marker = style[fmt]
        pts = sorted((p for p in shown if p.format == fmt), key=lambda p: (p.size_bytes, p.name))
        handles.append(Line2D([], [], color=colour, marker=marker, linestyle="-", linewidth=1))
        labels.append(_clip(fmt, FORMAT_CHARS))
        if not pts:
            continue
        xs = [p.size_bytes / GB for p in pts]
        ys = [_y(p, floor) for p in pts]
        ax.plot(xs, ys, color=colour, linewidth=1, alpha=0.5, zorder=2)
        for p, x, y in zip(pts, xs, ys, strict=True):
            ax.plot([x], [y], marker=marker, markersize=7, color=colour, linestyle="none", zorder=3,
                    markerfacecolor="white" if _at_floor(p) else colour)
            if not p.recommended:  # the recommended point gets its own, larger label
                label = _clip(p.name, NAME_CHARS)
                _plain(ax.annotate(label, (x, y), xytext=(5, 4), textcoords="offset points", fontsize=7,
                                   color="#333333", zorder=4))

    if any(_at_floor(p) for p in shown):
        ax.axhline(floor, color="#999999", linestyle="--", linewidth=0.8, zorder=1)
        handles.append(Line2D([], [], color="#999999", marker="o", markerfacecolor="white",
                              linestyle="--", linewidth=0.8))
        labels.append(f"KLD 0 (drawn at floor, {floor:.0e})")

    front = sorted((p for p in shown if p.on_front), key=lambda p: p.size_bytes)
    if len(front) > 1:
        ax.plot([p.size_bytes / GB for p in front], [_y(p, floor) for p in front],
                color="black", linestyle=":", linewidth=1.2, drawstyle="steps-post", zorder=2)
        handles.append(Line2D([], [], color="black", linestyle=":", linewidth=1.2))
        labels.append("Pareto front (no smaller file clearly closer)")

    recommended = [p for p in shown if p.recommended]
    for i, p in enumerate(recommended):
        x, y = p.size_bytes / GB, _y(p, floor)
        ax.plot([x], [y], marker="o", markersize=18, markerfacecolor="none", markeredgecolor="black",
                markeredgewidth=1.5, linestyle="none", zorder=5)
        # The lower-left corner stays empty on a size/KLD plot (no file is both smaller and better than
        # the frontier), so the label goes there with a line to its point.
        _plain(ax.annotate(f"recommended: {_clip(p.name, NAME_CHARS)}", (x, y),
                           xytext=(0.03, 0.05 + 0.07 * i), ha="left", va="bottom",
                           textcoords="axes fraction", fontsize=8, fontweight="bold", zorder=6,
                           bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none"},
                           arrowprops={"arrowstyle": "-", "color": "black", "linewidth": 0.8,
                                       "shrinkB": 9}))
    if recommended:
        handles.append(Line2D([], [], marker="o", markersize=11, markerfacecolor="none",
                              markeredgecolor="black", linestyle="none"))
        labels.append("recommended")

    ax.set_yscale("log")
    ax.grid(True, which="major", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    xlabel = "File size (GB = 10^9 bytes)"
    if hidden:
        noun = "variant" if hidden == 1 else "variants"
        xlabel += f"\n{hidden} {noun} without a KLD measurement not shown"
    _plain(ax.set_xlabel(xlabel))
    _plain(ax.set_ylabel("Mean KL divergence vs unquantized (nats, log scale)"))
    _plain(ax.set_title(_clip(title, TITLE_CHARS)))
    if not shown:
        ax.set_ylim(FALLBACK_FLOOR, 1.0)
        _plain(ax.text(0.5, 0.5, "no variant has a KLD measurement", transform=ax.transAxes,
                       ha="center", va="center", color="#666666"))
    if handles:
        legend = ax.legend(handles, labels, loc="best", fontsize=8, title="format")
        for text in (*legend.get_texts(), legend.get_title()):
            _plain(text)
    return fig


__all__ = ["GB", "PlotPoint", "draw_quality_plot", "kld_floor"]
