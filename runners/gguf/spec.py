"""What a GGUF request asks for: the llama-quantize types and the importance matrix (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from runners.gguf.types import DEFAULT_TYPES, GGUF_TYPES, IMATRIX_TYPES, MIXABLE_TYPES
from runners.options import Option, OptionError
from runners.spec import MethodSpec

GGUF_OPTIONS: tuple[Option, ...] = (
    Option("types", str, "llama-quantize types, comma-separated (default: TheBloke's 12)",
           choices=tuple(GGUF_TYPES), many=True, normalize=str.upper),
    Option("imatrix", bool, "importance matrix from the calibration text (i-quants need it)",
           flag=True),
    Option("mixes", bool, "also search per-tensor mixes at each requested type's size and "
                          "publish those that measurably beat it (GPU runners)", flag=True),
    Option("mix_minutes", int, "minutes the mix search's sweep may take; needed to search on a "
                               "CPU-only runner (none: no limit, GPU runners only)",
           bounds=(-1, 1441), names={0: "none"}),
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
    mixes: bool = False
    mix_minutes: int = 0  # 0: not given

    def validate(self) -> None:
        if not self.types:
            default = DEFAULT_TYPES + (IMATRIX_TYPES if self.imatrix else ())
            object.__setattr__(self, "types", default)
        object.__setattr__(self, "types", _ordered(tuple(self.types)))
        need = [t for t in self.types if GGUF_TYPES[t].needs_imatrix]
        if need and not self.imatrix:
            raise OptionError(f"GGUF type {need[0]} needs an importance matrix",
                              "add `imatrix` to the request", need[0])
        if self.mix_minutes and not self.mixes:
            raise OptionError("mix_minutes is the mix search's time, and no mixes were asked for",
                              "add `mixes` to the request, or drop mix_minutes", "mix_minutes")
        if self.mixes and not self.mix_sizes():
            raise OptionError("mixes are searched at the sizes of the requested stock types, "
                              f"and none of {', '.join(self.types)} is one",
                              f"ask for one of {', '.join(MIXABLE_TYPES)} beside `mixes`",
                              "mixes")

    def mix_sizes(self) -> list[str]:
        """The requested stock types a mix competes with (:data:`MIXABLE_TYPES`)."""
        return [t for t in self.types if t in MIXABLE_TYPES] if self.mixes else []

    def variant_names(self) -> list[str]:
        return list(self.types)

    def describe(self) -> str:
        mixes = ""
        if self.mixes:
            mixes = f"; mixes searched at the sizes of {', '.join(self.mix_sizes())}" + (
                f" (sweep up to {self.mix_minutes} min)" if self.mix_minutes else "")
        return ", ".join(self.types) + ("; importance matrix" if self.imatrix else "") + mixes

    def bits_per_weight(self) -> dict[str, float]:
        return {t: GGUF_TYPES[t].bpw for t in self.types}
