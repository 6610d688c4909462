"""Which lines of a GitHub comment are commands: the ones GitHub shows as ordinary text (pure).

A maintainer who quotes a command (in a code block, an indented block, a block quote, an HTML
block or comment, inline code or a link) is talking *about* it, not issuing it. Regexes cannot tell
these apart reliably (unclosed fences run to the end, fences may be ``~~~~`` or longer, lazy
continuation lines belong to the quote above), so the comment is parsed with markdown-it-py's
CommonMark parser (plus GFM tables) and only paragraph text is read.

Line endings are CommonMark's: ``\\n``, ``\\r\\n`` and ``\\r``. U+2028, U+2029 and U+0085 are
ordinary characters, so ``"text\\u2028/quantize"`` is one line that does not start with ``/``.
"""

from __future__ import annotations

import logging
import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

log = logging.getLogger(__name__)

#: GitHub refuses comments over 65,536 characters; markdown-it-py needs up to ~5 us a character
#: on hostile input (``![`` repeated), so a body beyond that is cut rather than parsed whole.
MAX_BODY = 65_536
#: A command line longer than this is refused with a reply, not parsed (bot.chatops.commands).
MAX_LINE = 1000
#: One marker per candidate line when the paragraph is re-parsed (Supplementary PUA-A).
_MARKER_BASE = 0xF0000
_MARKER_COUNT = 0xFFFE
_MARKERS = re.compile("[\U000f0000-\U000ffffd]")
#: Tables are GFM, not CommonMark; GitHub renders ``/x | y`` over ``--|--`` as a table.
_MD = MarkdownIt("commonmark").enable("table")
#: Containers whose text is not a command even though it is paragraph text inside them.
_QUOTING = {"blockquote_open": "blockquote_close"}


class _MarkerBlindReferences(dict):
    """Link reference definitions looked up as if the re-parse's markers were not there.

    A marker inside a reference link's label (``[ref\\n/x]``) would otherwise stop the label
    matching its definition, turning a link GitHub shows into text we would read as a command.
    """

    def get(self, key: object, default: object = None) -> object:
        return super().get(_MARKERS.sub("", key) if isinstance(key, str) else key, default)


def _normalise(body: str) -> str:
    """The text markdown-it parses: CommonMark line endings, NUL as U+FFFD, bounded length."""
    text = re.sub(r"\r\n?", "\n", body).replace("\0", "\ufffd")
    if len(text) > MAX_BODY:
        # The line that straddles the cut is kept whole when it ends soon after, else cut past
        # MAX_LINE characters and ended with "…": a long command line then reaches the parser,
        # which refuses it with a reply instead of the silence of dropping it. A fragment is never
        # obeyed: it is too long, and its last word, ending in "…", is no word of the grammar.
        end = text.find("\n", MAX_BODY) % (len(text) + 1)  # -1 (no newline): the text's end
        cut = end if 0 <= end <= MAX_BODY + MAX_LINE else MAX_BODY + MAX_LINE + 1
        log.warning("comment of %d characters: reading only its first %d", len(text), cut)
        text = text[:cut] + ("" if cut == end else "\u2026")
    return text


def _first_line_starts_plainly(source_line: str, first: str) -> bool:
    """Whether only spaces, tabs and block markers precede ``first`` (a paragraph's first line).

    markdown-it strips Unicode spaces (U+2000-U+200A, U+2028, U+2029) around a paragraph;
    CommonMark and GitHub strip only spaces and tabs, so ``"\\u2028/quantize"`` shows a separator
    before the slash and is not a command line. ``first`` is the source line's suffix less trailing
    whitespace, so its last occurrence is the paragraph's own text.
    """
    at = source_line.rfind(first)
    if at < 0:
        return False
    before = source_line[:at]
    lead = before[len(before.rstrip()):]
    return all(ch in " \t" for ch in lead)


def _text_lines(inline: Token, env: dict, source_lines: list[str]) -> list[str]:
    """The lines of one paragraph that start, as rendered, with plain (unlinked, uncoded) ``/``."""
    lines = inline.content.split("\n")
    candidates = [i for i, line in enumerate(lines) if line.lstrip(" \t").startswith("/")]
    if not candidates:
        return []
    start = inline.map[0] if inline.map else 0
    if 0 in candidates and not _first_line_starts_plainly(
            source_lines[start] if start < len(source_lines) else "", lines[0].rstrip()):
        candidates.remove(0)
    candidates = [i for i in candidates if i < _MARKER_COUNT]
    if not candidates:
        return []
    # Re-parse the paragraph with a marker before each candidate's slash: a marker that lands in a
    # text token outside any link starts a line GitHub shows as text; one that lands in a code
    # span, inline HTML (a comment spanning lines), a link or an image does not.
    marked = [_MARKERS.sub("\ufffd", line) for line in lines]
    for i in candidates:
        indent = len(marked[i]) - len(marked[i].lstrip(" \t"))
        marked[i] = marked[i][:indent] + chr(_MARKER_BASE + i) + marked[i][indent:]
    found: set[int] = set()
    link_depth = 0
    references = _MarkerBlindReferences(env.get("references", {}))
    for tokens in _MD.parseInline("\n".join(marked), {**env, "references": references}):
        for child in tokens.children or []:
            if child.type == "link_open":
                link_depth += 1
            elif child.type == "link_close":
                link_depth -= 1
            elif child.type == "text" and link_depth == 0:
                for match in _MARKERS.finditer(child.content):
                    if child.content.startswith("/", match.end()):
                        found.add(ord(match.group()) - _MARKER_BASE)
    return [lines[i].strip() for i in sorted(found)]


def command_lines(body: str) -> list[str]:
    """The lines of ``body`` that start with ``/`` and that GitHub renders as paragraph text.

    Excluded: fenced code (backticks or tildes, any fence length, with or without an info string,
    unclosed fences running to the end), indented code, block quotes at any depth (lazy
    continuation lines included), HTML blocks, headings (``/x`` over ``---`` is a heading), tables,
    link reference definitions, and lines whose slash is inside inline code, inline HTML or a link.
    Up to three spaces of indentation are allowed; four or more make indented code.

    Included: list items (``- /quantize`` and ``1. /quantize``). GitHub renders a list item's text
    as ordinary text, and a maintainer typing a command as a bullet means it, so the list marker is
    dropped and the rest is the command line.

    A backslash-escaped or entity-encoded slash (``\\/quantize``, ``&#47;quantize``) is not a
    command: the line does not start with ``/`` as typed. Lines come back stripped, in order.
    """
    if not body:
        return []
    text = _normalise(body)
    env: dict = {}
    tokens = _MD.parse(text, env)
    source_lines = text.split("\n")
    lines: list[str] = []
    quoting = 0
    in_paragraph = False
    for token in tokens:
        if token.type in _QUOTING:
            quoting += 1
        elif token.type in _QUOTING.values():
            quoting -= 1
        elif token.type == "paragraph_open":
            in_paragraph = True
        elif token.type == "paragraph_close":
            in_paragraph = False
        elif token.type == "inline" and in_paragraph and quoting == 0:
            lines.extend(_text_lines(token, env, source_lines))
    return lines


def first_command_line(body: str) -> str | None:
    """The first of :func:`command_lines`, or ``None`` when the comment has no command line."""
    lines = command_lines(body)
    return lines[0] if lines else None
