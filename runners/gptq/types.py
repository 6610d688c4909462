"""GPTQ and AWQ variants: what to make and what came out (pure; no torch, no gptqmodel)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runners.errors import QuantbotError

Method = Literal["gptq", "awq"]

GPTQ_BITS = (2, 3, 4, 8)
GPTQ_GROUPS = (32, 64, 128, -1)  # -1: one group per row ("none")
AWQ_BITS = (4,)  # the GEMM layout that transformers and vLLM load is 4-bit only
AWQ_GROUPS = (32, 64, 128)


def parse_group(value: str | int | None) -> int:
    """``"128"``/``128`` → 128; ``"none"``/``-1``/``None`` → -1 (per-row scales)."""
    if value is None:
        return -1
    text = str(value).strip().lower()
    if text in ("none", "-1", "row", "per-row"):
        return -1
    if not text.isdigit():
        raise QuantbotError(f"bad group size {value!r}", "use 32, 64, 128 or none")
    return int(text)


@dataclass(frozen=True)
class QuantSpec:
    """One GPTQ or AWQ variant. Defaults: GPTQ 4-bit, group 128, act-order, damp 0.01."""

    method: Method = "gptq"
    bits: int = 4
    group_size: int = 128
    desc_act: bool = True  # GPTQ act-order; AWQ never reorders
    damp_percent: float = 0.01
    sym: bool = True  # GPTQ symmetric; AWQ's default zero point means sym=False

    def __post_init__(self) -> None:
        if self.method not in ("gptq", "awq"):
            raise QuantbotError(f"unknown method {self.method!r}", "use gptq or awq")
        if self.method == "gptq":
            if self.bits not in GPTQ_BITS:
                raise QuantbotError(f"GPTQ cannot make {self.bits}-bit weights",
                                    f"use bits from {', '.join(map(str, GPTQ_BITS))}")
            if self.group_size not in GPTQ_GROUPS:
                raise QuantbotError(f"GPTQ group size {self.group_size} is not offered",
                                    "use 32, 64, 128 or none")
            if not 0 < self.damp_percent < 1:
                raise QuantbotError(f"damp {self.damp_percent} is outside (0, 1)",
                                    "use a small fraction such as 0.01")
        else:
            if self.bits not in AWQ_BITS:
                raise QuantbotError(f"AWQ (GEMM) cannot make {self.bits}-bit weights",
                                    "use 4 bits for AWQ, or GPTQ for other widths")
            if self.group_size not in AWQ_GROUPS:
                raise QuantbotError(f"AWQ group size {self.group_size} is not offered",
                                    "use 32, 64 or 128")
            if self.desc_act:
                raise QuantbotError("AWQ has no act-order", "drop act-order for AWQ variants")

    @classmethod
    def gptq(cls, bits: int = 4, group_size: int | str = 128, act_order: bool = True,
             damp: float = 0.01) -> QuantSpec:
        return cls("gptq", bits, parse_group(group_size), act_order, damp, True)

    @classmethod
    def awq(cls, bits: int = 4, group_size: int | str = 128, zero_point: bool = True) -> QuantSpec:
        return cls("awq", bits, parse_group(group_size), False, 0.01, not zero_point)

    @property
    def group_label(self) -> str:
        return "none" if self.group_size == -1 else str(self.group_size)

    @property
    def name(self) -> str:
        """Folder-safe variant name, e.g. ``gptq-4bit-128g-actorder`` or ``awq-4bit-128g-zp``."""
        parts = [self.method, f"{self.bits}bit",
                 "nogroup" if self.group_size == -1 else f"{self.group_size}g"]
        if self.method == "gptq" and self.desc_act:
            parts.append("actorder")
        if self.method == "awq" and not self.sym:
            parts.append("zp")
        return "-".join(parts)

    def params(self) -> dict[str, Any]:
        """What a card shows about the recipe."""
        out: dict[str, Any] = {"bits": self.bits, "group_size": self.group_label}
        if self.method == "gptq":
            out |= {"act_order": self.desc_act, "damp_percent": self.damp_percent,
                    "sym": self.sym}
        else:
            out |= {"zero_point": not self.sym, "version": "gemm"}
        return out


def parse_specs(method: Method, spec: str | None) -> list[QuantSpec]:
    """``"4,8"`` or ``"4:128,3:64"`` (bits[:group]) → specs; empty → the method's default."""
    if not spec or spec.strip().lower() in ("default", "all"):
        return [QuantSpec.gptq() if method == "gptq" else QuantSpec.awq()]
    out: list[QuantSpec] = []
    for raw in spec.split(","):
        raw = raw.strip()
        if not raw:
            continue
        bits_text, _, group_text = raw.partition(":")
        if not bits_text.isdigit():
            raise QuantbotError(f"bad variant {raw!r}", "write bits[:group], e.g. 4:128 or 8")
        group = parse_group(group_text) if group_text else 128
        made = (QuantSpec.gptq(int(bits_text), group) if method == "gptq"
                else QuantSpec.awq(int(bits_text), group))
        if made not in out:
            out.append(made)
    if not out:
        raise QuantbotError("no variant given", "name at least one, e.g. 4:128")
    return out


@dataclass(frozen=True)
class CalibrationSet:
    """Token blocks fed to the quantizer (one block = one calibration sample)."""

    blocks: list[list[int]]
    text_name: str
    text_sha256: str

    @property
    def n_tokens(self) -> int:
        return sum(len(b) for b in self.blocks)

    def as_gptqmodel(self) -> list[dict[str, list[int]]]:
        return [{"input_ids": b, "attention_mask": [1] * len(b)} for b in self.blocks]


@dataclass(frozen=True)
class QuantOutcome:
    """One finished quantization (the folder written and what making it cost)."""

    spec: QuantSpec
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
    """Perplexity and divergence from the unquantized model, as measured in a fresh process."""

    ppl: float
    ppl_err: float
    n_scored: int
    kld_mean: float | None = None
    kld_err: float | None = None
    kld_p99: float | None = None
    same_top_p: float | None = None
    dtype: str = ""
    seconds: float = 0.0


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
