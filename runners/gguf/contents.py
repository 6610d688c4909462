"""What a GGUF file really holds, against what its type name promises (pure).

``llama-quantize`` falls back to another type for every tensor whose rows are not a multiple of
the type's block (256 values for k-quants and most i-quants): on SmolLM2-135M (hidden 576) 180 of
211 weight tensors of "Q2_K" are Q4_0, and "Q2_K" and "Q3_K_S" come out with identical tensor
types. So quantbot fingerprints each file's tensor types, publishes one file per fingerprint
(saying which requested names it stands for), and notes on the card when a file's name does not
describe most of its weights.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from runners.gguf.header import TensorInfo

#: Below this share of weights in the named type family, the name does not describe the file.
NAMED_SHARE_MIN = 0.5
_UNQUANTIZED = frozenset({"F32", "F16", "BF16", "F64"})


def fingerprint(tensors: Iterable[TensorInfo]) -> str:
    """Names the file's tensor types: equal for two files whose every tensor has the same type."""
    pairs = sorted(f"{t.name}={t.type_name}" for t in tensors)
    return hashlib.sha256("\n".join(pairs).encode()).hexdigest()[:16]


def family(qtype: str) -> str:
    """The tensor-type family a file type name promises: ``Q4_K_M`` → ``Q4_K``, ``Q8_0`` →
    ``Q8_0``, ``IQ3_XS`` → ``IQ3`` (i-quant mixes use several IQ3 types)."""
    if qtype.startswith("IQ"):
        return qtype[:3]
    match = re.match(r"Q\d_K", qtype)
    return match.group(0) if match else qtype


def in_family(tensor_type: str, fam: str) -> bool:
    return tensor_type == fam or tensor_type.startswith(fam + "_") or (
        fam.startswith("IQ") and tensor_type.startswith(fam))


@dataclass(frozen=True)
class Contents:
    """How a file's quantized weights split over tensor types."""

    qtype: str
    named_share: float  # share of quantized weights in the named type's family
    by_type: dict[str, int]  # quantized weights per tensor type, largest first

    @property
    def misnamed(self) -> bool:
        return bool(self.by_type) and self.named_share < NAMED_SHARE_MIN

    def note(self) -> str | None:
        """One sentence for the card when the name does not describe the file, else None."""
        if not self.misnamed:
            return None
        total = sum(self.by_type.values())
        parts = ", ".join(f"{name} {100 * n / total:.0f} %" for name, n in self.by_type.items())
        share = (f"only {100 * self.named_share:.0f} %" if self.named_share >= 0.005
                 else "none")
        return (f"{share} of its quantized weights are {family(self.qtype)}-family ({parts}): "
                f"llama-quantize uses another type for tensors whose rows are not a multiple of "
                f"the type's block size")


def contents(qtype: str, tensors: Iterable[TensorInfo]) -> Contents:
    """The split of a ``qtype`` file's quantized weights (norms and other unquantized tensors
    left out) over tensor types."""
    by_type: dict[str, int] = {}
    for t in tensors:
        if t.type_name not in _UNQUANTIZED:
            by_type[t.type_name] = by_type.get(t.type_name, 0) + t.n_elements
    total = sum(by_type.values())
    fam = family(qtype)
    named = sum(n for name, n in by_type.items() if in_family(name, fam))
    ordered = dict(sorted(by_type.items(), key=lambda kv: -kv[1]))
    return Contents(qtype, named / total if total else 1.0, ordered)


def same_files(fingerprints: dict[str, str]) -> dict[str, list[str]]:
    """``{kept type: [every requested type it stands for]}`` in request order: the first type
    of each fingerprint is kept, later ones with the same fingerprint are folded into it."""
    kept: dict[str, list[str]] = {}
    first_of: dict[str, str] = {}
    for qtype, print_ in fingerprints.items():
        owner = first_of.setdefault(print_, qtype)
        kept.setdefault(owner, []).append(qtype)
    return kept
