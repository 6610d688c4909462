"""GPTQ and AWQ variants in GPTQModel's terms, checked by the users' options (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from runners.errors import QuantbotError
from runners.options import Option, check_all

Method = Literal["gptq", "awq"]

#: -1: one group per row; 0: "auto", resolved against the model's layer widths before any work
#: (:func:`runners.gptq.groups.resolve`).
_GROUP_NAMES = {-1: "none", 0: "auto"}
AUTO_GROUP = 0

GPTQ_OPTIONS: tuple[Option, ...] = (
    Option("bits", int, "weight bits", choices=(2, 3, 4, 8), many=True, phrase="{}-bit"),
    Option("group_size", int, "weights per scale (auto: the largest of 128, 64, 32 that divides "
           "every quantized layer's input width)", choices=(32, 64, 128, -1, AUTO_GROUP),
           names=_GROUP_NAMES, many=True, phrase="group size {}"),
    Option("act_order", bool, "quantize columns by decreasing activation (desc_act)", many=True,
           phrase="act order {}"),
    Option("damp", float, "dampening of the Hessian diagonal (damp_percent)", bounds=(0.0, 1.0),
           many=True, phrase="damp {}"),
)
#: AWQ's GEMM layout, the one transformers and vLLM load, is 4-bit only.
AWQ_OPTIONS: tuple[Option, ...] = (
    Option("bits", int, "weight bits", choices=(4,), many=True, phrase="{}-bit"),
    Option("group_size", int, "weights per scale (auto: the largest of 128, 64, 32 that divides "
           "every quantized layer's input width)", choices=(32, 64, 128, AUTO_GROUP),
           names=_GROUP_NAMES, many=True, phrase="group size {}"),
    Option("zero_point", bool, "asymmetric quantization with a zero point", many=True,
           phrase="zero point {}"),
)
OPTIONS_OF: dict[str, tuple[Option, ...]] = {"gptq": GPTQ_OPTIONS, "awq": AWQ_OPTIONS}


@dataclass(frozen=True)
class QuantSpec:
    """One GPTQ or AWQ variant, in GPTQModel's terms. Defaults: GPTQ 4-bit, group 128, act-order,
    damp 0.01. Its values are checked by the same options users type (:data:`OPTIONS_OF`)."""

    method: Method = "gptq"
    bits: int = 4
    group_size: int = 128
    desc_act: bool = True  # GPTQ act-order; AWQ never reorders
    damp_percent: float = 0.01
    sym: bool = True  # GPTQ symmetric; AWQ's default zero point means sym=False

    def __post_init__(self) -> None:
        if self.method not in OPTIONS_OF:
            raise QuantbotError(f"unknown method {self.method!r}", "use gptq or awq")
        if self.method == "awq" and self.desc_act:
            raise QuantbotError("AWQ has no act-order", "drop act-order for AWQ variants")
        check_all(OPTIONS_OF[self.method], self.options(), self.method.upper())

    def options(self) -> dict[str, Any]:
        """This variant in the users' vocabulary (one value per option)."""
        if self.method == "gptq":
            return {"bits": self.bits, "group_size": self.group_size, "act_order": self.desc_act,
                    "damp": self.damp_percent}
        return {"bits": self.bits, "group_size": self.group_size, "zero_point": not self.sym}

    @classmethod
    def gptq(cls, bits: int = 4, group_size: int = 128, act_order: bool = True,
             damp: float = 0.01) -> QuantSpec:
        return cls("gptq", bits, group_size, act_order, damp, True)

    @classmethod
    def awq(cls, bits: int = 4, group_size: int = 128, zero_point: bool = True) -> QuantSpec:
        return cls("awq", bits, group_size, False, 0.01, not zero_point)

    @property
    def group_label(self) -> str:
        return _GROUP_NAMES.get(self.group_size, str(self.group_size))

    @property
    def name(self) -> str:
        """Branch-safe variant name, e.g. ``gptq-4bit-128g-actorder`` or ``awq-4bit-128g-zp``."""
        parts = [self.method, f"{self.bits}bit",
                 {-1: "nogroup", AUTO_GROUP: "autog"}.get(self.group_size, f"{self.group_size}g")]
        if self.method == "gptq" and self.desc_act:
            parts.append("actorder")
        if self.method == "gptq" and self.damp_percent != 0.01:
            parts.append(f"damp{self.damp_percent:g}")
        if self.method == "awq" and not self.sym:
            parts.append("zp")
        return "-".join(parts)

    def bits_per_weight(self) -> float:
        """Expected bits per weight: the packed weights plus one 16-bit scale (and packed zero)
        per group; embeddings and lm_head stay 16-bit, which the flat 0.35 approximates for
        mid-size models (4-bit g128 then gives 4.6, as measured on Llama-class 7-8B)."""
        group = {AUTO_GROUP: 128, -1: 4096}.get(self.group_size, self.group_size)
        return round(self.bits + (16 + self.bits) / group + 0.35, 2)

    def params(self) -> dict[str, Any]:
        """What a card shows about the recipe."""
        out: dict[str, Any] = {"bits": self.bits, "group_size": self.group_label}
        if self.method == "gptq":
            out |= {"act_order": self.desc_act, "damp_percent": self.damp_percent,
                    "sym": self.sym}
        else:
            out |= {"zero_point": not self.sym, "version": "gemm"}
        return out
