"""What to make, in the users' words: ``gguf=Q4_K_M,Q8_0 imatrix gptq bits=4,8 awq`` (pure).

One grammar for ``/quantize`` comments and for ``quantbot quantize`` / ``quantbot demo``: method
names from the registry, each followed by its options (``name=value``, lists with commas). The
words become the runners' own spec objects, which check every value; nothing is validated here a
second time. An error names the word at fault (:class:`ParseError`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from bot.methods import METHODS, method
from runners.errors import QuantbotError
from runners.options import Option, OptionError, option_usage
from runners.spec import MethodSpec


class ParseError(QuantbotError):
    """Words that cannot be understood; ``token`` is the word at fault."""

    def __init__(self, problem: str, fix: str, token: str = "") -> None:
        super().__init__(problem, fix)
        self.token = token


def usage(head: str = "/quantize") -> str:
    """The one usage line, from the registry's methods and their options."""
    parts = []
    for m in METHODS.values():
        primary = m.spec_type.PRIMARY
        name = f"{m.name}[={primary.upper()},…]" if primary else m.name
        opts = option_usage(tuple(o for o in m.spec_type.OPTIONS if o.name != primary))
        parts.append(f"[{name}{' ' + opts if opts else ''}]")
    return f"{head} {' '.join(parts)}"


@dataclass(frozen=True)
class QuantizeRequest:
    """Which methods to run and each one's spec, in registry order."""

    specs: dict[str, MethodSpec]

    def __post_init__(self) -> None:
        if not self.specs:
            raise QuantbotError("no method requested", f"name one of {', '.join(METHODS)}")
        for name, spec in self.specs.items():
            if not isinstance(spec, method(name).spec_type):
                raise QuantbotError(f"{name} was given a {type(spec).__name__}",
                                    f"build it with {method(name).spec_type.__name__}")

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def to_dict(self) -> dict[str, Any]:
        return {name: spec.to_dict() for name, spec in self.specs.items()}

    @classmethod
    def from_dict(cls, data: Any) -> QuantizeRequest:
        """Inverse of :meth:`to_dict`; every spec is checked again (it crossed a boundary)."""
        if not isinstance(data, dict):
            raise QuantbotError(f"a request must be an object, got {data!r:.60}",
                                "pass the plan written by `quantbot command plan`")
        specs = {name: method(name).spec_type.from_dict(data[name])
                 for name in METHODS if name in data}
        unknown = sorted(set(data) - set(METHODS))
        if unknown:
            raise QuantbotError(f"unknown method(s) {', '.join(unknown)}",
                                f"use some of {', '.join(METHODS)}")
        return cls(specs)


def _owner_of(key: str, current: str | None, token: str) -> str:
    owners = [m.name for m in METHODS.values() if m.spec_type.option(key)]
    if current is None and len(owners) == 1:
        return owners[0]  # unambiguous: act_order → gptq, imatrix → gguf …
    if current not in owners:
        where = f"after {current}" if current else "before any method"
        raise ParseError(f"{token!r} does not apply {where}",
                         f"put it after {' or '.join(owners)}, e.g. `{owners[0]} {token}`", token)
    return current


def _read(option: Option, value: str | None, label: str, token: str) -> Any:
    try:
        return option.read(value, label)
    except OptionError as exc:
        raise ParseError(f"in {token!r}: {exc.problem}", exc.fix, token) from None


def parse_words(words: list[str], defaults: tuple[str, ...] = tuple(METHODS),
                head: str = "/quantize") -> QuantizeRequest:
    """The request these words make; ``defaults`` are the methods when the words name none."""
    named: list[str] = []
    values: dict[str, dict[str, Any]] = {name: {} for name in METHODS}
    tokens: dict[str, str] = {}  # method name → the word that named it
    current: str | None = None
    for token in words:
        key, eq, value = token.partition("=")
        key = key.lower()
        if key in METHODS:
            spec_type = METHODS[key].spec_type
            if key in named:
                raise ParseError(f"{key!r} is given twice (at {token!r})",
                                 f"name each method once: {usage(head)}", token)
            if eq and spec_type.PRIMARY is None:
                first = spec_type.OPTIONS[0] if spec_type.OPTIONS else None
                raise ParseError(f"{token!r}: {key} takes no value",
                                 f"write `{key}` and its options after it, e.g. `{key} "
                                 f"{first.name}={first.example()}`" if first else
                                 f"write `{key}` alone: {spec_type.LABEL} has no options",
                                 token)
            if eq:
                primary = spec_type.option(spec_type.PRIMARY)  # type: ignore[arg-type]
                assert primary is not None
                if not value.strip(", "):
                    raise ParseError(f"{token!r} names no {spec_type.LABEL} "
                                     f"{primary.name.removesuffix('s')}",
                                     f"write e.g. {key}={primary.example()}", token)
                values[key][primary.name] = _read(primary, value, spec_type.LABEL, token)
            named.append(key)
            tokens[key] = token
            current = key
            continue
        owners = [m for m in METHODS.values() if m.spec_type.option(key)]
        if not owners:
            names = [*METHODS, *{o.name for m in METHODS.values() for o in m.spec_type.OPTIONS}]
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParseError(f"unknown option {token!r}{hint}", f"use: {usage(head)}", token)
        owner = _owner_of(key, current, token)
        option = METHODS[owner].spec_type.option(key)
        assert option is not None
        if key in values[owner]:
            raise ParseError(f"{key!r} is given twice for {owner} (at {token!r})",
                             "give each option once", token)
        if eq and not value:
            raise ParseError(f"{token!r} has no value", f"write {key}=VALUE", token)
        values[owner][key] = _read(option, value if eq else None, METHODS[owner].spec_type.LABEL,
                                   token)
        tokens.setdefault(owner, token)

    chosen = [name for name in METHODS if name in (named or defaults)]
    stray = [name for name in METHODS if values[name] and name not in chosen]
    if stray:
        token = tokens[stray[0]]
        raise ParseError(f"{token!r} applies to {stray[0]}, which this request does not include",
                         f"add `{stray[0]}` to the request, or drop {token!r}", token)
    specs: dict[str, MethodSpec] = {}
    for name in chosen:
        try:
            specs[name] = METHODS[name].spec_type(**values[name])
        except QuantbotError as exc:
            subject = getattr(exc, "subject", "")
            token = subject if subject and any(subject in w for w in words) else tokens.get(name, "")
            raise ParseError(exc.problem, exc.fix, token) from None
    return QuantizeRequest(specs)
