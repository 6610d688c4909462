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
from pathlib import Path
from typing import Any

RUN_FILE = "quantbot.json"
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
class Quality:
    """Perplexity on the evaluation text, and divergence from the unquantized model."""

    ppl: float
    ppl_err: float
    kld_mean: float | None = None
    kld_err: float | None = None
    kld_p99: float | None = None
    same_top_p: float | None = None  # share of tokens where the top choice is unchanged, 0..1


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

    @property
    def repo_name(self) -> str:
        return f"{self.source.name}-{self.method.upper()}"

    def save(self, folder: Path) -> Path:
        path = Path(folder) / RUN_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path


def run_from_dict(data: dict[str, Any]) -> QuantRun:
    """Rebuild a :class:`QuantRun` from its JSON form."""
    variants = [
        Variant(**{**v, "quality": Quality(**v["quality"])}) for v in data["variants"]
    ]
    return QuantRun(
        method=data["method"], source=SourceInfo(**data["source"]),
        baseline=Quality(**data["baseline"]), evaluation=EvalSpec(**data["evaluation"]),
        variants=variants, tools=dict(data["tools"]), created=data["created"],
        extra_files=[ExtraFile(**e) for e in data.get("extra_files", [])],
    )


def load_run(folder: Path) -> QuantRun:
    """Read ``quantbot.json`` from a repository folder."""
    return run_from_dict(json.loads((Path(folder) / RUN_FILE).read_text()))
