"""Sizes and parameter counts: in words as the Hub shows them (decimal units), and read back (pure)."""

from __future__ import annotations

import re
from typing import Any

from runners.errors import QuantbotError


def human_bytes(n: int) -> str:
    """``4_920_000_000`` → ``"4.92 GB"``; ``512`` → ``"512 B"``."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def human_gib(n: int) -> str:
    """Memory as GPUs are sold: ``25_769_803_776`` → ``"24.0 GiB"``."""
    return f"{n / 2**30:.1f} GiB"


def human_params(n: int) -> str:
    """``8030261248`` → ``"8.03B"``; ``494032768`` → ``"494M"``."""
    for unit, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtb]?)(i?b?)?\s*$", re.IGNORECASE)
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}
_SUFFIX_BIN = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_count(value: Any, key: str) -> int:
    """``7_000_000_000``, ``"7B"``, ``"500M"``, ``"50GB"``, ``"4GiB"`` → an int (B = billion)."""
    if isinstance(value, bool):
        raise QuantbotError(f"{key} must be a number, got {value!r}",
                            'write e.g. 7000000000 or "7B"')
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    match = _SIZE_RE.match(str(value))
    if not match:
        raise QuantbotError(f"{key} = {value!r} is not a count",
                            'write an integer or a number with K/M/B/T (or KB/MB/GB/GiB)')
    number, suffix, binary = match.group(1), match.group(2).lower(), (match.group(3) or "").lower()
    binary_unit = binary.startswith("i") and suffix in _SUFFIX_BIN
    scale = _SUFFIX_BIN[suffix] if binary_unit else _SUFFIX[suffix]
    return int(float(number) * scale)
