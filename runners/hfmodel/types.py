"""What crosses the fresh-process boundary of a transformers-family method (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runners.results import Quality


@dataclass(frozen=True)
class CalibrationSet:
    """Token blocks fed to the quantizer (one block = one calibration sample)."""

    blocks: list[list[int]]
    text_name: str
    text_sha256: str

    @property
    def n_tokens(self) -> int:
        return sum(len(b) for b in self.blocks)

    def as_samples(self) -> list[dict[str, list[int]]]:
        return [{"input_ids": b, "attention_mask": [1] * len(b)} for b in self.blocks]


@dataclass(frozen=True)
class QuantOutcome:
    """One finished quantization: the folder written and what making it cost."""

    variant: str
    params: dict[str, Any]
    folder: Path
    seconds: float
    peak_vram_bytes: int
    peak_rss_bytes: int
    calibration_tokens: int
    files: list[str] = field(default_factory=list)
    size_bytes: int = 0
    tool_version: str = ""


@dataclass(frozen=True)
class Measurement:
    """A model's quality on the evaluation windows, and how it was obtained."""

    quality: Quality
    n_scored: int
    dtype: str = ""
    seconds: float = 0.0
    windows: int = 0  # evaluation windows used (fewer than given when the rule settled early)


@dataclass(frozen=True)
class CheckOutcome:
    """What reloading a folder with transformers alone gave."""

    folder: Path
    text: str
    new_tokens: int
    quantized_modules: int
    load_class: str
    dtype: str
    device: str
    seconds: float
    peak_vram_bytes: int
    peak_rss_bytes: int
    measurement: Measurement | None = None
