"""The quantize workflow's runs for one issue: list them (``/status``), cancel them (``/cancel``).

Runs are matched by their ``run-name`` (``quantize #N``, see ``bot.handover.run_title``).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from github import GithubException
from github.Repository import Repository
from github.WorkflowRun import WorkflowRun

from bot.chatops.messages import RunLine

log = logging.getLogger(__name__)

ACTIVE = frozenset({"queued", "in_progress", "waiting", "pending", "requested"})
SCAN_LIMIT = 200  # newest runs looked at; older ones are long finished


@dataclass(frozen=True)
class Cancelled:
    cancelled: list[RunLine]
    failed: list[RunLine]


def _line(run: WorkflowRun) -> RunLine:
    return RunLine(id=run.id, status=run.status, conclusion=run.conclusion, url=run.html_url,
                   created=run.created_at.strftime("%Y-%m-%d %H:%M UTC"))


def issue_runs(repo: Repository, workflow: str, title: str, exclude: int | None = None,
               limit: int = 10) -> list[tuple[WorkflowRun, RunLine]]:
    """Newest first: the runs of ``workflow`` named ``title``, except run ``exclude``."""
    runs = repo.get_workflow(workflow).get_runs()
    found = []
    for run in itertools.islice(runs, SCAN_LIMIT):
        if run.display_title == title and run.id != exclude:
            found.append((run, _line(run)))
            if len(found) >= limit:
                break
    return found


def cancel_active(repo: Repository, workflow: str, title: str,
                  exclude: int | None = None) -> Cancelled:
    """Cancel every queued or running run for the issue (except ``exclude``, this run)."""
    done, failed = [], []
    for run, line in issue_runs(repo, workflow, title, exclude, limit=SCAN_LIMIT):
        if line.status not in ACTIVE:
            continue
        try:
            ok = run.cancel()
        except GithubException as exc:  # 409: it finished meanwhile
            log.warning("cannot cancel run %d: %s", run.id, exc)
            ok = False
        (done if ok else failed).append(line)
    return Cancelled(cancelled=done, failed=failed)
