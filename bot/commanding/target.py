"""Which model an issue is about (pure).

The watcher's issue body carries a hidden marker ``<!-- quantbot:model OWNER/NAME -->``; issues
written by hand may instead name the repo id in the title (``Quantize OWNER/NAME``).
"""

from __future__ import annotations

import re

from runners.errors import QuantbotError
from runners.source import REPO_ID

MARKER = re.compile(r"<!--\s*quantbot:model[\s=:]+([\w.\-]+/[\w.\-]+)\s*-->")
_IN_TITLE = re.compile(r"(?<![\w.\-/])([A-Za-z0-9][\w.\-]{0,95}/[A-Za-z0-9][\w.\-]{0,95})")


def marker(model: str) -> str:
    """The marker to put in an issue body so the bot knows its model."""
    return f"<!-- quantbot:model {model} -->"


def model_of_issue(title: str, body: str) -> str:
    """The Hub repo id an issue is about; raises :class:`QuantbotError` if it names none."""
    found = MARKER.search(body or "")
    candidates = [found.group(1)] if found else _IN_TITLE.findall(title or "")
    for candidate in candidates:
        if candidate.isascii() and REPO_ID.match(candidate):
            return candidate
    raise QuantbotError("this issue names no model",
                        "comment on an issue opened by `quantbot watch`, or put the model's "
                        "repo id (OWNER/NAME) in the issue title")
