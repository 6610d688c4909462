"""Job outputs for GitHub Actions: the ``$GITHUB_OUTPUT`` file format."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path


def format_outputs(values: Mapping[str, str], delimiter: str) -> str:
    """``name<<DELIM`` blocks (pure): safe for any value that does not contain ``delimiter``."""
    chunks = []
    for name, value in values.items():
        if delimiter in value or delimiter in name:
            raise ValueError("the delimiter occurs in an output")
        chunks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(chunks)


def write_outputs(values: Mapping[str, str], path: str | os.PathLike[str] | None = None) -> str:
    """Append ``values`` to ``path`` (default ``$GITHUB_OUTPUT``); returns the text written.

    Without a file (a local run) nothing is written and the text is only returned.
    """
    text = format_outputs(values, f"QUANTBOT_{secrets.token_hex(16)}")
    target = path or os.environ.get("GITHUB_OUTPUT")
    if target:
        with Path(target).open("a", encoding="utf-8") as fh:
            fh.write(text)
    return text
