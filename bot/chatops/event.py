"""The ``issue_comment`` webhook payload, read from ``$GITHUB_EVENT_PATH`` into plain data (pure).

Untrusted text (comment body, issue title and body) only ever travels inside this object; it is
never put on a command line or into a shell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.errors import QuantbotError


@dataclass(frozen=True)
class CommentEvent:
    """What quantbot needs from one ``issue_comment`` event."""

    action: str
    repo: str  # OWNER/NAME
    issue_number: int
    issue_title: str
    issue_body: str
    issue_author: str  # who opened the issue: its hidden marker is trusted only from the bot
    is_pull_request: bool
    comment_id: int
    comment_body: str
    author: str
    author_type: str  # "User" or "Bot"
    author_association: str  # OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...


def event_from_dict(data: dict[str, Any]) -> CommentEvent:
    """Pick the fields out of a decoded payload; raises :class:`QuantbotError` if it is not one."""
    try:
        issue, comment = data["issue"], data["comment"]
        user = comment["user"]
        return CommentEvent(
            action=str(data.get("action", "")),
            repo=str(data["repository"]["full_name"]),
            issue_number=int(issue["number"]),
            issue_title=str(issue.get("title") or ""),
            issue_body=str(issue.get("body") or ""),
            issue_author=str((issue.get("user") or {}).get("login") or ""),
            is_pull_request=bool(issue.get("pull_request")),
            comment_id=int(comment["id"]),
            comment_body=str(comment.get("body") or ""),
            author=str(user["login"]),
            author_type=str(user.get("type") or "User"),
            author_association=str(comment.get("author_association") or "NONE").upper(),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise QuantbotError(f"not an issue_comment event payload (missing {exc})",
                            "pass $GITHUB_EVENT_PATH of a workflow run on: issue_comment") from exc


def load_event(path: Path) -> CommentEvent:
    """Read and decode the event file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QuantbotError(f"cannot read the event file {path} ({exc})",
                            "pass --event \"$GITHUB_EVENT_PATH\"") from exc
    if not isinstance(data, dict):
        raise QuantbotError(f"{path} does not hold a JSON object", "pass $GITHUB_EVENT_PATH")
    return event_from_dict(data)
