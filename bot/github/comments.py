"""Posting on an issue thread: comments and reactions, through PyGithub (I/O only).

Objects are lazy, so a comment is one ``POST /repos/{o}/{r}/issues/{n}/comments`` and a reaction
one ``POST /repos/{o}/{r}/issues/comments/{id}/reactions``; nothing is fetched first.
"""

from __future__ import annotations

import logging

from github import Github

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
        comment = self.issue.create_comment(body)
        log.info("commented on %s#%d (comment %s)", self.name, self.number, comment.id)
        return comment.id

    def react(self, comment_id: int, content: str) -> None:
        """Put a reaction (``+1``, ``eyes``, ...) on a comment of this issue."""
        if content not in REACTIONS:
            raise ValueError(f"unknown reaction {content!r}")
        self.issue.get_comment(comment_id).create_reaction(content)
        log.info("reacted %s to comment %d", content, comment_id)
