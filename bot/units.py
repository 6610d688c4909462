"""Sizes and parameter counts in words, as the Hub shows them (decimal units; pure)."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """``4_920_000_000`` → ``"4.92 GB"``; ``512`` → ``"512 B"``."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def human_params(n: int) -> str:
    """``8030261248`` → ``"8.03B"``; ``494032768`` → ``"494M"``."""
    for unit, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)
