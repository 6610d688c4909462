"""The one vocabulary of method options (pure).

An :class:`Option` is a name a user types (``bits``, ``group_size``, ``imatrix`` …), how its text
becomes a value and which values are allowed. The same options are read from a ``/quantize``
comment and from ``quantbot quantize``'s words, and each method's spec validates its values with
the same :meth:`Option.check`, so a value is checked in exactly one place whichever way it came.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from runners.errors import QuantbotError

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
#: Numbers as users type them in ASCII: Python's int() and float() also take other scripts'
#: digits (full-width, Arabic-Indic …), underscores (``1_0``) and words (``inf``), which a plan would then
#: show as something the user never wrote.
_INT = re.compile(r"-?[0-9]{1,7}")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")


class OptionError(QuantbotError):
    """A value a method does not accept; ``subject`` is the text at fault (an option's name or a
    value), so a parser can point at the token the user typed."""

    def __init__(self, problem: str, fix: str, subject: str = "") -> None:
        super().__init__(problem, fix)
        self.subject = subject


@dataclass(frozen=True)
class Option:
    """One ``name=value`` setting of a method.

    ``kind`` is ``bool``, ``int``, ``float`` or ``str``. ``choices`` lists the allowed values (none:
    any of the kind, within ``bounds`` for numbers, exclusive). ``names`` shows values in words
    (``-1`` → ``none``) and reads those words back. ``many``: a comma-separated list is accepted,
    one variant per value. ``flag``: the bare word (``imatrix``) means true.
    """

    name: str
    kind: type
    help: str
    choices: tuple[Any, ...] = ()
    bounds: tuple[float, float] | None = None
    names: Mapping[Any, str] | None = None
    many: bool = False
    flag: bool = False
    normalize: Callable[[str], str] | None = None
    phrase: str = ""  # how a plan describes a value, e.g. "{}-bit"; default "name value"

    def describe(self, value: Any) -> str:
        shown = ("on" if value else "off") if isinstance(value, bool) else self.show(value)
        return self.phrase.format(shown) if self.phrase else f"{self.name} {shown}"

    def show(self, value: Any) -> str:
        if self.names and isinstance(value, Hashable) and value in self.names:
            return self.names[value]
        if isinstance(value, bool):
            return "true" if value else "false"
        return format(value, "g") if isinstance(value, float) else str(value)

    def allowed(self) -> str:
        if self.kind is bool:
            return "true or false"
        if self.choices:
            return ", ".join(self.show(c) for c in self.choices)
        if self.bounds:
            return f"a number between {self.bounds[0]:g} and {self.bounds[1]:g}"
        return f"a {self.kind.__name__}"

    def check(self, value: Any, owner: str) -> Any:
        """``value`` if allowed, else :class:`OptionError` naming ``owner`` (e.g. ``GPTQ``)."""
        ok = isinstance(value, self.kind) and (self.kind is not int or not isinstance(value, bool))
        if ok and self.choices:
            ok = value in self.choices
        if ok and self.bounds:
            ok = math.isfinite(value) and self.bounds[0] < value < self.bounds[1]
        if not ok:
            raise OptionError(f"{owner} {self.name} must be {self._must()}, not "
                              f"{self.show(value)}",
                              f"write e.g. {self.name}={self.example()}", self.name)
        return value

    def _must(self) -> str:
        return f"one of {self.allowed()}" if self.choices else self.allowed()

    def example(self) -> str:
        if self.kind is bool:
            return "true"
        if self.choices:
            return self.show(self.choices[0])
        if self.bounds:
            return "0.01" if self.kind is float else str(int(self.bounds[0]) + 1)
        return "VALUE"

    def read_one(self, text: str, owner: str) -> Any:
        """One value from its text, checked."""
        word = text.strip()
        if self.normalize:
            word = self.normalize(word)
        low = word.lower()
        if self.names:
            for value, name in self.names.items():
                if low == name.lower():
                    return self.check(value, owner)
        value: Any
        if self.kind is bool:
            if low not in TRUE_WORDS + FALSE_WORDS:
                raise OptionError(f"{self.name}={text!r} is not true or false",
                                  f"write {self.name}=true or {self.name}=false", self.name)
            value = low in TRUE_WORDS
        elif self.kind in (int, float):
            pattern = _INT if self.kind is int else _FLOAT
            if not pattern.fullmatch(low):
                raise OptionError(f"{owner} {self.name} must be {self._must()}, written with the "
                                  f"ASCII digits 0-9, not {text.strip()[:40]!r}",
                                  f"write e.g. {self.name}={self.example()}", self.name)
            value = self.kind(low)
        else:
            value = word
            if self.choices and word not in self.choices:
                close = difflib.get_close_matches(word, [str(c) for c in self.choices], n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise OptionError(f"unknown {owner} {self.name.removesuffix('s')} {word!r}{hint}",
                                  f"use {self.name} from: {self.allowed()}", self.name)
        return self.check(value, owner)

    def read(self, text: str | None, owner: str) -> tuple[Any, ...] | Any:
        """The value(s) of ``name=text``; ``text`` None means the bare word (flags only)."""
        if text is None:
            if not self.flag:
                raise OptionError(f"{self.name} needs a value", f"write {self.name}=VALUE", self.name)
            return True
        if not text.strip(", "):
            raise OptionError(f"{self.name}= has no value", f"write {self.name}=VALUE", self.name)
        if not self.many:
            return self.read_one(text, owner)
        values: list[Any] = []
        for part in text.split(","):
            if part.strip():
                value = self.read_one(part, owner)
                if value not in values:
                    values.append(value)
        return tuple(values)


def check_all(options: tuple[Option, ...], values: Mapping[str, Any], owner: str) -> None:
    """Check every value a spec holds against its option (lists item by item)."""
    by_name = {o.name: o for o in options}
    for name, value in values.items():
        option = by_name[name]
        for item in (value if option.many and isinstance(value, tuple) else (value,)):
            option.check(item, owner)


def option_usage(options: tuple[Option, ...]) -> str:
    """``[bits=2|3|4|8] [imatrix]``: how options read in a usage line."""
    parts = []
    for o in options:
        if o.flag:
            parts.append(f"[{o.name}]")
        elif o.kind is bool:
            parts.append(f"[{o.name}=true|false]")
        elif o.choices and len(o.choices) <= 6:
            parts.append(f"[{o.name}={'|'.join(o.show(c) for c in o.choices)}]")
        else:
            parts.append(f"[{o.name}={o.example()}{',…' if o.many else ''}]")
    return " ".join(parts)
