"""The comment grammar: ``/quantize [options]``, ``/cancel``, ``/status`` (pure).

Only the first line of a comment that starts with ``/`` (outside code fences) is read. A line
that is not one of our commands gives ``None``: the comment is ignored. A line that is ours but
malformed raises :class:`ParseError`, which quotes the offending token.

Options after a method name apply to that method::

    /quantize                                  all GGUF default types, GPTQ and AWQ
    /quantize gguf=Q4_K_M,Q8_0 gptq awq
    /quantize gguf imatrix
    /quantize gptq bits=8 group_size=32 act_order=false damp=0.05 awq zero_point=false
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from runners.errors import QuantbotError
from runners.gguf.types import DEFAULT_TYPES, GGUF_TYPES, parse_types

METHODS: tuple[str, ...] = ("gguf", "gptq", "awq")
GPU_METHODS: tuple[str, ...] = ("gptq", "awq")
GPTQ_BITS: tuple[int, ...] = (2, 3, 4, 8)
GPTQ_GROUP_SIZES: tuple[int, ...] = (32, 64, 128, -1)  # -1: one group per column ("none")
AWQ_BITS: tuple[int, ...] = (4,)
AWQ_GROUP_SIZES: tuple[int, ...] = (32, 64, 128)
MAX_LINE = 1000  # a command line longer than this is refused, not parsed

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_OPTIONS: dict[str, tuple[str, ...]] = {  # option -> the methods it applies to
    "imatrix": ("gguf",),
    "bits": ("gptq", "awq"),
    "group_size": ("gptq", "awq"),
    "act_order": ("gptq",),
    "damp": ("gptq",),
    "zero_point": ("awq",),
}
_USAGE = ("/quantize [gguf[=TYPE,...]] [imatrix] [gptq [bits=N] [group_size=N] "
          "[act_order=true|false] [damp=X]] [awq [group_size=N] [zero_point=true|false]]")


class ParseError(QuantbotError):
    """A command of ours that cannot be understood; ``token`` is the part at fault."""

    def __init__(self, problem: str, fix: str, token: str = "") -> None:
        super().__init__(problem, fix)
        self.token = token


class Kind(StrEnum):
    QUANTIZE = "quantize"
    CANCEL = "cancel"
    STATUS = "status"


@dataclass(frozen=True)
class GptqOptions:
    """GPTQ settings: bits, group size (-1 = none), activation order, dampening."""

    bits: int = 4
    group_size: int = 128
    act_order: bool = True
    damp: float = 0.01

    def __post_init__(self) -> None:
        _require(self.bits in GPTQ_BITS, f"GPTQ bits={self.bits}", GPTQ_BITS)
        _require(self.group_size in GPTQ_GROUP_SIZES, f"GPTQ group_size={self.group_size}",
                 GPTQ_GROUP_SIZES)
        _require(isinstance(self.act_order, bool), f"GPTQ act_order={self.act_order!r}",
                 (True, False))
        if not (isinstance(self.damp, float) and 0.0 < self.damp < 1.0):
            raise QuantbotError(f"GPTQ damp={self.damp!r} is out of range",
                                "use a number between 0 and 1, e.g. damp=0.01")


@dataclass(frozen=True)
class AwqOptions:
    """AWQ settings: 4-bit only; group size and zero point."""

    bits: int = 4
    group_size: int = 128
    zero_point: bool = True

    def __post_init__(self) -> None:
        _require(self.bits in AWQ_BITS, f"AWQ bits={self.bits}", AWQ_BITS)
        _require(self.group_size in AWQ_GROUP_SIZES, f"AWQ group_size={self.group_size}",
                 AWQ_GROUP_SIZES)
        _require(isinstance(self.zero_point, bool), f"AWQ zero_point={self.zero_point!r}",
                 (True, False))


def _require(ok: bool, what: str, allowed: tuple[Any, ...]) -> None:
    if not ok:
        raise QuantbotError(f"{what} is not supported",
                            f"use one of {', '.join(str(a) for a in allowed)}")


@dataclass(frozen=True)
class QuantizePlan:
    """What one ``/quantize`` asks for: methods in canonical order and their settings."""

    methods: tuple[str, ...] = METHODS
    gguf_types: tuple[str, ...] = DEFAULT_TYPES
    imatrix: bool = False
    gptq: GptqOptions = field(default_factory=GptqOptions)
    awq: AwqOptions = field(default_factory=AwqOptions)

    def __post_init__(self) -> None:
        if not self.methods or any(m not in METHODS for m in self.methods):
            raise QuantbotError(f"bad method list {list(self.methods)!r}",
                                f"use some of {', '.join(METHODS)}")
        unknown = [t for t in self.gguf_types if t not in GGUF_TYPES]
        if unknown:
            raise QuantbotError(f"unknown GGUF types {unknown!r}",
                                f"use types from: {', '.join(GGUF_TYPES)}")

    @property
    def run_gguf(self) -> bool:
        return "gguf" in self.methods

    @property
    def gpu_methods(self) -> tuple[str, ...]:
        return tuple(m for m in self.methods if m in GPU_METHODS)

    def to_json(self) -> str:
        """One line of JSON (fits a ``$GITHUB_OUTPUT`` value)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> QuantizePlan:
        """Inverse of :meth:`to_json`; re-validates everything (the text crossed a job boundary)."""
        try:
            data = json.loads(text)
            return cls(
                methods=tuple(data["methods"]), gguf_types=tuple(data["gguf_types"]),
                imatrix=bool(data["imatrix"]), gptq=GptqOptions(**data["gptq"]),
                awq=AwqOptions(**data["awq"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise QuantbotError(f"unreadable quantize plan ({exc})",
                                "pass the `plan` output of `quantbot command plan`") from exc


@dataclass(frozen=True)
class Command:
    """One parsed command; ``plan`` is set for ``/quantize`` only; ``line`` is what was read."""

    kind: Kind
    line: str
    plan: QuantizePlan | None = None


def command_line(text: str) -> str | None:
    """The first line starting with ``/`` outside fenced code blocks, stripped; or ``None``."""
    fenced = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced and line.startswith("/"):
            return line
    return None


def parse(text: str) -> Command | None:
    """Parse a comment body. ``None``: not a command for us. Raises :class:`ParseError`."""
    line = command_line(text)
    if line is None:
        return None
    head, *args = line.split()
    name = head[1:].lower()
    if name not in {k.value for k in Kind}:
        return None  # another bot's command, or none at all
    if len(line) > MAX_LINE:
        raise ParseError(f"the command line is {len(line)} characters long",
                         f"keep it under {MAX_LINE} characters", token=head)
    kind = Kind(name)
    if kind is not Kind.QUANTIZE:
        if args:
            raise ParseError(f"/{name} takes no arguments, got {args[0]!r}",
                             f"write just /{name}", token=args[0])
        return Command(kind=kind, line=line)
    return Command(kind=kind, line=line, plan=_parse_quantize(args))


def _parse_quantize(args: list[str]) -> QuantizePlan:
    methods: list[str] = []
    gguf_spec: str | None = None
    settings: dict[str, dict[str, Any]] = {m: {} for m in METHODS}
    current: str | None = None
    for token in args:
        key, eq, value = token.partition("=")
        key = key.lower()
        if key in METHODS:
            if key in methods:
                raise ParseError(f"{key!r} is given twice (at {token!r})",
                                 f"name each method once: {_USAGE}", token=token)
            if eq and key != "gguf":
                raise ParseError(f"{token!r}: {key} takes no value",
                                 f"write `{key}` and its options after it, e.g. `gptq bits=4`",
                                 token=token)
            if eq:
                gguf_spec = _gguf_types(value, token)
            methods.append(key)
            current = key
        elif key in _OPTIONS:
            owner = _option_owner(key, current, token)
            if key in settings[owner]:
                raise ParseError(f"{key!r} is given twice for {owner} (at {token!r})",
                                 "give each option once", token=token)
            if key == "imatrix" and not eq:
                settings[owner][key] = True
            else:
                if not value:
                    raise ParseError(f"{token!r} has no value", f"write {key}=VALUE", token=token)
                settings[owner][key] = _option_value(owner, key, value, token)
        else:
            close = difflib.get_close_matches(key, [*METHODS, *_OPTIONS], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParseError(f"unknown option {token!r}{hint}", f"use: {_USAGE}", token=token)

    order = [m for m in METHODS if m in methods] or list(METHODS)
    types = tuple(parse_types(gguf_spec)) if gguf_spec else DEFAULT_TYPES
    if "gguf" not in order:
        types = ()
    imatrix = bool(settings["gguf"].get("imatrix", False)) and "gguf" in order
    need = [t for t in types if GGUF_TYPES[t].needs_imatrix]
    if "gguf" in order and need and not imatrix:
        raise ParseError(f"GGUF type {need[0]} needs an importance matrix",
                         "add `imatrix` to the command", token=need[0])
    return QuantizePlan(
        methods=tuple(order), gguf_types=types, imatrix=imatrix,
        gptq=replace(GptqOptions(), **settings["gptq"]),
        awq=replace(AwqOptions(), **settings["awq"]),
    )


def _gguf_types(value: str, token: str) -> str:
    if not value.strip(","):
        raise ParseError(f"{token!r} names no GGUF type", "write e.g. gguf=Q4_K_M,Q8_0",
                         token=token)
    try:
        parse_types(value)
    except QuantbotError as exc:
        raise ParseError(f"in {token!r}: {exc.problem}", exc.fix, token=token) from None
    return value


def _option_owner(key: str, current: str | None, token: str) -> str:
    allowed = _OPTIONS[key]
    if current is None and len(allowed) == 1 and key != "imatrix":
        current = allowed[0]  # unambiguous: act_order/damp -> gptq, zero_point -> awq
    if current is None and key == "imatrix":
        current = "gguf"
    if current not in allowed:
        where = f"after {current}" if current else "before any method"
        raise ParseError(f"{token!r} does not apply {where}",
                         f"put it after {' or '.join(allowed)}, e.g. `{allowed[0]} {token}`",
                         token=token)
    return current


def _option_value(method: str, key: str, value: str, token: str) -> Any:
    low = value.lower()
    if key in ("imatrix", "act_order", "zero_point"):
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ParseError(f"{token!r}: {value!r} is not true or false",
                         f"write {key}=true or {key}=false", token=token)
    if key == "damp":
        try:
            damp = float(value)
        except ValueError:
            damp = math.nan
        if not (0.0 < damp < 1.0):
            raise ParseError(f"{token!r}: damp must be a number between 0 and 1",
                             "write e.g. damp=0.01", token=token)
        return damp
    allowed = {"bits": {"gptq": GPTQ_BITS, "awq": AWQ_BITS},
               "group_size": {"gptq": GPTQ_GROUP_SIZES, "awq": AWQ_GROUP_SIZES}}[key][method]
    number: int | None = -1 if (key == "group_size" and low == "none") else None
    if number is None and re.fullmatch(r"-?[0-9]{1,6}", low):
        number = int(low)
    if number not in allowed:
        shown = ", ".join("none" if a == -1 else str(a) for a in allowed)
        raise ParseError(f"{token!r}: {method.upper()} {key} must be one of {shown}",
                         f"write e.g. {key}={allowed[0]}", token=token)
    return number
