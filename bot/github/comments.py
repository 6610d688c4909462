"""Posting on an issue thread: comments and reactions, through PyGithub (I/O only).

Objects are lazy, so a comment is one ``POST /repos/{o}/{r}/issues/{n}/comments`` and a reaction
one ``POST /repos/{o}/{r}/issues/comments/{id}/reactions``; nothing is fetched first. A request
GitHub refuses, or that keeps failing after the client's retries, is a one-line
:class:`QuantbotError` (:func:`bot.github.issues.github_call`).
"""

from __future__ import annotations

import logging
from typing import NoReturn

from github import Github

from bot.github.issues import github_call
from runners.errors import QuantbotError

log = logging.getLogger(__name__)

REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})


class IssueThread:
    """One issue of one repository, seen by the bot."""

    def __init__(self, gh: Github, repo: str, issue: int) -> None:
        self.gh = gh.withLazy(True)
        self.name = repo
        self.repo = self.gh.get_repo(repo)
        self.number = issue
        self.issue = self.repo.get_issue(issue)

    def post(self, body: str) -> int:
        """Add a comment; returns its id."""
        comment = github_call(lambda: self.issue.create_comment(body),
                              f"comment on {self.name}#{self.number}")
        log.info("commented on %s#%d (comment %s)", self.name, self.number, comment.id)
        return comment.id

    def react(self, comment_id: int, content: str) -> None:
        """Put a reaction (``+1``, ``eyes``, ...) on a comment of this issue."""
        if content not in REACTIONS:
            raise ValueError(f"unknown reaction {content!r}")
        github_call(lambda: self.issue.get_comment(comment_id).create_reaction(content),
                    f"react to comment {comment_id} on {self.name}#{self.number}")
        log.info("reacted %s to comment %d", content, comment_id)


def github_error(exc: Exception, action: str) -> QuantbotError:
    """The sentence :func:`github_call` gives for ``exc``, a GitHub failure already caught
    (``action`` says what was being done, e.g. "list the runs")."""
    def again() -> NoReturn:
        raise exc

    try:
        github_call(again, action)
    except QuantbotError as error:
        return error
    raise AssertionError("github_call returned after a failure")  # pragma: no cover
