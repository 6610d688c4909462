"""What a user asks of one method: the base of every method's spec (pure).

A spec's fields are exactly its options (:mod:`runners.options`), so the chat grammar, the
command line and the JSON that crosses job boundaries all build it the same way, and its
``__post_init__`` checks every value with the option's own check, whoever built it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

from runners.errors import QuantbotError
from runners.options import Option, check_all


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """Base class: subclasses are frozen dataclasses whose fields are their ``OPTIONS``."""

    OPTIONS: ClassVar[tuple[Option, ...]] = ()
    #: Shown in messages (``GPTQ bits=5 is not allowed``).
    LABEL: ClassVar[str] = ""
    #: The option ``METHOD=VALUE`` sets (``gguf=Q4_K_M`` → ``types``); None: no value allowed.
    PRIMARY: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        check_all(self.OPTIONS, self.to_dict(tuples=True), self.LABEL)
        self.validate()

    def validate(self) -> None:
        """Rules across options (override)."""

    @classmethod
    def option(cls, name: str) -> Option | None:
        return next((o for o in cls.OPTIONS if o.name == name), None)

    def to_dict(self, tuples: bool = False) -> dict[str, Any]:
        """Plain JSON-able values (lists for multi-valued options)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value if tuples or not isinstance(value, tuple) else list(value)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Inverse of :meth:`to_dict`; everything is checked again (it crossed a boundary)."""
        if not isinstance(data, dict):
            raise QuantbotError(f"a {cls.LABEL} spec must be an object, got {data!r:.60}",
                                "pass the plan written by `quantbot command plan`")
        names = {o.name: o for o in cls.OPTIONS}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise QuantbotError(f"unknown {cls.LABEL} option(s) {', '.join(unknown)}",
                                f"use only: {', '.join(names)}")
        values = {k: (tuple(v) if isinstance(v, list) else (v,)) if names[k].many else v
                  for k, v in data.items()}
        return cls(**values)

    def variant_names(self) -> list[str]:
        """The variants this spec makes, by the names they are published under (override)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for a plan comment (override)."""
        raise NotImplementedError

    def bits_per_weight(self) -> dict[str, float]:
        """Expected whole-file bits per weight of each variant, for size estimates (override)."""
        raise NotImplementedError
