"""The comment grammar: ``/quantize [words]``, ``/cancel``, ``/status`` (pure).

Only the first line of a comment that starts with ``/`` and that GitHub shows as ordinary text
is read (never one inside code, a quote or HTML). A line
that is not one of our commands gives ``None``: the comment is ignored. A line that is ours but
malformed raises :class:`ParseError`, which quotes the offending word. The words after
``/quantize`` are the one request grammar of :mod:`bot.request`::

    /quantize                                  every method with its defaults
    /quantize gguf=Q4_K_M,Q8_0 gptq awq
    /quantize gguf imatrix
    /quantize gptq bits=8 group_size=32 act_order=false damp=0.05 awq zero_point=false
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.chatops.markdown import MAX_LINE, first_command_line
from bot.request import ParseError, QuantizeRequest, parse_words


class Kind(StrEnum):
    QUANTIZE = "quantize"
    CANCEL = "cancel"
    STATUS = "status"


@dataclass(frozen=True)
class Command:
    """One parsed command; ``request`` is set for ``/quantize`` only; ``line`` is what was read."""

    kind: Kind
    line: str
    request: QuantizeRequest | None = None


def command_line(text: str) -> str | None:
    """The first line starting with ``/`` that GitHub renders as ordinary text (not code, not a
    quote, not HTML: :mod:`bot.chatops.markdown`), stripped; or ``None``."""
    return first_command_line(text)


def parse(text: str, defaults: tuple[str, ...] | None = None) -> Command | None:
    """Parse a comment body. ``None``: not a command for us. Raises :class:`ParseError`.

    ``defaults``: the methods a bare ``/quantize`` makes (the configuration's; every method).
    """
    line = command_line(text)
    if line is None:
        return None
    head, *args = line.split()
    name = head[1:].lower()
    if name not in {k.value for k in Kind}:
        return None  # another bot's command, or none at all
    if len(line) > MAX_LINE:
        raise ParseError(f"the command line is more than {MAX_LINE} characters long",
                         f"keep it under {MAX_LINE} characters", token=head)
    kind = Kind(name)
    if kind is not Kind.QUANTIZE:
        if args:
            raise ParseError(f"/{name} takes no arguments, got {args[0]!r}",
                             f"write just /{name}", token=args[0])
        return Command(kind=kind, line=line)
    request = parse_words(args, defaults) if defaults else parse_words(args)
    return Command(kind=kind, line=line, request=request)
