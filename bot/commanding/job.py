"""The data handed from the plan job to the worker jobs and on to the report (pure).

``plan.json`` (:class:`JobSpec`) says what to make from which model for which issue;
``published.json`` (:class:`Published` list) says what the publish job pushed where.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.commanding.parser import QuantizePlan
from runners.errors import QuantbotError
from runners.source import REPO_ID

PUBLISHED_FILE = "published.json"
QUANTIZE_WORKFLOW = "quantize.yml"


def run_title(issue: int) -> str:
    """The ``run-name`` of quantize.yml runs: how /status and /cancel find an issue's runs."""
    return f"quantize #{issue}"


@dataclass(frozen=True)
class JobSpec:
    """One accepted ``/quantize``: the model, the issue it came from and the plan."""

    model: str
    issue: int
    plan: QuantizePlan

    def __post_init__(self) -> None:
        if not (self.model.isascii() and REPO_ID.match(self.model)):
            raise QuantbotError(f"bad model id {self.model!r}", "use a Hub repo id OWNER/NAME")

    def to_json(self) -> str:
        return json.dumps({"model": self.model, "issue": self.issue,
                           "plan": json.loads(self.plan.to_json())},
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        try:
            data = json.loads(text)
            return cls(model=str(data["model"]), issue=int(data["issue"]),
                       plan=QuantizePlan.from_json(json.dumps(data["plan"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise QuantbotError(f"unreadable job plan ({exc})",
                                "pass the plan.json written from `quantbot command plan`") from exc

    @classmethod
    def load(cls, path: Path) -> JobSpec:
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise QuantbotError(f"cannot read {path} ({exc})", "pass --plan plan.json") from exc


@dataclass(frozen=True)
class Published:
    """One repository the publish job pushed."""

    repo_id: str
    location: str  # Hub URL or local path
    method: str
    folder: str  # the folder's name under the results directory


def save_published(results: Path, items: list[Published]) -> Path:
    path = Path(results) / PUBLISHED_FILE
    path.write_text(json.dumps([asdict(p) for p in items], indent=2) + "\n", encoding="utf-8")
    return path


def load_published(results: Path) -> list[Published]:
    path = Path(results) / PUBLISHED_FILE
    try:
        return [Published(**item) for item in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError) as exc:
        raise QuantbotError(f"cannot read {path} ({exc})",
                            "run `quantbot run-job publish` on the results first") from exc
