"""GGUF quantization types: which llama-quantize knows, which quantbot makes by default (pure)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from runners.errors import QuantbotError


@dataclass(frozen=True)
class GgufType:
    """One ``llama-quantize`` target type, as TheBloke's cards describe it."""

    name: str
    method: str  # how llama.cpp quantizes it, for the card's "Quant method" column
    needs_imatrix: bool = False


def _k(name: str, bits: int) -> GgufType:
    return GgufType(name, f"{bits}-bit k-quant (super-blocks of 256)")


def _legacy(name: str, bits: int) -> GgufType:
    return GgufType(name, f"{bits}-bit legacy quant (blocks of 32)")


def _iq(name: str, bits: str, imatrix: bool) -> GgufType:
    return GgufType(name, f"{bits}-bit i-quant (lattice codebook)", needs_imatrix=imatrix)


_ALL: tuple[GgufType, ...] = (
    _k("Q2_K", 2), _k("Q2_K_S", 2), _k("Q3_K_S", 3), _k("Q3_K_M", 3), _k("Q3_K_L", 3),
    _legacy("Q4_0", 4), _legacy("Q4_1", 4), _k("Q4_K_S", 4), _k("Q4_K_M", 4),
    _legacy("Q5_0", 5), _legacy("Q5_1", 5), _k("Q5_K_S", 5), _k("Q5_K_M", 5),
    _k("Q6_K", 6), _legacy("Q8_0", 8),
    _iq("IQ1_S", "1.56", True), _iq("IQ1_M", "1.75", True),
    _iq("IQ2_XXS", "2.06", True), _iq("IQ2_XS", "2.31", True), _iq("IQ2_S", "2.5", True),
    _iq("IQ2_M", "2.7", True), _iq("IQ3_XXS", "3.06", True), _iq("IQ3_XS", "3.3", False),
    _iq("IQ3_S", "3.44", False), _iq("IQ3_M", "3.66", False),
    _iq("IQ4_NL", "4.5", False), _iq("IQ4_XS", "4.25", False),
    GgufType("F16", "16-bit float, unquantized"), GgufType("BF16", "bfloat16, unquantized"),
)
_NEEDS_IMATRIX_TOO = {"Q2_K_S"}  # llama-quantize refuses it without an importance matrix

GGUF_TYPES: dict[str, GgufType] = {
    t.name: (GgufType(t.name, t.method, True) if t.name in _NEEDS_IMATRIX_TOO else t) for t in _ALL
}

#: TheBloke's set, smallest to largest: what ``quantbot quantize --method gguf`` makes by default.
DEFAULT_TYPES: tuple[str, ...] = (
    "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_K_S", "Q4_K_M",
    "Q5_0", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0",
)


def parse_types(spec: str | None) -> list[str]:
    """``"q4_k_m, Q8_0"`` → ``["Q4_K_M", "Q8_0"]``; ``None``/``""``/``"all"`` → the default set.

    Order follows the default set (then the rest in the given order); duplicates are dropped.
    """
    if spec is None or spec.strip().lower() in ("", "all", "default"):
        return list(DEFAULT_TYPES)
    names: list[str] = []
    for raw in spec.split(","):
        name = raw.strip().upper()
        if not name:
            continue
        if name not in GGUF_TYPES:
            close = difflib.get_close_matches(name, GGUF_TYPES, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else ""
            raise QuantbotError(
                f"unknown GGUF type {raw.strip()!r} {hint}".strip(),
                f"use types from: {', '.join(GGUF_TYPES)}",
            )
        if name not in names:
            names.append(name)
    if not names:
        raise QuantbotError("no GGUF type given", f"name at least one of {', '.join(DEFAULT_TYPES)}")
    order = {n: i for i, n in enumerate(DEFAULT_TYPES)}
    return sorted(names, key=lambda n: order.get(n, len(order) + names.index(n)))
