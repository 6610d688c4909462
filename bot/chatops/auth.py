"""Who may command the bot: a pure screen of the event, then one API check of the permission.

Ignored outright (no reply): edited or deleted comments, comments on pull requests, and the
bot's own comments. Refused (with a reply): anyone whose ``author_association`` is not OWNER,
MEMBER or COLLABORATOR, and anyone whose repository permission is below write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from github import GithubException
from github.Repository import Repository

from bot.chatops.event import CommentEvent
from bot.github.issues import github_call

log = logging.getLogger(__name__)

TRUSTED_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
WRITE_PERMISSIONS = frozenset({"write", "maintain", "admin"})


class Verdict(StrEnum):
    IGNORE = "ignore"  # not for us: say nothing
    REFUSE = "refuse"  # a command from someone who may not give it
    CHECK = "check"  # trusted association: ask the API for the permission
    ALLOW = "allow"


@dataclass(frozen=True)
class Decision:
    """The verdict and why (the reason is logged, and shown in refusals)."""

    verdict: Verdict
    reason: str


def screen(event: CommentEvent, bot_login: str | None = None) -> Decision:
    """Decide from the payload alone (pure)."""
    if event.action != "created":
        return Decision(Verdict.IGNORE, f"comment was {event.action}, not created")
    if event.is_pull_request:
        return Decision(Verdict.IGNORE, "comment is on a pull request")
    login = event.author.lower()
    if event.author_type.lower() == "bot" or login.endswith("[bot]") or (
        bot_login and login == bot_login.lower().strip()
    ):
        return Decision(Verdict.IGNORE, f"comment is by a bot ({event.author})")
    if event.author_association not in TRUSTED_ASSOCIATIONS:
        return Decision(Verdict.REFUSE, f"@{event.author} is not a collaborator of {event.repo} "
                                        f"(association {event.author_association})")
    return Decision(Verdict.CHECK, f"{event.author_association} needs write permission")


def decide_permission(author: str, permission: str | None, role: str | None = None) -> Decision:
    """Allow only write, maintain or admin (pure). ``role`` is the API's ``role_name``."""
    granted = {p.lower() for p in (permission, role) if p}
    if granted & WRITE_PERMISSIONS:
        return Decision(Verdict.ALLOW, f"@{author} has {'/'.join(sorted(granted))} permission")
    shown = "/".join(sorted(granted)) or "no"
    return Decision(Verdict.REFUSE, f"@{author} has {shown} permission here "
                                    "(write, maintain or admin is needed)")


def fetch_permission(repo: Repository, author: str) -> str | None:
    """The ``permission`` of ``GET /repos/{o}/{r}/collaborators/{user}/permission``.

    GitHub reports maintain as write and triage as read there. A 404 (not a collaborator)
    gives ``None``; any other failure, after the client's retries, is a one-line
    :class:`QuantbotError`: nobody is allowed on a permission we could not read.
    """
    def ask() -> str | None:
        try:
            return repo.get_collaborator_permission(author)
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise

    return github_call(ask, f"check @{author}'s permission")


def confirm(event: CommentEvent, repo: Repository) -> Decision:
    """After :func:`screen` said CHECK: the permission API decides (one request)."""
    decision = decide_permission(event.author, fetch_permission(repo, event.author))
    log.info("%s: %s", decision.verdict, decision.reason)
    return decision
