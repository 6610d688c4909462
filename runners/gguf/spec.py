"""What a GGUF request asks for: the llama-quantize types and the importance matrix (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from runners.gguf.types import DEFAULT_TYPES, GGUF_TYPES, IMATRIX_TYPES
from runners.options import Option, OptionError
from runners.spec import MethodSpec

GGUF_OPTIONS: tuple[Option, ...] = (
    Option("types", str, "llama-quantize types, comma-separated (default: TheBloke's 12)",
           choices=tuple(GGUF_TYPES), many=True, normalize=str.upper),
    Option("imatrix", bool, "importance matrix from the calibration text (i-quants need it)",
           flag=True),
)


def _ordered(types: tuple[str, ...]) -> tuple[str, ...]:
    order = {n: i for i, n in enumerate(DEFAULT_TYPES)}
    return tuple(sorted(dict.fromkeys(types), key=lambda n: order.get(n, len(order) + types.index(n))))


@dataclass(frozen=True)
class GgufSpec(MethodSpec):
    """Types in the default set's order (smallest first), then any others as given."""

    OPTIONS: ClassVar[tuple[Option, ...]] = GGUF_OPTIONS
    LABEL: ClassVar[str] = "GGUF"
    PRIMARY: ClassVar[str | None] = "types"

    types: tuple[str, ...] = ()  # none given: the default set (with the i-quants under imatrix)
    imatrix: bool = False

    def validate(self) -> None:
        if not self.types:
            default = DEFAULT_TYPES + (IMATRIX_TYPES if self.imatrix else ())
            object.__setattr__(self, "types", default)
        object.__setattr__(self, "types", _ordered(tuple(self.types)))
        need = [t for t in self.types if GGUF_TYPES[t].needs_imatrix]
        if need and not self.imatrix:
            raise OptionError(f"GGUF type {need[0]} needs an importance matrix",
                              "add `imatrix` to the request", need[0])

    def variant_names(self) -> list[str]:
        return list(self.types)

    def describe(self) -> str:
        return ", ".join(self.types) + ("; importance matrix" if self.imatrix else "")

    def bits_per_weight(self) -> dict[str, float]:
        return {t: GGUF_TYPES[t].bpw for t in self.types}
