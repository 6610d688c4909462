"""A plan: one accepted request for one model, split into jobs per runner, with estimates (pure).

``plan.json`` is what the plan job hands to the method jobs; it names the model, the exact
source revision every job downloads, the issue it came from and the request.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from bot.methods import METHODS, Estimate
from bot.request import QuantizeRequest
from runners.errors import QuantbotError
from runners.source import is_repo_id

_SHA = re.compile(r"[0-9a-f]{40}")


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

    def __post_init__(self) -> None:
        if not is_repo_id(self.model):
            raise QuantbotError(f"bad model id {self.model!r}", "use a Hub repo id OWNER/NAME")
        if self.revision is not None and not _SHA.fullmatch(self.revision):
            raise QuantbotError(f"bad revision {self.revision!r}",
                                "pin the source to a full 40-character commit sha")

    @property
    def jobs(self) -> list[Job]:
        return [Job(name, METHODS[name].runner) for name in self.request.methods]

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
                           "request": self.request.to_dict()},
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Inverse of :meth:`to_json`; re-validates everything (the text crossed a job boundary)."""
        try:
            data = json.loads(text)
            return cls(model=str(data["model"]), issue=int(data["issue"]),
                       revision=data.get("revision"),
                       request=QuantizeRequest.from_dict(data["request"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise QuantbotError(f"unreadable plan ({exc})",
                                "pass the plan.json written by `quantbot command plan`") from exc

    @classmethod
    def load(cls, path: Path) -> Plan:
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise QuantbotError(f"cannot read {path} ({exc})", "pass --plan plan.json") from exc
