"""Estimated file size of each planned quant, from the parameter count (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Effective bits per weight of whole llama.cpp GGUF files (weights + scales + the few tensors
#: kept at higher precision), as measured on 7-8B Llama-class models.
GGUF_BPW: dict[str, float] = {
    "Q2_K": 3.35, "Q2_K_S": 3.18, "Q3_K_S": 3.50, "Q3_K_M": 3.91, "Q3_K_L": 4.27,
    "Q4_0": 4.55, "Q4_1": 5.0, "Q4_K_S": 4.58, "Q4_K_M": 4.89,
    "Q5_0": 5.54, "Q5_1": 6.0, "Q5_K_S": 5.54, "Q5_K_M": 5.70,
    "Q6_K": 6.56, "Q8_0": 8.50,
    "IQ1_S": 1.56, "IQ1_M": 1.75, "IQ2_XXS": 2.06, "IQ2_XS": 2.31, "IQ2_S": 2.5, "IQ2_M": 2.7,
    "IQ3_XXS": 3.06, "IQ3_XS": 3.3, "IQ3_S": 3.44, "IQ3_M": 3.66, "IQ4_NL": 4.5, "IQ4_XS": 4.25,
    "F16": 16.0, "BF16": 16.0,
}
#: 4-bit, group size 128 (scales and zeros included); embeddings and lm_head stay 16-bit, which
#: the flat rate below approximates for mid-size models.
GPU_4BIT_BPW = 4.6


@dataclass(frozen=True)
class QuantEstimate:
    """One planned output: ``gguf``/``Q4_K_M`` → about N bytes."""

    method: str
    variant: str
    bytes: int


def estimate(params: int, methods: Iterable[str], gguf_types: Iterable[str]) -> list[QuantEstimate]:
    """Estimated sizes, GGUF types in the given order, then GPTQ, then AWQ."""
    methods = list(methods)
    out: list[QuantEstimate] = []
    if "gguf" in methods:
        for t in gguf_types:
            bpw = GGUF_BPW.get(t.upper())
            if bpw is not None:
                out.append(QuantEstimate("gguf", t.upper(), int(params * bpw / 8)))
    for method in ("gptq", "awq"):
        if method in methods:
            out.append(QuantEstimate(method, "4-bit g128", int(params * GPU_4BIT_BPW / 8)))
    return out
