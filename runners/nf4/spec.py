"""What an NF4 request asks for: bitsandbytes' 4-bit NormalFloat settings (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from runners.options import Option
from runners.spec import MethodSpec

NF4_OPTIONS: tuple[Option, ...] = (
    Option("double_quant", bool, "quantize the per-block absmax constants too (saves ~0.4 bit/weight)"),
    Option("compute_dtype", str, "dtype the 4-bit weights are dequantized to for matmuls",
           choices=("bfloat16", "float16")),
)
#: NF4 stores 4 bits per weight plus one absmax per block of 64: an fp32 constant (0.5 bit/weight),
#: or with double quantization an 8-bit one plus an fp32 per 256 blocks (0.127 bit/weight).
BLOCK_SIZE = 64


@dataclass(frozen=True)
class Nf4Variant:
    """The one variant an NF4 request makes."""

    double_quant: bool = True
    compute_dtype: str = "bfloat16"

    @property
    def name(self) -> str:
        return "nf4" + ("-dq" if self.double_quant else "") + f"-{self.compute_dtype}"

    def params(self) -> dict[str, Any]:
        return {"bits": 4, "quant_type": "nf4", "block_size": BLOCK_SIZE,
                "double_quant": self.double_quant, "compute_dtype": self.compute_dtype}

    def bits_per_weight(self) -> float:
        """Quantized weights with their constants; embeddings and lm_head stay 16-bit, which the
        flat 0.35 approximates for mid-size models (as for GPTQ)."""
        constants = (8 / BLOCK_SIZE + 32 / (BLOCK_SIZE * 256)) if self.double_quant else 32 / BLOCK_SIZE
        return round(4 + constants + 0.35, 2)


@dataclass(frozen=True)
class Nf4Spec(MethodSpec):
    """transformers' own 4-bit recipe: NF4, double quantization, bfloat16 compute."""

    OPTIONS: ClassVar[tuple[Option, ...]] = NF4_OPTIONS
    LABEL: ClassVar[str] = "NF4"

    double_quant: bool = True
    compute_dtype: str = "bfloat16"

    def variant(self) -> Nf4Variant:
        return Nf4Variant(self.double_quant, self.compute_dtype)

    def variant_names(self) -> list[str]:
        return [self.variant().name]

    def describe(self) -> str:
        return (f"NF4, blocks of {BLOCK_SIZE}, double quantization "
                f"{'on' if self.double_quant else 'off'}, {self.compute_dtype} compute")

    def bits_per_weight(self) -> dict[str, float]:
        v = self.variant()
        return {v.name: v.bits_per_weight()}
