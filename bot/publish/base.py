"""The publisher interface: one finished repository folder in, one published repository out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class PublishResult:
    """What a publisher did with one repository folder."""

    repo_id: str
    location: str  # a local path or a Hub URL
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class Publisher(Protocol):
    """Publishes a complete repository folder all-or-nothing; a rerun resumes."""

    def publish(self, folder: Path, repo_id: str) -> PublishResult: ...
