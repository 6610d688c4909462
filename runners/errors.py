"""Errors a user can fix: each message names the problem and the fix."""

from __future__ import annotations


class QuantbotError(Exception):
    """Bad input or a missing prerequisite; ``str()`` is one line naming problem and fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}. Fix: {fix}")
        self.problem = problem
        self.fix = fix
