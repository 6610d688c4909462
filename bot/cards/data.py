"""Card data: everything a model card shows, built from a :class:`QuantRun` by pure code.

The template only renders it. Each row's plain-words use case follows from the measurements:
the mean KL divergence from the unquantized model sets the quality band, and the row marked
*recommended* is the smallest file whose loss is at most "low".
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field

import yaml

from bot.cards.columns import table
from bot.cards.memory import fits, max_context, memory_table
from bot.cards.prompt import prompt_template
from bot.cards.quality import (
    answers_cell,
    interval_text,
    name_notes,
    ppl_cell,
    recommendation,
    use_case,
)
from bot.cards.release import Release
from bot.methods import METHODS
from runners.answers import prompt_library
from runners.evaluation_mix import DOMAINS
from runners.ranking import pareto_front
from runners.results import QuantRun, Variant
from runners.units import human_bytes, human_gib, human_params

QUANTIZED_BY = "quantbot"
REPO_URL = "https://github.com/quantbot/quantbot"
DOMAINS_BY_KEY = {d.key: d for d in DOMAINS}

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
    kld_p99: str
    same_top: str
    answers: str
    tokens: str  # scored tokens this row was measured on
    use_case: str
    recommended: bool
    params: dict = field(default_factory=dict)
    branch: str = "main"  # the branch holding the files (transformers-family: one per variant)
    #: No file of this table at most as large is measured clearly closer to the original.
    on_front: bool = False


@dataclass(frozen=True)
class FilesTable:
    """The files table of a card: headers and one row of Markdown cells per variant."""

    headers: list[str]
    cells: list[list[str]]


@dataclass(frozen=True)
class MemoryLine:
    """Estimated memory to run one file fully on a GPU and fully on a CPU, per context, and the
    GPU sizes it fits at :data:`FITS_CTX` tokens."""

    name: str
    cells: list[str]
    fits: str


#: The context the "fits in" column assumes, and the GPU sizes it checks (GiB).
FITS_CTX = 8192
FITS_BUDGETS = (8, 12, 16, 24, 48, 80)


@dataclass(frozen=True)
class MemoryTable:
    headers: list[str]  # one per context
    lines: list[MemoryLine]
    fits_ctx: int


def fits_ctx(config: dict) -> int:
    """:data:`FITS_CTX`, or the model's maximum context when that is shorter."""
    return min(FITS_CTX, max_context(config))


def _ctx_label(ctx: int) -> str:
    return f"{ctx // 1024}k" if ctx % 1024 == 0 else str(ctx)


def memory_table_of(variants: list[Variant], config: dict) -> MemoryTable | None:
    """The card's memory table from the source's own config; None without a config."""
    if not config:
        return None
    contexts = [row.ctx for row in memory_table(0, config)]
    lines = []
    for v in variants:
        cells = [f"{human_gib(r.gpu_bytes)} / {human_gib(r.cpu_bytes)}"
                 for r in memory_table(v.size_bytes, config, contexts)]
        ok = [str(b) for b, fit in fits(v.size_bytes, config, fits_ctx(config),
                                         FITS_BUDGETS).items() if fit]
        lines.append(MemoryLine(v.name, cells, ", ".join(ok) + " GB" if ok else "none of these"))
    limit = max_context(config)
    headers = [f"{_ctx_label(c)}{' (max)' if c == limit else ''}" for c in contexts]
    return MemoryTable(headers, lines, fits_ctx(config))


@dataclass(frozen=True)
class AnswersInfo:
    """How the answer-agreement column was measured, for the card's notes."""

    prompts: int
    max_new_tokens: int
    reference: str
    library: str
    license: str


def answers_info(variants: list[Variant]) -> AnswersInfo | None:
    measured = [v.answers for v in variants if v.answers is not None]
    if not measured:
        return None
    library = prompt_library()
    return AnswersInfo(measured[0].prompts, measured[0].max_new_tokens, measured[0].reference,
                       library.name, library.license)


@dataclass(frozen=True)
class DomainLine:
    """One domain of the evaluation text, as the recommended file measured on it."""

    title: str
    source: str  # where the text comes from, with its licence
    tokens: int
    kld: str
    same_top: str


@dataclass(frozen=True)
class DomainTable:
    """The recommended file's KLD on each domain of the evaluation text alone."""

    file: str
    lines: list[DomainLine]


@dataclass(frozen=True)
class MixLine:
    """One searched mix: what it competed with, what happened, and how to remake it."""

    name: str
    stock: str
    published: bool
    why: str
    command: str = ""  # the stock tool's command line (published mixes)


@dataclass(frozen=True)
class MixSearch:
    """The mix search in a card's words (:mod:`runners.gguf.mixes`)."""

    groups: int
    probes: int
    tuning_windows: int
    tuning_tokens: int
    minutes: float
    stopped_by_budget: bool
    lines: list[MixLine]
    planned: int = 0  # probes the sweeps planned (0: a record from before they were counted)
    budget_from: str = ""  # "mix_minutes", "stock set" (the default on a GPU) or ""


def mix_search_of(run: QuantRun) -> MixSearch | None:
    """The card's account of the mix search; None when no mixes were asked for."""
    record = run.mix_search
    if not record:
        return None
    commands = {v.name: v.params["mix"]["command"] for v in run.variants if "mix" in v.params}
    sweeps = [probe for size in record["sizes"] for probe in size["sweep"]]
    return MixSearch(
        groups=len({p["group"] for p in sweeps}), probes=len(sweeps),
        tuning_windows=record["tuning_windows"], tuning_tokens=record["tuning_tokens"],
        minutes=round(record["seconds"] / 60, 1), stopped_by_budget=record["stopped_by_budget"],
        lines=[MixLine(m["name"], m["stock"], m["published"], m["why"],
                       commands.get(m["name"], "")) for m in record["mixes"]],
        planned=record.get("planned_probes", 0), budget_from=record.get("budget_from", ""))


def domain_table(variant: Variant) -> DomainTable | None:
    """The per-domain table of ``variant``; None when it was measured on one domain only."""
    measured = [d for d in variant.quality.domains or [] if d.kld_mean is not None]
    if not measured:
        return None
    lines = []
    for d in measured:
        domain = DOMAINS_BY_KEY.get(d.domain)
        lines.append(DomainLine(
            title=domain.title if domain else d.domain,
            source=f"{domain.source.what} ({domain.source.licence})" if domain else "",
            tokens=d.tokens, kld=interval_text(d.kld_mean, d.kld_err, ".4f"),
            same_top=interval_text(d.same_top_p, d.same_top_err, ".1f", 100)))
    return DomainTable(variant.name, lines)


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
    recommended_reason: str
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
    extra_files: list[dict] = field(default_factory=list)  # projector, importance matrix
    revision: str | None = None  # the source commit every file came from
    versions: dict[str, str] = field(default_factory=dict)
    memory: MemoryTable | None = None
    release: Release | None = None  # every format of this release, on one scale
    quantbot_url: str = REPO_URL
    #: What the unquantized reference is when it is not the release itself.
    reference: str | None = None
    #: How answer agreement was measured (None: it was not).
    answers: AnswersInfo | None = None
    #: Where a file's name does not say what it holds (:func:`bot.cards.quality.name_notes`).
    name_notes: list[str] = field(default_factory=list)
    #: Files were measured on windows added until settled (runners.adaptive), not all of them.
    adaptive: bool = False
    #: The recommended file on each domain of the evaluation text (None: one domain).
    domains: DomainTable | None = None
    #: GGUF's mix search, when one was asked for.
    mixes: MixSearch | None = None


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
    if run.source.revision:
        # What the watcher compares with the source's current files (bot/hub/upstream.py).
        meta["quantbot"] = {"source_revision": run.source.revision,
                            "source_files": run.provenance.get("source_files", {})}
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip()


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)



def build_card_data(run: QuantRun, repo_id: str, release: Release | None = None) -> CardData:
    """Card data for the repository ``repo_id`` holding ``run``'s variants; ``release`` adds the
    cross-format table and plot of every repository made with it."""
    if not run.variants:
        raise ValueError("a card needs at least one variant")
    variants = sorted(run.variants, key=lambda v: v.size_bytes)
    smallest = variants[0]
    best = min(variants, key=lambda v: v.quality.kld_mean or float("inf"))
    chosen, why = recommendation(variants)
    front = {id(v) for v in pareto_front(variants)}
    rendered = prompt_template(run.source.chat_template, run.source.bos_token,
                               run.source.eos_token)
    prompt = rendered.text
    rows = [
        FileRow(
            name=v.name, files=v.files,
            quant_method=" = ".join(v.params.get("stands_for") or [v.name]),
            bits=v.bits_per_weight, size=human_bytes(v.size_bytes), ram=human_bytes(v.ram_bytes),
            peak_rss=human_bytes(v.peak_rss_bytes),
            ppl=ppl_cell(v.quality),
            kld=interval_text(v.quality.kld_mean, v.quality.kld_err, ".4f"),
            kld_p99=_fmt(v.quality.kld_p99, ".3f"),
            same_top=interval_text(v.quality.same_top_p, v.quality.same_top_err, ".1f", 100),
            answers=answers_cell(v.answers),
            tokens=str(v.params.get("eval_tokens", "")),
            use_case=use_case(v, v is smallest, v is best), recommended=v is chosen,
            params=v.params, branch=v.branch, on_front=id(v) in front,
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
        recommended=next(r for r in rows if r.recommended), recommended_reason=why,
        prompt_template=prompt, prompt_problem=rendered.problem, cli_prompt=shlex.quote(prompt),
        has_chat_template=bool(run.source.chat_template), license=run.source.license,
        n_params=human_params(run.source.n_params), architecture=run.source.architecture,
        baseline_ppl=interval_text(run.baseline.ppl, run.baseline.ppl_err, ".3f"),
        eval_text=run.evaluation.text_name, eval_sha256=run.evaluation.text_sha256,
        eval_tokens=run.evaluation.n_tokens, eval_ctx=run.evaluation.ctx,
        eval_chunks=run.evaluation.chunks, evaluator=run.evaluation.evaluator, ram_ctx=ram_ctx,
        has_split_files=any(len(v.files) > 1 for v in variants),
        tools=run.tools, created=run.created,
        memory=memory_table_of(variants, run.source.config), release=release,
        revision=run.source.revision, versions=dict(run.provenance.get("versions", {})),
        extra_files=[asdict(e) | {"size": human_bytes(e.size_bytes)} for e in run.extra_files],
        reference=run.source.reference, answers=answers_info(variants),
        name_notes=name_notes(variants),
        adaptive=bool(run.provenance.get("settings", {}).get("adaptive")),
        domains=domain_table(chosen), mixes=mix_search_of(run),
    )
