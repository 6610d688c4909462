"""What an FP8 request asks for: llm-compressor's ``FP8_DYNAMIC`` scheme, which has no knobs (pure).

Weights are FP8 E4M3 with one scale per output channel, computed from the weights alone (no
calibration); activations get one scale per token at run time. vLLM runs it with FP8 kernels on
GPUs that have them (Ada, Hopper, Blackwell) and with weight-only FP8 (Marlin) on Ampere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from runners.options import Option
from runners.spec import MethodSpec

#: The llm-compressor preset this method writes (compressed_tensors.quantization.preset_name_to_scheme).
SCHEME = "FP8_DYNAMIC"
#: Share of a mid-size model's weights kept in 16-bit (embeddings, lm_head): the same 0.35 bits
#: per weight the 4-bit methods' estimates add, at 8 bits saved instead of 12.
_SIXTEEN_BIT_SHARE = 0.35 / 12


@dataclass(frozen=True)
class Fp8Variant:
    """The one variant an FP8 request makes."""

    name: ClassVar[str] = "fp8-dynamic"

    def params(self) -> dict[str, Any]:
        return {"bits": 8, "scheme": SCHEME, "weights": "float8_e4m3fn, per output channel",
                "activations": "float8_e4m3fn, dynamic per token"}

    def bits_per_weight(self) -> float:
        """8 bits per quantized weight (the per-channel scales are negligible) plus 16-bit
        embeddings and lm_head."""
        return round(8 + 8 * _SIXTEEN_BIT_SHARE, 2)


@dataclass(frozen=True)
class Fp8Spec(MethodSpec):
    """FP8 weights per channel, FP8 activations per token at run time: the one variant."""

    OPTIONS: ClassVar[tuple[Option, ...]] = ()
    LABEL: ClassVar[str] = "FP8"

    def variant(self) -> Fp8Variant:
        return Fp8Variant()

    def variant_names(self) -> list[str]:
        return [Fp8Variant.name]

    def describe(self) -> str:
        return "FP8 E4M3 weights per channel, dynamic per-token activations (FP8_DYNAMIC)"

    def bits_per_weight(self) -> dict[str, float]:
        return {Fp8Variant.name: Fp8Variant().bits_per_weight()}
