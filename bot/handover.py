"""What the method jobs hand to the report job: ``published.json`` (pure).

``plan.json`` (:class:`bot.plan.Plan`) says what to make; each method job publishes its own
repository and records it in a :class:`Published`; the report job reads them all, with each
repository's ``quantbot.json`` beside them (:func:`published_records`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from runners.errors import QuantbotError

PUBLISHED_FILE = "published.json"
QUANTIZE_WORKFLOW = "quantize.yml"


def run_title(issue: int) -> str:
    """The ``run-name`` of quantize.yml runs: how /status and /cancel find an issue's runs."""
    return f"quantize #{issue}"


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


def published_records(results: Path) -> list[tuple[Published, Path]]:
    """Every published repository listed in a ``published.json`` under ``results`` (any depth:
    the report job downloads one artifact folder per method job), with the folder holding its
    ``quantbot.json``."""
    found = sorted({f.parent for f in Path(results).glob(f"**/{PUBLISHED_FILE}")})
    return [(p, folder / p.folder) for folder in found for p in load_published(folder)]
