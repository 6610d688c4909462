"""Untrusted text (model ids, licences, tags, error messages, chat templates) made safe to show (pure).

Anything that comes from the Hub or a tool is written by strangers. Pasted raw into a GitHub issue,
comment or Hub model card it could ping people (``@org/team``), link other issues (``#1``),
inject links, images or HTML, break a table, reorder text with bidi controls (Trojan Source), or,
printed to a GitHub Actions log, run a workflow command (``::add-mask::``, ``::stop-commands::``).
Each helper here returns text that renders as exactly what it was given, and nothing more.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

log = logging.getLogger(__name__)

ELLIPSIS = "\u2026"
WORD_JOINER = "\u2060"  # invisible, not a space: "@\u2060user" shows "@user" but pings no one
CODE_BLOCK_MAX = 60_000

_LINE_BREAKS = "\n\r\u0085\u2028\u2029\x0b\x0c"
#: Control (Cc) and format (Cf) characters are dropped: format characters are invisible and
#: include bidi embeddings/overrides/isolates (Trojan Source), zero-width characters, the BOM and
#: tag characters (hidden text). Categories, not a list, so new Unicode versions are covered.
_INVISIBLE = ("Cc", "Cf")
#: Input read before cleaning, per character of output allowed: bounds work on huge input.
_READ_FACTOR = 8
_SURROGATE = re.compile("[\ud800-\udfff]")
_FOLD = re.compile(f"[{_LINE_BREAKS}\t]+")
_BACKTICKS = re.compile("`+")
_INFO = re.compile(r"[^A-Za-z0-9_+.#-]")
#: Escaped with a backslash wherever they appear: emphasis, code, links, images, tables,
#: headings, strikethrough, math (GitHub and the Hub render $...$), and the backslash itself.
_MD_PUNCT = frozenset("\\`*_{}[]()#!|~$")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
#: Where a word joiner goes: after @ (mentions, team pings, e-mail autolinks), after # before a
#: digit (#123, owner/repo#1), inside GH-123, after the colon of scheme:// and inside www.
_AUTOLINKS = re.compile(r"(?<=@)|(?<=#)(?=\d)|(?i:(?<=\bGH)(?=-\d))|(?<=:)(?=//)|(?i:(?<=\bwww)(?=\.))")
#: Block starters that only matter at the start of a line: lists (-, +, 1. / 1)), setext "=".
_LINE_START = re.compile(r"^(?:([-+=])|(\d{1,9})([.)]))")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def _text(value: object) -> str:
    """Any value as a str without lone surrogates (which cannot be written as UTF-8)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return _SURROGATE.sub("\ufffd", text)


def _bound(text: str, max_len: int) -> str:
    """``text`` cut to ``max_len`` characters, the last of them an ellipsis when cut."""
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, not {max_len}")
    return text if len(text) <= max_len else text[: max_len - 1] + ELLIPSIS


def _drop_invisible(text: str, keep: str = "") -> str:
    """``text`` without control and format characters, except those in ``keep``."""
    return "".join(ch for ch in text if ch in keep or unicodedata.category(ch) not in _INVISIBLE)


def _one_line(value: object, max_len: int) -> str:
    """Line breaks and tabs folded to one space, controls and invisibles dropped, length bounded."""
    text = _text(value)[: max(max_len, 64) * _READ_FACTOR]
    return _bound(_drop_invisible(_FOLD.sub(" ", text)), max_len)


def code_span(text: object, max_len: int = 200, *, table: bool = False) -> str:
    """``text`` as inline code that shows it verbatim, whatever backticks it holds.

    The fence is one backtick longer than the longest run inside; a space pads both sides when
    the text starts or ends with a backtick or a space (CommonMark strips one from each side).
    Newlines fold to spaces and bidi/invisible characters go (code is not exempt from Trojan
    Source). Inside a GFM table cell pass ``table=True``: a ``|`` splits cells even in code, so it
    is escaped as ``\\|``, which GitHub and the Hub show as ``|`` there.
    """
    body = _one_line(text, max_len)
    if table:
        body = body.replace("|", "\\|")
    if not body.strip(" "):
        return "` `" if not body else f"`{body}`"
    longest = max((len(run) for run in _BACKTICKS.findall(body)), default=0)
    fence = "`" * (longest + 1)
    if body[0] in "` " or body[-1] in "` ":
        body = f" {body} "
    return f"{fence}{body}{fence}"


def code_block(text: object, info: str = "", max_len: int = CODE_BLOCK_MAX) -> str:
    """``text`` as a fenced code block that no line inside can close early.

    The fence is backticks, at least three and longer than any backtick run in the text; ``~~~``
    lines cannot close a backtick fence. The info string keeps only ``[A-Za-z0-9_+.#-]`` (a
    backtick there would make the fence invalid). Control and format (bidi, zero-width)
    characters other than tab and newline are dropped, and text over ``max_len`` characters is
    cut with a final ``…`` line. Ends with a newline.
    """
    body = re.sub(r"\r\n?", "\n", _text(text)[: max_len * 2])
    body = _drop_invisible(body, keep="\t\n")
    if len(body) > max_len:
        body = body[: max_len - 2] + "\n" + ELLIPSIS
    longest = max((len(run) for run in _BACKTICKS.findall(body)), default=0)
    fence = "`" * max(3, longest + 1)
    label = _INFO.sub("", _text(info))[:40]
    if body and not body.endswith("\n"):
        body += "\n"
    return f"{fence}{label}\n{body}{fence}\n"


def plain(text: object, max_len: int = 200) -> str:
    """``text`` for ordinary Markdown (issue, comment or model card) that renders as just itself.

    One line, at most ``max_len`` characters of the original (escaping adds more). No mention,
    team ping, ``#123``/``GH-123``/``owner/repo#1`` reference, e-mail or URL autolink (a word
    joiner U+2060 breaks each pattern invisibly), no link, image, emphasis, heading, table cell,
    math or strikethrough (backslash escapes), no raw HTML (``& < > "`` as entities), no control or
    bidi characters.
    """
    line = _one_line(text, max_len).strip(" ")
    line = _AUTOLINKS.sub(WORD_JOINER, line)
    out: list[str] = []
    for ch in line:
        if ch in _HTML:
            out.append(_HTML[ch])
        elif ch in _MD_PUNCT:
            out.append("\\" + ch)
        else:
            out.append(ch)
    escaped = "".join(out)
    start = _LINE_START.match(escaped)
    if start:
        marker = start.group(1)
        escaped = ("\\" + escaped) if marker else f"{start.group(2)}\\{escaped[len(start.group(2)):]}"
    return escaped


def actions_safe(line: object) -> str:
    """``line`` printed to a GitHub Actions log without running a workflow command.

    The runner reads each ``\\n``/``\\r``-separated line, trims leading whitespace and treats
    ``::name ...::`` as a command (and, where unsecure commands are allowed, ``##[name]``
    anywhere). A space between the two colons (``: :``) and after ``##`` stops both, readably.
    """
    lines = re.split(r"\r\n|\r|\n", _text(line))
    safe = []
    for part in lines:
        part = part.replace("##[", "## [")
        body = part.lstrip()
        if body.startswith("::"):
            at = len(part) - len(body)
            part = part[:at] + ": :" + part[at + 2:]
        safe.append(part)
    return "\n".join(safe)


def _new_token() -> str:
    return secrets.token_hex(16)


@contextmanager
def stop_commands(write: Callable[[str], object],
                  token_factory: Callable[[], str] = _new_token) -> Iterator[str]:
    """Stop the Actions runner from reading workflow commands while untrusted output is printed.

    Writes ``::stop-commands::TOKEN`` on entry and ``::TOKEN::`` on exit (also when the block
    raises), one ``write`` call per line without a line terminator (``print`` fits). The token is
    what ends the pause, so it must be unguessable: ``token_factory`` must give 16-128 characters
    of ``[A-Za-z0-9_-]``; yields the token.
    """
    token = token_factory()
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise ValueError("stop-commands token must be 16-128 characters of [A-Za-z0-9_-]")
    write(f"::stop-commands::{token}")
    try:
        yield token
    finally:
        write(f"::{token}::")


def number(value: object, *, what: str) -> float | int:
    """``value`` if it is a real, finite number; otherwise ``ValueError`` naming ``what``.

    Hub metadata is free-form JSON: a "parameter count" may be ``"7B"``, ``true``, ``null`` or
    ``NaN``. ``bool`` is refused although Python counts it as an int. Integers come back as
    ``int``, other reals (``float``, ``Fraction``, ``Decimal``) as ``float``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not a boolean")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real | Decimal):
        try:
            result = float(value)
        except (OverflowError, ValueError) as exc:
            raise ValueError(f"{what} must be a finite number") from exc
        if not math.isfinite(result):
            raise ValueError(f"{what} must be a finite number, not {result}")
        return result
    raise ValueError(f"{what} must be a number, not {type(value).__name__}")
