"""Card data: everything a model card shows, built from a :class:`QuantRun` by pure code.

The template only renders it. Each row's plain-words use case follows from the measurements:
the mean KL divergence from the unquantized model sets the quality band, and the row marked
*recommended* is the smallest file whose loss is at most "low".
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import yaml

from bot.cards.columns import table
from bot.cards.prompt import prompt_template
from bot.methods import METHODS
from runners.results import QuantRun, Variant
from runners.units import human_bytes, human_params

QUANTIZED_BY = "quantbot"
REPO_URL = "https://github.com/quantbot/quantbot"

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


@dataclass(frozen=True)
class FileRow:
    """One row of the provided-files table."""

    name: str
    files: list[str]
    quant_method: str
    bits: float
    size: str
    ram: str
    peak_rss: str
    ppl: str
    kld: str
    same_top: str
    use_case: str
    recommended: bool
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FilesTable:
    """The files table of a card: headers and one row of Markdown cells per variant."""

    headers: list[str]
    cells: list[list[str]]


@dataclass(frozen=True)
class CardData:
    """What one repository's README.md shows."""

    repo_id: str
    base_model: str
    base_name: str
    method: str
    label: str
    template: str
    metadata_yaml: str
    rows: list[FileRow]
    table: FilesTable
    recommended: FileRow
    prompt_template: str
    prompt_problem: str | None  # why the model's chat template could not be shown
    cli_prompt: str  # the prompt template quoted for a POSIX shell (it is the model's own text)
    has_chat_template: bool
    license: str | None
    n_params: str
    architecture: str
    baseline_ppl: str
    eval_text: str
    eval_sha256: str
    eval_tokens: int
    eval_ctx: int
    eval_chunks: int
    evaluator: str
    ram_ctx: int
    has_split_files: bool
    tools: dict[str, str]
    created: str
    quantbot_url: str = REPO_URL


def quality_band(kld_mean: float | None) -> str:
    if kld_mean is None:
        return "not measured"
    return next(band for bound, band in KLD_BANDS if kld_mean <= bound)


def _use_case(variant: Variant, smallest: bool, best: bool) -> str:
    band = quality_band(variant.quality.kld_mean)
    notes = [band, _ADVICE.get(band, "")]
    if smallest:
        notes.append("smallest file")
    if best:
        notes.append("closest to the original")
    return " - ".join(n for n in notes if n)


def _recommended(variants: list[Variant]) -> Variant:
    acceptable = [v for v in variants
                  if v.quality.kld_mean is not None and v.quality.kld_mean <= KLD_BANDS[2][0]]
    if acceptable:
        return min(acceptable, key=lambda v: v.size_bytes)
    return min(variants, key=lambda v: v.quality.kld_mean or float("inf"))


def _metadata(run: QuantRun, repo_id: str) -> str:
    m = METHODS[run.method]
    tags = [*m.hub_tags, "quantized", f"{run.source.architecture}", "quantbot"]
    meta = {
        "base_model": run.source.repo_id,
        "base_model_relation": "quantized",
        "license": run.source.license or "other",
        "pipeline_tag": run.source.pipeline_tag,
        "quantized_by": QUANTIZED_BY,
        "tags": tags,
        "model_name": repo_id.split("/")[-1],
    }
    if m.library_name:
        meta["library_name"] = m.library_name
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip()


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def build_card_data(run: QuantRun, repo_id: str) -> CardData:
    """Card data for the repository ``repo_id`` holding ``run``'s variants."""
    if not run.variants:
        raise ValueError("a card needs at least one variant")
    variants = sorted(run.variants, key=lambda v: v.size_bytes)
    smallest = variants[0]
    best = min(variants, key=lambda v: v.quality.kld_mean or float("inf"))
    recommended = _recommended(variants)
    rendered = prompt_template(run.source.chat_template, run.source.bos_token,
                               run.source.eos_token)
    prompt = rendered.text
    rows = [
        FileRow(
            name=v.name, files=v.files, quant_method=v.name,
            bits=v.bits_per_weight, size=human_bytes(v.size_bytes), ram=human_bytes(v.ram_bytes),
            peak_rss=human_bytes(v.peak_rss_bytes),
            ppl=f"{v.quality.ppl:.3f} ± {v.quality.ppl_err:.3f}",
            kld=_fmt(v.quality.kld_mean, ".4f"),
            same_top=_fmt(None if v.quality.same_top_p is None else 100 * v.quality.same_top_p,
                          ".1f"),
            use_case=_use_case(v, v is smallest, v is best), recommended=v is recommended,
            params=v.params,
        )
        for v in variants
    ]
    ram_ctx = int(variants[0].params.get("ram_ctx", 0))
    m = METHODS[run.method]
    return CardData(
        repo_id=repo_id, base_model=run.source.repo_id, base_name=run.source.name,
        method=run.method, label=m.label, template=m.card_template,
        metadata_yaml=_metadata(run, repo_id), rows=rows,
        table=FilesTable(*table(m.columns, rows, repo_id)),
        recommended=next(r for r in rows if r.recommended),
        prompt_template=prompt, prompt_problem=rendered.problem, cli_prompt=shlex.quote(prompt),
        has_chat_template=bool(run.source.chat_template), license=run.source.license,
        n_params=human_params(run.source.n_params), architecture=run.source.architecture,
        baseline_ppl=f"{run.baseline.ppl:.3f} ± {run.baseline.ppl_err:.3f}",
        eval_text=run.evaluation.text_name, eval_sha256=run.evaluation.text_sha256,
        eval_tokens=run.evaluation.n_tokens, eval_ctx=run.evaluation.ctx,
        eval_chunks=run.evaluation.chunks, evaluator=run.evaluation.evaluator, ram_ctx=ram_ctx,
        has_split_files=any(len(v.files) > 1 for v in variants),
        tools=run.tools, created=run.created,
    )
