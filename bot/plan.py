"""A plan: one accepted request for one model, split into jobs per runner, with estimates (pure).

``plan.json`` is what the plan job hands to the method jobs; it names the model, the exact
source revision every job downloads, the issue it came from and the request.

Before a plan is made, :func:`assess` checks the request against what the Hub says of the model
at that revision (:class:`ModelFacts`, read by :mod:`bot.hub.model`) and against the configured
runners, with the watcher's own screens (:mod:`bot.hub.filters`) and size estimates
(:mod:`bot.capacity`): a model that is gated, needs remote code or ships no usable weights is
refused whole; a method whose tool does not take the model, or whose job no runner can hold, is
left out with its numbers; the methods that fit go on.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.capacity import DEFAULT_VOCAB, Fit, RunnerFix, RunnerSpec, fits, runner_fix
from bot.cards.memory import text_config
from bot.config import FilterConfig
from bot.hub.filters import (
    Context,
    ListedModel,
    check_access,
    check_architecture,
    check_remote_code,
    format_takers,
    model_support,
)
from bot.methods import METHODS, Estimate
from bot.moe import Experts, experts
from bot.request import QuantizeRequest
from runners.errors import QuantbotError
from runners.gguf.mix_plan import TYPICAL_PROBES, estimate_sweep_seconds
from runners.gguf.spec import GgufSpec
from runners.source import is_repo_id
from runners.spec import MethodSpec

_SHA = re.compile(r"[0-9a-f]{40}")


def is_commit_sha(text: str) -> bool:
    """A full 40-character lowercase git commit SHA (what every job pins its download to)."""
    return bool(_SHA.fullmatch(text))


@dataclass(frozen=True)
class Job:
    """One method of a plan on the runner label it needs."""

    method: str
    runner: str


@dataclass(frozen=True)
class Plan:
    """What to make from which model (at which commit), for which issue."""

    model: str
    issue: int
    request: QuantizeRequest
    revision: str | None = None  # the commit every job downloads; None: a local source
    #: Method → runner label where the plan moved a job off its method's own label
    #: (:func:`bot.capacity.place`: GGUF onto a GPU runner with room for it).
    placement: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_repo_id(self.model):
            raise QuantbotError(f"bad model id {self.model!r}", "use a Hub repo id OWNER/NAME")
        for name, label in self.placement.items():
            if name not in self.request.specs or label not in METHODS[name].labels:
                raise QuantbotError(f"the plan puts {name} on a {label!r} runner",
                                    "pass the plan.json written by `quantbot command plan`")
        if self.revision is not None and not is_commit_sha(self.revision):
            raise QuantbotError(f"bad revision {self.revision!r}",
                                "pin the source to a full 40-character commit sha")

    @property
    def jobs(self) -> list[Job]:
        return [Job(name, self.placement.get(name, METHODS[name].runner))
                for name in self.request.methods]

    def matrix(self) -> dict[str, list[dict[str, str]]]:
        """The workflow's job matrix: one ``{method, runner, extra}`` per job."""
        return {"include": [{"method": j.method, "runner": j.runner,
                             "extra": METHODS[j.method].extra} for j in self.jobs]}

    def estimates(self, n_params: int) -> list[Estimate]:
        return [e for name, spec in self.request.specs.items()
                for e in METHODS[name].estimate(n_params, spec)]

    def to_json(self) -> str:
        """One line of JSON (fits a ``$GITHUB_OUTPUT`` value)."""
        return json.dumps({"model": self.model, "issue": self.issue, "revision": self.revision,
                           "request": self.request.to_dict(), "placement": self.placement},
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Inverse of :meth:`to_json`; re-validates everything (the text crossed a job boundary)."""
        try:
            data = json.loads(text)
            return cls(model=str(data["model"]), issue=int(data["issue"]),
                       revision=data.get("revision"),
                       request=QuantizeRequest.from_dict(data["request"]),
                       placement={str(k): str(v) for k, v in
                                  (data.get("placement") or {}).items()})
        except (ValueError, KeyError, TypeError) as exc:
            raise QuantbotError(f"unreadable plan ({exc})",
                                "pass the plan.json written by `quantbot command plan`") from exc

    @classmethod
    def load(cls, path: Path) -> Plan:
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise QuantbotError(f"cannot read {path} ({exc})", "pass --plan plan.json") from exc


@dataclass(frozen=True)
class ModelFacts:
    """What the Hub says of a model at one commit: all a plan is decided on."""

    listed: ListedModel  # the watcher's view: access, remote code, architecture, parameter count
    revision: str  # the commit every job downloads
    config: dict[str, Any] = field(default_factory=dict)  # config.json at that commit
    weight_bytes: int | None = None  # the safetensors weights' bytes (the download)
    pickle_only: bool = False  # *.bin/*.pt weights and no safetensors

    @property
    def repo_id(self) -> str:
        return self.listed.repo_id

    @property
    def params(self) -> int | None:
        return self.listed.params

    @property
    def experts(self) -> Experts | None:
        """Total against active parameters when the model is a mixture of experts."""
        return experts(self.config, self.params) if self.params else None

    @property
    def vocab(self) -> int | None:
        value = text_config(self.config).get("vocab_size")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
            else None


@dataclass(frozen=True)
class Declined:
    """A requested method that is not made: its tool does not take the model (``reason``), or
    no configured runner can hold its job (``fit``, with the runner it has and the fix)."""

    method: str
    reason: str | None = None
    fit: Fit | None = None
    runner: RunnerSpec | None = None
    fix: RunnerFix | None = None


@dataclass(frozen=True)
class Refusal:
    """Why nothing at all is made of a model: the screen that refused it (``access``,
    ``remote_code``, ``architecture``, ``pickle``, ``unsized``; the reply's fix follows from it)
    and its reason."""

    screen: str
    reason: str


@dataclass(frozen=True)
class Assessment:
    """A request checked against the model and the runners."""

    facts: ModelFacts
    refusal: Refusal | None = None
    accepted: tuple[Fit, ...] = ()  # the methods that go on, with what their jobs need
    declined: tuple[Declined, ...] = ()
    request: QuantizeRequest | None = None  # the request narrowed to the accepted methods
    runners: dict[str, RunnerSpec] = field(default_factory=dict)

    def plan(self, issue: int) -> Plan | None:
        """The plan of the accepted methods, pinned to the screened commit (None: nothing)."""
        if self.request is None:
            return None
        return Plan(model=self.facts.repo_id, issue=issue, request=self.request,
                    revision=self.facts.revision,
                    placement={f.method: f.need.runner for f in self.accepted
                               if f.need.runner != METHODS[f.method].runner})


#: The watcher's screens that hold for a maintainer's /quantize too (bot/hub/filters.py): access
#: (gated, private, disabled), remote code without the opt-in, an architecture none of the
#: requested methods' tools take. Popularity, licence and size caps are the watcher's business.
SCREENS = (check_access, check_remote_code, check_architecture)


def _mixes_on_cpu(spec: MethodSpec | None, fit: Fit, runners: dict[str, RunnerSpec],
                  n_params: int) -> str | None:
    """Why GGUF's mix search is not run where the plan put the job: a runner without a GPU,
    and no ``mix_minutes`` given (the search measures about a hundred files)."""
    if not isinstance(spec, GgufSpec) or not spec.mixes or spec.mix_minutes:
        return None
    runner = runners.get(fit.need.runner)
    if runner is None or runner.gpus > 0:
        return None
    minutes = math.ceil(estimate_sweep_seconds(n_params, runner.cores, on_gpu=False) / 60)
    return (f"its job runs on the {fit.need.runner} runner, which has no GPU, and the mix "
            f"search there takes about {minutes} min (about {TYPICAL_PROBES} files measured on "
            f"{runner.cores} cores); ask again with `mix_minutes={minutes}` to allow it, or "
            f"without `mixes`")


def assess(facts: ModelFacts, request: QuantizeRequest, filters: FilterConfig,
           runners: dict[str, RunnerSpec]) -> Assessment:
    """Which requested methods can be made of this model on these runners, and why not the rest."""
    model = facts.listed
    ctx = Context(namespace="", own_repos=frozenset(), methods=request.methods, runners=runners)
    refusal = next((Refusal(check.__name__.removeprefix("check_"), why) for check in SCREENS
                    if (why := check(model, filters, ctx))), None)
    if refusal is None and model.gated:  # allowed for the watcher's issues, not for the jobs
        refusal = Refusal("gated", "it is gated, and the method jobs download without a Hub "
                                   "token (only the publish step holds one)")
    if refusal is None and facts.pickle_only:
        refusal = Refusal("pickle", "it ships only pickle weights (*.bin/*.pt), no safetensors")
    if refusal is None and model.params is None:
        refusal = Refusal("unsized", "the Hub lists no safetensors parameter count for it")
    if refusal is not None:
        return Assessment(facts, refusal=refusal, runners=runners)
    assert model.params is not None
    takers = format_takers(model, request.methods)
    verdicts = model_support(model, request.methods).verdicts
    declined: dict[str, Declined] = {}
    for name in request.methods:
        if name not in takers:
            declined[name] = Declined(name, reason=f"the original is released quantized "
                                                   f"({model.quant_method}), which "
                                                   f"{METHODS[name].label}'s tool does not read")
        elif not verdicts[name].supported:
            declined[name] = Declined(name, reason=verdicts[name].reason)
    sized = fits(tuple(n for n in request.methods if n not in declined), model.params,
                 facts.weight_bytes, runners, specs=request.specs,
                 vocab=facts.vocab or DEFAULT_VOCAB)
    for fit in sized:
        if not fit.ok:
            runner = runners.get(fit.need.runner)
            declined[fit.method] = Declined(fit.method, fit=fit, runner=runner,
                                            fix=runner_fix(fit.need, runner))
        elif fit.method == "gguf" and (why := _mixes_on_cpu(request.specs.get("gguf"), fit,
                                                          runners, model.params)):
            declined[fit.method] = Declined(fit.method, reason=why)
    accepted = tuple(f for f in sized if f.ok and f.method not in declined)
    narrowed = QuantizeRequest({f.method: request.specs[f.method] for f in accepted}) \
        if accepted else None
    return Assessment(facts, accepted=accepted,
                      declined=tuple(declined[n] for n in request.methods if n in declined),
                      request=narrowed, runners=runners)
