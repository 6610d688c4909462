"""The hidden marker that names an issue's model: its text and its pattern, said once (pure).

Every candidate issue body carries ``<!-- quantbot:model=OWNER/NAME -->``. The watcher reads it
to know which models already have an issue; the chat commands read it to know which model an
issue is about.
"""

from __future__ import annotations

import re

PREFIX = "quantbot:model="
MARKER_RE = re.compile(r"<!--\s*" + re.escape(PREFIX) + r"([A-Za-z0-9][\w.-]*/[\w.-]+)\s*-->")


def marker(repo_id: str) -> str:
    return f"<!-- {PREFIX}{repo_id} -->"


def model_in_body(body: str | None) -> str | None:
    """The model id of a quantbot issue body, or None."""
    match = MARKER_RE.search(body or "")
    return match.group(1) if match else None
