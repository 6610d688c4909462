"""Candidate issues on GitHub: find the ones quantbot opened, open new ones, close raced duplicates.

The dedupe key lives on GitHub, not in a local file: every candidate issue carries the
``candidate`` label and a hidden ``<!-- quantbot:model=OWNER/NAME -->`` marker in its body.
One listing of the labelled issues (open *and* closed, ``GET /repos/R/issues?labels=…&state=all``,
100 per page; not the search API, whose index lags behind new issues) tells which models already
have an issue, so a crash anywhere leaves nothing to reconcile locally: a rerun lists again.

Race safety: two polls running at once can both miss each other and both open an issue. Issue
numbers only grow, so whoever opened an issue lists again afterwards and, for each model with
more than one issue, keeps the lowest number and closes the others with a "duplicate of #N"
comment. The run that opened the later issue always sees the earlier one (it was created first),
so one of the racers always cleans up; closing is idempotent, so both may. A POST retried after
a lost response (GithubRetry retries POST on 5xx) is a race of a run with itself, handled the same
way. Every poll also repairs leftovers from its first listing, e.g. after a crash between the
comment and the close. Do not remove the candidate label from these issues: it is the index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import requests
from github import Github, GithubException
from github.Issue import Issue

from bot.github.issue_text import IssueText
from bot.marker import model_in_body
from runners.errors import QuantbotError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class TrackedIssue:
    """One quantbot candidate issue found on GitHub."""

    number: int
    model_id: str
    state: str  # "open" or "closed"
    url: str


def _rate_limited(exc: GithubException) -> bool:
    """A 403 that is a rate limit (GitHub's headers or message say so), not a refusal."""
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    message = str(exc.data.get("message", "") if isinstance(exc.data, dict) else exc.data)
    return headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower()


def github_call(fn: Callable[[], T], action: str) -> T:
    """Run one PyGithub call (it already retries rate limits and 5xx, bounded, with backoff);
    turn whatever is left into a one-line :class:`QuantbotError`."""
    try:
        return fn()
    except QuantbotError:
        raise
    except GithubException as exc:
        status = exc.status
        if status in (401, 404) or (status == 403 and not _rate_limited(exc)):
            raise QuantbotError(f"GitHub refused to {action} (HTTP {status})",
                                "give GITHUB_TOKEN the permission this needs on the repository "
                                "(issues: write), and check github.repo") from exc
        if status in (403, 429) or status >= 500:
            raise QuantbotError(f"GitHub kept failing to {action} (HTTP {status}) after retries",
                                "wait for the rate limit to reset and rerun; nothing is lost, "
                                "a rerun finds what was already done") from exc
        raise QuantbotError(f"GitHub answered HTTP {status} to {action}",
                            "check the repository settings and labels") from exc
    except requests.exceptions.RetryError as exc:
        raise QuantbotError(f"GitHub kept failing to {action} after retries",
                            "wait and rerun; a rerun finds what was already opened") from exc
    except requests.exceptions.RequestException as exc:
        raise QuantbotError(f"cannot reach GitHub to {action} ({type(exc).__name__})",
                            "check the network or GITHUB_API_URL, then rerun") from exc
    except (TypeError, KeyError, ValueError, AttributeError, AssertionError) as exc:
        raise QuantbotError(f"GitHub answered {action} with a malformed response ({exc!s:.120})",
                            "rerun later; if it persists, check GITHUB_API_URL") from exc


class IssueTracker:
    """The candidate issues of one repository."""

    def __init__(self, gh: Github, repo: str, label: str) -> None:
        self._repo = gh.withLazy(True).get_repo(repo)  # lazy: no GET /repos/R request
        self.repo = repo
        self.label = label
        self._issues: dict[int, Issue] = {}  # PyGithub objects seen, to act on them without a GET

    def _as_tracked(self, issue: Issue) -> TrackedIssue | None:
        # PyGithub wraps whatever the listing holds; a non-object item would only fail later, on
        # an attribute that triggers a GET, so check the wrapped JSON itself.
        raw = getattr(issue, "_rawData", None)
        if not isinstance(raw, dict):
            raise ValueError(f"a listed issue is not an object: {raw!r:.60}")
        # Pull requests show up in the issue listing too. Read only fields every listed issue
        # carries: a missing one (like `pull_request` on plain issues) costs a GET per issue.
        if "/pull/" in (issue.html_url or ""):
            return None
        number = issue.number
        if not isinstance(number, int):
            raise ValueError(f"an issue without a number: {number!r}")
        model = model_in_body(issue.body)
        if model is None:
            return None
        self._issues[number] = issue
        return TrackedIssue(number=number, model_id=model, state=issue.state, url=issue.html_url)

    def tracked(self) -> dict[str, list[TrackedIssue]]:
        """Model id → its candidate issues, lowest number first. One paged listing."""
        def run() -> dict[str, list[TrackedIssue]]:
            found: dict[str, list[TrackedIssue]] = {}
            listing = self._repo.get_issues(state="all", labels=[self.label],
                                            sort="created", direction="asc")
            for issue in listing:
                t = self._as_tracked(issue)
                if t is not None:
                    found.setdefault(t.model_id, []).append(t)
            for issues in found.values():
                issues.sort(key=lambda t: t.number)
            return found

        found = github_call(run, f"list the {self.label!r} issues of {self.repo}")
        log.info("%s: %d models already have a candidate issue", self.repo, len(found))
        return found

    def open(self, text: IssueText) -> TrackedIssue:
        """``POST /repos/R/issues``: title, body and labels in one request (all or nothing)."""
        def run() -> TrackedIssue:
            issue = self._repo.create_issue(title=text.title, body=text.body,
                                            labels=list(text.labels))
            tracked = self._as_tracked(issue)
            if tracked is None or tracked.model_id != text.model_id:
                raise ValueError("the created issue does not carry its marker")
            return tracked

        tracked = github_call(run, f"open an issue for {text.model_id}")
        log.info("opened %s#%d for %s", self.repo, tracked.number, text.model_id)
        return tracked

    def comment_once(self, number: int, body: str, marker: str) -> bool:
        """Comment on issue ``number`` unless a comment there already carries ``marker``
        (``GET …/comments``, then one ``POST`` if needed). True when it commented."""
        def run() -> bool:
            issue = self._issues.get(number) or self._repo.get_issue(number)
            if any(marker in (c.body or "") for c in issue.get_comments()):
                return False
            issue.create_comment(body)
            return True

        posted = github_call(run, f"comment on #{number}")
        log.info("%s#%d: %s", self.repo, number, "commented" if posted else "already told")
        return posted

    def close_duplicates(self, found: dict[str, list[TrackedIssue]],
                         models: Iterable[str] | None = None) -> list[TrackedIssue]:
        """For each model with several issues keep the lowest number; comment on and close the
        other open ones (``POST …/comments`` + ``PATCH …/issues/N`` each). Returns those closed."""
        closed: list[TrackedIssue] = []
        wanted = set(models) if models is not None else None
        for model, issues in found.items():
            if (wanted is not None and model not in wanted) or len(issues) < 2:
                continue
            keep = issues[0]
            for dup in issues[1:]:
                if dup.state != "open":
                    continue
                github_call(lambda d=dup, k=keep: self._close(d, k),
                            f"close duplicate issue #{dup.number}")
                log.warning("closed %s#%d: duplicate of #%d (%s)", self.repo, dup.number,
                            keep.number, model)
                closed.append(dup)
        return closed

    def _close(self, dup: TrackedIssue, keep: TrackedIssue) -> None:
        issue = self._issues.get(dup.number) or self._repo.get_issue(dup.number)
        issue.create_comment(f"Duplicate of #{keep.number} (two quantbot polls raced); closing.")
        issue.edit(state="closed", state_reason="not_planned")
