"""Which listed models become quantization candidates, and why each other one is skipped (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot.capacity import DEFAULT_RUNNERS, Fit, RunnerSpec, fits
from bot.config import FilterConfig
from bot.methods import METHODS
from bot.moe import Experts
from runners.support.registry import Support, is_class_name, support_all
from runners.units import human_params

#: Formats other publishers use besides ours (ours come from the method registry).
_OTHER_FORMATS = ("exl2", "exl3", "mlx", "bnb", "4bit", "8bit", "int4", "int8", "fp8")
_QUANT_TAGS = frozenset({tag for m in METHODS.values() for tag in m.hub_tags} | {
    "exl2", "exl3", "8-bit", "mlx", "fp8", "int4", "int8", "quantized", "compressed-tensors"})
_QUANT_NAME = re.compile(
    r"[-_.](" + "|".join((*METHODS, *_OTHER_FORMATS)) + r"|q[2-8](_k)?(_[sml])?)([-_.].*)?$",
    re.IGNORECASE)


@dataclass(frozen=True)
class ListedModel:
    """What one listing entry tells about a model (built from the Hub's expanded fields)."""

    repo_id: str
    pipeline_tag: str | None = None
    private: bool = False
    gated: bool | str = False  # False, "auto" or "manual"
    disabled: bool = False
    library_name: str | None = None
    tags: tuple[str, ...] = ()
    license: str | None = None  # card data `license` (or `license_name` when it is "other")
    architectures: tuple[str, ...] = ()
    model_type: str | None = None  # config.model_type
    text_architecture: str | None = None  # config.text_config.architectures[0] (multimodal)
    quant_method: str | None = None  # config.quantization_config.quant_method
    has_auto_map: bool = False  # config.auto_map: modelling code shipped in the repo
    params: int | None = None  # safetensors metadata total
    source_bytes: int | None = None  # the weights' bytes, from the per-dtype parameter counts
    trending_score: float | None = None

    @property
    def name(self) -> str:
        return self.repo_id.split("/", 1)[-1]


@dataclass(frozen=True)
class ModelCandidate:
    """A model worth quantizing, with what the issue shows about it."""

    repo_id: str
    architecture: str
    params: int
    license: str
    trending_score: float | None = None
    methods: tuple[str, ...] = ()  # the configured methods whose tools take it and runners hold
    multimodal: bool = False
    mmproj: bool = False  # llama.cpp's converter has a projector (mmproj) for its architecture
    fits: tuple[Fit, ...] = ()  # every configured method's needs and what its runner lacks
    quant_method: str | None = None  # an original released in a quantized format (fp8, mxfp4)
    experts: Experts | None = None  # a mixture of experts' total against active parameters

    @property
    def name(self) -> str:
        return self.repo_id.split("/", 1)[-1]


@dataclass(frozen=True)
class Skipped:
    """A listed model that is not a candidate, and the first reason why."""

    repo_id: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """One poll's verdict over the listed models, in listing order."""

    candidates: tuple[ModelCandidate, ...]
    skipped: tuple[Skipped, ...]


def own_repo_ids(repo_id: str, namespace: str) -> list[str]:
    """``meta/Llama-3-8B`` → ``["ns/Llama-3-8B-GGUF", ...]``: every repo we could publish of it."""
    name = repo_id.split("/", 1)[-1]
    return [f"{namespace}/{m.repo_name(name)}" for m in METHODS.values()]


def effective_license(model: ListedModel) -> str:
    """The card's licence id, lowercased; ``unknown`` when the card names none."""
    if model.license:
        return model.license.strip().lower()
    for tag in model.tags:
        if tag.startswith("license:"):
            return tag.split(":", 1)[1].strip().lower()
    return "unknown"


# Each check returns a reason to skip, or None. They run in this order; the first reason wins.
Check = Callable[[ListedModel, FilterConfig, "Context"], "str | None"]


@dataclass(frozen=True)
class Context:
    """What a decision needs besides the model: our own repos and where they live."""

    namespace: str
    own_repos: frozenset[str]
    methods: tuple[str, ...]  # what we would make: a model is a candidate if one takes it
    runners: dict[str, RunnerSpec] = field(default_factory=lambda: dict(DEFAULT_RUNNERS))


def check_access(m: ListedModel, f: FilterConfig, ctx: Context) -> str | None:
    if m.disabled:
        return "disabled on the Hub"
    if m.private:
        return "private"
    if m.gated and not f.allow_gated:
        return f"gated ({m.gated})" if isinstance(m.gated, str) else "gated"
    return None


def format_takers(m: ListedModel, methods: tuple[str, ...]) -> tuple[str, ...]:
    """The methods that take the model's weights as released: all of them for 16-bit weights;
    for an original released quantized (FP8, MXFP4 …) those whose tool reads that format."""
    if not m.quant_method:
        return methods
    return tuple(n for n in methods if m.quant_method in METHODS[n].original_formats)


def check_not_quantized(m: ListedModel, f: FilterConfig, ctx: Context) -> str | None:
    if m.repo_id.split("/", 1)[0] == ctx.namespace:
        return f"one of our own repos ({ctx.namespace})"
    tags = {t.lower() for t in m.tags}
    if any(t.startswith("base_model:quantized:") for t in tags):
        return "already quantized (a quantized derivative of another model)"
    if m.quant_method:
        # An original released quantized (DeepSeek's FP8, gpt-oss's MXFP4) is an original; only
        # derivatives are "already quantized".
        if format_takers(m, ctx.methods):
            return None
        return (f"released quantized (quantization_config: {m.quant_method}) in a format no "
                "configured method takes")
    if m.library_name and m.library_name.lower() in _QUANT_TAGS:
        return f"already quantized (library {m.library_name})"
    hits = sorted(tags & _QUANT_TAGS)
    if hits:
        return f"already quantized (tag {hits[0]})"
    if _QUANT_NAME.search(m.name):
        return "already quantized (name says so)"
    return None


def check_not_published(m: ListedModel, f: FilterConfig, ctx: Context) -> str | None:
    ours = [r for r in own_repo_ids(m.repo_id, ctx.namespace) if r in ctx.own_repos]
    if ours:
        return f"already published as {', '.join(ours)}"
    return None


def check_remote_code(m: ListedModel, f: FilterConfig, ctx: Context) -> str | None:
    if f.allow_remote_code:
        return None
    if "custom_code" in m.tags or m.has_auto_map:
        return "needs remote code (trust_remote_code); set filters.allow_remote_code to allow"
    return None


def model_support(m: ListedModel, methods: tuple[str, ...]) -> Support:
    """What the pinned tools say of every architecture the model declares, per method: a method
    takes it only if it takes each one (runners/support)."""
    return support_all(m.architectures, m.model_type,
                       {name: METHODS[name].support for name in methods},
                       text_architecture=m.text_architecture)


def check_architecture(m: ListedModel, f: FilterConfig, ctx: Context) -> str | None:
    if not m.architectures:
        return "no architectures in config.json"
    named = (*m.architectures, *((m.text_architecture,) if m.text_architecture is not None else ()))
    bad = next((a for a in named if not is_class_name(a)), None)
    if bad is not None:
        return (f"malformed architecture name {bad[:80]!a} in config.json (not a Python "
                "class name)")
    found = model_support(m, ctx.methods)
    if not found.methods:
        first = next(iter(found.verdicts.values()))
        return f"no method takes architecture {', '.join(m.architectures)} ({first.reason})"
    return None


def offered(m: ListedModel, ctx: Context) -> tuple[tuple[str, ...], tuple[Fit, ...]]:
    """The methods whose tools take the model and whose runners hold it, and every fit."""
    takers = format_takers(m, ctx.methods)
    supported = tuple(n for n in model_support(m, takers).methods) if m.architectures else ()
    found = tuple(fits(supported, m.params or 0, m.source_bytes, ctx.runners))
    return tuple(f.method for f in found if f.ok), found


def check_params(m: ListedModel, f: FilterConfig, ctx: Context) -> str | None:
    if m.params is None:
        return "parameter count unknown (no safetensors metadata)"
    if m.params < f.min_params:
        return f"{human_params(m.params)} parameters, below min_params {human_params(f.min_params)}"
    if f.max_params is not None and m.params > f.max_params:
        return f"{human_params(m.params)} parameters, above max_params {human_params(f.max_params)}"
    methods, found = offered(m, ctx)
    if not methods:
        return (f"{human_params(m.params)} parameters: no runner can hold it ("
                + "; ".join(x.describe() for x in found) + ")")
    return None


def check_license(m: ListedModel, f: FilterConfig, ctx: Context) -> str | None:
    licence = effective_license(m)
    if licence in {d.lower() for d in f.license_deny}:
        return f"licence {licence} is on the deny list"
    return None


CHECKS: tuple[Check, ...] = (
    check_access, check_not_quantized, check_not_published, check_remote_code,
    check_architecture, check_params, check_license,
)


def decide_one(m: ListedModel, f: FilterConfig, ctx: Context) -> ModelCandidate | Skipped:
    """The candidate, or the first reason to skip it."""
    for check in CHECKS:
        reason = check(m, f, ctx)
        if reason:
            return Skipped(m.repo_id, reason)
    assert m.params is not None
    methods, found = offered(m, ctx)
    found_support = model_support(m, ctx.methods)
    return ModelCandidate(repo_id=m.repo_id, architecture=m.architectures[0], params=m.params,
                          license=effective_license(m), trending_score=m.trending_score,
                          methods=methods, multimodal=found_support.multimodal,
                          mmproj=found_support.mmproj, fits=found, quant_method=m.quant_method)


def decide(models: Iterable[ListedModel], f: FilterConfig, ctx: Context) -> Decision:
    """Split the listing into candidates and skipped models (first listing wins on repeats)."""
    candidates: list[ModelCandidate] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for m in models:
        if m.repo_id in seen:
            continue
        seen.add(m.repo_id)
        verdict = decide_one(m, f, ctx)
        if isinstance(verdict, ModelCandidate):
            candidates.append(verdict)
        else:
            skipped.append(verdict)
    return Decision(tuple(candidates), tuple(skipped))
