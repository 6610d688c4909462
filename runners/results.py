"""What a quantization run produced and measured: the data that crosses into cards and reports.

A run is saved next to the files it describes as ``quantbot.json``; cards, the publisher and the
issue report read it back with :func:`load_run`.

A finished repository folder on disk is laid out by branch, so that publishers publish it without
knowing the method: its non-hidden files are the ``main`` branch, and each other branch's own
files are in ``.branches/<branch>/`` (hidden, so never part of ``main``). A branch also gets the
root's repository files, those no ``main`` variant lists in ``quantbot.json`` (the card, this
record, the card's plot), unless it holds its own, so every branch is a complete repository.
GGUF repositories have ``main`` only; a transformers-family method puts its default variant on
``main`` (``from_pretrained(repo_id)`` loads it, as TheBloke's repositories did) and every other
variant on a branch named after it (``revision=<branch>``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from runners.answers import Answers
from runners.errors import QuantbotError

RUN_FILE = "quantbot.json"
#: The version of ``quantbot.json``'s layout; ``runners/quantbot.schema.json`` documents it.
SCHEMA_VERSION = 1
SCHEMA_FILE = "quantbot.schema.json"
MAIN_BRANCH = "main"
BRANCHES_DIR = ".branches"


def branch_dir(repo_dir: Path, branch: str) -> Path:
    """Where ``branch``'s own files lie in a repository folder (the root for ``main``)."""
    return Path(repo_dir) if branch == MAIN_BRANCH else Path(repo_dir) / BRANCHES_DIR / branch


@dataclass(frozen=True)
class SourceInfo:
    """The unquantized model a run started from."""

    repo_id: str
    architecture: str
    license: str | None
    n_params: int
    context_length: int | None
    dtype: str
    chat_template: str | None = None
    bos_token: str = ""
    eos_token: str = ""
    pipeline_tag: str = "text-generation"
    #: The source's config.json: cards compute memory to run (KV cache, GQA, MLA, windows) from it.
    config: dict[str, Any] = field(default_factory=dict)
    #: The commit every file came from (a Hub source); None for a local folder.
    revision: str | None = None
    #: What the unquantized reference is when it is not the release itself (a built-in model
    #: dequantized from a shipped file): every PPL/KLD is measured against it.
    reference: str | None = None

    @property
    def name(self) -> str:
        return self.repo_id.split("/")[-1]


@dataclass(frozen=True)
class EvalSpec:
    """The evaluation every variant of a run was measured on."""

    text_name: str
    text_sha256: str
    n_tokens: int
    ctx: int
    chunks: int
    evaluator: str


@dataclass(frozen=True)
class DomainQuality:
    """One domain's share of a measurement (:mod:`runners.evaluation_mix`): the windows of that
    domain only, so a card can say where a file loses most (chat, code, other languages)."""

    domain: str  # a key of runners.evaluation_mix.DOMAINS
    windows: int
    tokens: int  # scored tokens
    ppl: float
    ppl_err: float
    kld_mean: float | None = None  # None for the unquantized baseline
    kld_err: float | None = None  # 1 sigma, as every standard error here
    same_top_p: float | None = None
    same_top_err: float | None = None


@dataclass(frozen=True)
class Quality:
    """Perplexity on the evaluation text, and divergence from the unquantized model."""

    ppl: float
    ppl_err: float
    kld_mean: float | None = None
    kld_err: float | None = None
    kld_p99: float | None = None
    same_top_p: float | None = None  # share of tokens where the top choice is unchanged, 0..1
    #: Standard errors are 1 sigma (llama-perplexity's ±); cards show 95 % (runners.stats.ci95).
    same_top_err: float | None = None
    #: KLD percentiles (``max``, ``p99.9`` … ``min``, runners.stats.KLD_PERCENTILES).
    kld_percentiles: dict[str, float] | None = None
    #: Δp, the change in the probability of the right token: ``mean``, ``mean_err``, ``rms``,
    #: ``rms_err`` and percentiles (runners.stats.DELTA_P_PERCENTILES), as fractions.
    delta_p: dict[str, float] | None = None
    #: PPL(Q)/PPL(original) on the tokens this row used (paired, so its error is the change's own,
    #: far smaller than either PPL's), and the original's PPL on those tokens; 1 sigma errors.
    ppl_ratio: float | None = None
    ppl_ratio_err: float | None = None
    ppl_base: float | None = None
    ppl_base_err: float | None = None
    #: The same measurement on each domain's windows alone, in the text's domain order; None for
    #: a one-domain text (the fast demo's).
    domains: list[DomainQuality] | None = None

    def __post_init__(self) -> None:
        if self.domains and isinstance(self.domains[0], dict):  # read back from JSON
            object.__setattr__(self, "domains",
                               [DomainQuality(**d) for d in self.domains])  # type: ignore[arg-type]


@dataclass(frozen=True)
class Variant:
    """One published variant: a GGUF type (files on ``main``), or a GPTQ/AWQ/NF4 variant (the
    whole of ``branch``; ``files`` are paths in that branch)."""

    method: str
    name: str
    files: list[str]
    size_bytes: int
    bits_per_weight: float
    ram_bytes: int
    peak_rss_bytes: int
    quality: Quality
    check_output: str
    params: dict[str, Any] = field(default_factory=dict)
    branch: str = MAIN_BRANCH
    #: Answer agreement with the unquantized reference (:mod:`runners.answers`); None: not asked.
    answers: Answers | None = None


@dataclass(frozen=True)
class ExtraFile:
    """A published file that is no variant but serves them all: a vision model's GGUF projector
    (``mmproj``), which llama.cpp loads beside any of the quantized text models."""

    kind: str  # "mmproj"
    name: str  # path in the repository folder
    dtype: str  # its tensor type, e.g. F16, Q8_0
    size_bytes: int
    check_output: str = ""  # what the pre-publish check generated with it
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QuantRun:
    """All variants of one method for one source model, measured on one evaluation."""

    method: str
    source: SourceInfo
    baseline: Quality
    evaluation: EvalSpec
    variants: list[Variant]
    tools: dict[str, str]
    created: str
    extra_files: list[ExtraFile] = field(default_factory=list)
    #: How the files were made: the request, the settings, the command, every tool's version and
    #: the hashes of the texts used (see ``runners/quantbot.schema.json``).
    provenance: dict[str, Any] = field(default_factory=dict)
    #: GGUF's mix search (runners.gguf.mixes): the sweep, the candidates, every mix's verdict,
    #: published or not; empty when no mixes were asked for.
    mix_search: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def save(self, folder: Path) -> Path:
        path = Path(folder) / RUN_FILE
        data = asdict(self)
        validate_run(data)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return path


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(resources.files("runners").joinpath(SCHEMA_FILE).read_text())
    return Draft202012Validator(schema)


def validate_run(data: Any) -> None:
    """Raise :class:`QuantbotError` naming the first place ``data`` breaks the schema."""
    error = next(iter(_validator().iter_errors(data)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise QuantbotError(f"{RUN_FILE} does not follow its schema at {where}: "
                            f"{error.message[:200]}",
                            "remake the repository with this quantbot (`quantbot quantize`), or "
                            "read it with the quantbot version that wrote it")


def run_from_dict(data: dict[str, Any]) -> QuantRun:
    """Rebuild a :class:`QuantRun` from its JSON form, checked against the schema first."""
    validate_run(data)
    variants = [
        Variant(**{**v, "quality": Quality(**v["quality"]),
                   "answers": Answers(**v["answers"]) if v.get("answers") else None})
        for v in data["variants"]
    ]
    return QuantRun(
        method=data["method"], source=SourceInfo(**data["source"]),
        baseline=Quality(**data["baseline"]), evaluation=EvalSpec(**data["evaluation"]),
        variants=variants, tools=dict(data["tools"]), created=data["created"],
        extra_files=[ExtraFile(**e) for e in data.get("extra_files", [])],
        provenance=dict(data.get("provenance", {})), mix_search=dict(data.get("mix_search", {})),
        schema_version=data["schema_version"],
    )


def load_run(folder: Path) -> QuantRun:
    """Read ``quantbot.json`` from a repository folder."""
    return run_from_dict(json.loads((Path(folder) / RUN_FILE).read_text()))
