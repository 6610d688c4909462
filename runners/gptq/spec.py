"""What a GPTQ or AWQ request asks for: every combination of the listed values is a variant
(pure). ``/quantize gptq bits=4,8 group_size=128`` makes two variants."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from runners.errors import QuantbotError
from runners.gptq.types import AUTO_GROUP, AWQ_OPTIONS, GPTQ_OPTIONS, QuantSpec
from runners.options import Option
from runners.spec import MethodSpec

#: More variants than this in one request is a typo, not a plan: each is a full quantization.
MAX_VARIANTS = 8


def _limited(specs: list[QuantSpec], label: str) -> list[QuantSpec]:
    specs = list(dict.fromkeys(specs))  # a value listed twice is one variant
    if len(specs) > MAX_VARIANTS:
        raise QuantbotError(f"{label} asks for {len(specs)} variants (every combination of the "
                            "listed values)", f"list fewer values: at most {MAX_VARIANTS} variants")
    return specs


class _VariantsSpec(MethodSpec):
    """Shared by GPTQ and AWQ: variants, their description and their size estimate."""

    #: Makes one variant from one value of each option, in ``OPTIONS`` order.
    MAKE: ClassVar[Callable[..., QuantSpec]]

    def variants(self) -> list[QuantSpec]:
        combos = itertools.product(*(getattr(self, o.name) for o in self.OPTIONS))
        return _limited([type(self).MAKE(*combo) for combo in combos], self.LABEL)

    def validate(self) -> None:
        self.variants()

    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants()]

    def describe(self) -> str:
        return "; ".join(", ".join(o.describe(value) for o, value in
                                   zip(self.OPTIONS, v.options().values(), strict=True))
                         for v in self.variants())

    def bits_per_weight(self) -> dict[str, float]:
        return {v.name: v.bits_per_weight() for v in self.variants()}


@dataclass(frozen=True)
class GptqSpec(_VariantsSpec):
    """GPTQ: TheBloke's main recipe by default (4-bit, act-order, damp 0.01), with group 128
    where the model's widths allow it (``auto``)."""

    OPTIONS: ClassVar[tuple[Option, ...]] = GPTQ_OPTIONS
    LABEL: ClassVar[str] = "GPTQ"
    MAKE: ClassVar[Callable[..., QuantSpec]] = QuantSpec.gptq

    bits: tuple[int, ...] = (4,)
    group_size: tuple[int, ...] = (AUTO_GROUP,)
    act_order: tuple[bool, ...] = (True,)
    damp: tuple[float, ...] = (0.01,)


@dataclass(frozen=True)
class AwqSpec(_VariantsSpec):
    """AWQ: 4-bit GEMM, zero point, group 128 where the model's widths allow it (``auto``)."""

    OPTIONS: ClassVar[tuple[Option, ...]] = AWQ_OPTIONS
    LABEL: ClassVar[str] = "AWQ"
    MAKE: ClassVar[Callable[..., QuantSpec]] = QuantSpec.awq

    bits: tuple[int, ...] = (4,)
    group_size: tuple[int, ...] = (AUTO_GROUP,)
    zero_point: tuple[bool, ...] = (True,)
