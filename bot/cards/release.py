"""One release: every variant of every format made for one model by one request, on one scale
(pure).

Every format of a model is measured on the same evaluation text in the same windows against the
unquantized model (llama.cpp scores the GGUF baseline, transformers the others', MLX included; the
two agree on the same tokens, which ``tests/test_evaluators_agree.py`` holds), so their KLD and
PPL can sit in one table and one plot. Every card of the release shows both, with links to the
sibling repositories.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.cards import PLOT_FILE
from bot.cards.plot import PlotPoint
from bot.cards.quality import answers_cell, interval_text, ppl_cell, recommended
from bot.methods import METHODS
from runners.gguf.mix_plan import MIX_PREFIX
from runners.ranking import pareto_front
from runners.results import QuantRun, Variant
from runners.units import human_bytes

HUB = "https://huggingface.co"


@dataclass(frozen=True)
class ReleaseRow:
    """One variant of one format."""

    label: str  # the format: GGUF, GPTQ …
    repo_id: str
    variant: str
    size_bytes: int
    size: str
    kld_mean: float | None
    kld: str
    ppl: str
    same_top: str
    answers: str
    runs_in: str
    link: str
    recommended: bool
    on_front: bool = False  # no variant of the release at most as large is clearly closer


@dataclass(frozen=True)
class Baseline:
    """The unquantized model's perplexity as one evaluator measured it."""

    evaluator: str
    ppl: float
    labels: str  # the formats it scored


@dataclass(frozen=True)
class Release:
    """Every repository of one release and its variants, smallest first."""

    model: str
    repos: list[tuple[str, str]]  # (label, repo id)
    rows: list[ReleaseRow]
    baselines: list[Baseline]
    spread_percent: float | None  # largest relative gap between the baselines' PPL
    eval_text: str
    eval_sha256: str
    plot_file: str = PLOT_FILE

    @property
    def formats(self) -> int:
        return len(self.repos)


def _link(repo_id: str, v: Variant) -> str:
    """Where the variant lives: its one file, or its branch (a whole model folder)."""
    if len(v.files) == 1:
        return f"{HUB}/{repo_id}/blob/{v.branch}/{v.files[0]}"
    return f"{HUB}/{repo_id}/tree/{v.branch}"


def build_release(runs: list[tuple[str, QuantRun]]) -> Release:
    """The release of ``runs`` (repo id, run), all of one source model and one evaluation text.

    The recommended file is chosen across formats by the cards' own rule (:func:`recommended`).
    """
    if not runs:
        raise ValueError("a release needs at least one run")
    models = {run.source.repo_id for _, run in runs}
    texts = {run.evaluation.text_sha256 for _, run in runs}
    if len(models) != 1 or len(texts) != 1:
        raise ValueError(f"runs of different models or texts cannot share a scale: {models}, {texts}")
    every = [v for _, run in runs for v in run.variants]
    best = recommended(every)
    front = {id(v) for v in pareto_front(every)}
    rows = []
    for repo_id, run in runs:
        m = METHODS[run.method]
        for v in run.variants:
            q = v.quality
            rows.append(ReleaseRow(
                label=m.label, repo_id=repo_id, variant=v.name, size_bytes=v.size_bytes,
                size=human_bytes(v.size_bytes), kld_mean=q.kld_mean,
                kld=interval_text(q.kld_mean, q.kld_err, ".4f"),
                ppl=ppl_cell(q),
                same_top=interval_text(q.same_top_p, q.same_top_err, ".1f", 100),
                answers=answers_cell(v.answers), runs_in=", ".join(m.runtimes),
                link=_link(repo_id, v), recommended=v is best, on_front=id(v) in front))
    rows.sort(key=lambda r: (r.size_bytes, r.label))
    by_evaluator: dict[str, list[tuple[str, float]]] = {}
    for _, run in runs:
        by_evaluator.setdefault(run.evaluation.evaluator, []).append(
            (METHODS[run.method].label, run.baseline.ppl))
    baselines = [Baseline(evaluator, scored[0][1], ", ".join(label for label, _ in scored))
                 for evaluator, scored in by_evaluator.items()]
    ppls = [b.ppl for b in baselines]
    spread = (100 * (max(ppls) - min(ppls)) / min(ppls)) if len(ppls) > 1 and min(ppls) > 0 else None
    first = runs[0][1]
    return Release(model=first.source.repo_id,
                   repos=[(METHODS[run.method].label, repo_id) for repo_id, run in runs],
                   rows=rows, baselines=baselines, spread_percent=spread,
                   eval_text=first.evaluation.text_name, eval_sha256=first.evaluation.text_sha256)


def plot_points(release: Release) -> list[PlotPoint]:
    """The release's variants as points of the quality plot."""
    return [PlotPoint(format=f"{r.label} (quantbot mixes)" if r.variant.startswith(MIX_PREFIX)
                      else r.label, name=r.variant, size_bytes=r.size_bytes, kld=r.kld_mean,
                      recommended=r.recommended, on_front=r.on_front) for r in release.rows]
