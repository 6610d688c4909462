"""What an MLX request asks for: mlx-lm's affine quantization, bits and group size (pure).

``/quantize mlx bits=4,8`` makes two variants; every combination of the listed values is one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

from runners.errors import QuantbotError
from runners.options import Option
from runners.spec import MethodSpec

#: mlx.core.quantize's affine mode: the bit widths and group sizes it takes.
MLX_OPTIONS: tuple[Option, ...] = (
    Option("bits", int, "weight bits", choices=(4, 2, 3, 6, 8), many=True, phrase="{}-bit"),
    Option("group_size", int, "weights per scale and bias", choices=(64, 32, 128), many=True,
           phrase="group size {}"),
)
#: More variants than this in one request is a typo, not a plan.
MAX_VARIANTS = 8
#: Each group stores a scale and a bias in the model's 16-bit dtype.
GROUP_CONSTANT_BITS = 32


@dataclass(frozen=True)
class MlxVariant:
    """One MLX variant: ``mlx_lm.convert(quantize=True, q_bits=bits, q_group_size=group_size)``."""

    bits: int = 4
    group_size: int = 64

    @property
    def name(self) -> str:
        return f"mlx-{self.bits}bit-{self.group_size}g"

    def params(self) -> dict[str, Any]:
        return {"bits": self.bits, "group_size": self.group_size, "mode": "affine"}

    def bits_per_weight(self) -> float:
        """mlx-lm quantizes every Linear and the embeddings (lm_head too): the bits plus one
        16-bit scale and bias per group (4-bit, group 64: 4.5, as ``mlx_lm.convert`` reports)."""
        return round(self.bits + GROUP_CONSTANT_BITS / self.group_size, 2)


@dataclass(frozen=True)
class MlxSpec(MethodSpec):
    """mlx-community's usual recipe by default: 4-bit, group 64."""

    OPTIONS: ClassVar[tuple[Option, ...]] = MLX_OPTIONS
    LABEL: ClassVar[str] = "MLX"

    bits: tuple[int, ...] = (4,)
    group_size: tuple[int, ...] = (64,)

    def variants(self) -> list[MlxVariant]:
        found = list(dict.fromkeys(MlxVariant(b, g)
                                   for b, g in itertools.product(self.bits, self.group_size)))
        if len(found) > MAX_VARIANTS:
            raise QuantbotError(f"MLX asks for {len(found)} variants (every combination of the "
                                "listed values)", f"list fewer values: at most {MAX_VARIANTS} variants")
        return found

    def validate(self) -> None:
        self.variants()

    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants()]

    def describe(self) -> str:
        return "; ".join(f"{v.bits}-bit, group size {v.group_size}" for v in self.variants())

    def bits_per_weight(self) -> dict[str, float]:
        return {v.name: v.bits_per_weight() for v in self.variants()}
