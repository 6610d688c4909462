"""One poll of ``quantbot watch``: list the Hub, decide, open one issue per new candidate."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from bot.config import Config
from bot.github.issue_text import HUB_URL, IssueText, render_issue
from bot.github.issues import IssueTracker, TrackedIssue
from bot.hub.filters import Context, Decision, ModelCandidate, Skipped, decide
from bot.hub.model import read_config
from bot.hub.upstream import MAX_TREE_FILES, UpstreamChange, upstream_changes
from bot.hub.watcher import HubWatcher
from bot.marker import marker
from bot.moe import experts
from bot.templating import render

log = logging.getLogger(__name__)


@dataclass
class PollReport:
    """What one poll found and did."""

    decision: Decision
    to_open: list[IssueText] = field(default_factory=list)  # new candidates (opened unless dry run)
    already_tracked: list[TrackedIssue] = field(default_factory=list)
    opened: list[TrackedIssue] = field(default_factory=list)
    duplicates_closed: list[TrackedIssue] = field(default_factory=list)
    dry_run: bool = False
    github_checked: bool = True
    upstream: list[UpstreamChange] = field(default_factory=list)  # sources that changed
    reminded: list[int] = field(default_factory=list)  # issues told of an upstream change


def with_experts(c: ModelCandidate, watcher: HubWatcher, cfg: Config) -> ModelCandidate:
    """The candidate with its MoE total against active parameters, from its config.json (the
    listing's config lacks the expert fields); unchanged for a dense model or an unreadable
    config, so one model's config never stops a poll."""
    found = experts(read_config(watcher.api, c.repo_id, None, cfg.hub), c.params)
    return dataclasses.replace(c, experts=found) if found else c


def poll(cfg: Config, watcher: HubWatcher, tracker: IssueTracker | None, *,
         dry_run: bool = False) -> PollReport:
    """List trending models and our repos (Hub), decide, then dedupe against GitHub and open.

    Requests: Hub ``GET /api/models`` (trending, expanded) + ``GET /api/models?author=NS``, then
    ``config.json`` of each candidate without an issue yet (its MoE shape: a HEAD and a GET);
    GitHub one issue listing, then per new candidate one ``POST …/issues``, and one more listing
    afterwards if anything was opened (the race check). A dry run stops before any write; without
    a tracker (no repository configured) it cannot say which candidates already have an issue.
    """
    models, malformed = watcher.trending()
    own = watcher.own_repos()
    changes = (upstream_changes(watcher.api, watcher.published, watcher.bounds(MAX_TREE_FILES))
               if watcher.published else [])
    ctx = Context(namespace=cfg.hub.namespace, own_repos=own, methods=cfg.quant.methods,
                  runners=cfg.runners)
    decided = decide(models, cfg.filters, ctx)
    decision = Decision(decided.candidates, (*malformed, *decided.skipped))
    report = PollReport(decision=decision, dry_run=dry_run, github_checked=tracker is not None,
                        upstream=changes)
    if tracker is None:
        report.to_open = [render_issue(with_experts(c, watcher, cfg), cfg)
                          for c in decision.candidates]
        return report

    found = tracker.tracked()
    fresh: list[IssueText] = []
    for c in decision.candidates:
        if c.repo_id in found:
            report.already_tracked.append(found[c.repo_id][0])
        else:
            fresh.append(render_issue(with_experts(c, watcher, cfg), cfg))
    report.to_open = fresh
    if dry_run:
        return report

    report.duplicates_closed += tracker.close_duplicates(found)  # leftovers of earlier races
    for change in changes:
        report.reminded += _remind(tracker, found, change, cfg)
    for text in fresh:
        report.opened.append(tracker.open(text))
    if report.opened:
        again = tracker.tracked()
        report.duplicates_closed += tracker.close_duplicates(
            again, models=[t.model_id for t in report.opened])
    return report


def _remind(tracker: IssueTracker, found: dict[str, list[TrackedIssue]], change: UpstreamChange,
            cfg: Config) -> list[int]:
    """Tell the model's issue (or a new one) that its source changed, once per new commit."""
    body = render("comment_upstream.md.j2", change=change, hub_url=HUB_URL)
    issues = found.get(change.source)
    if issues:
        number = issues[0].number
        return [number] if tracker.comment_once(number, body, change.marker) else []
    title = f"Quantize {change.source} again: its source changed"
    opened = tracker.open(IssueText(change.source, title, f"{marker(change.source)}\n{body}",
                                    (cfg.github.candidate_label,)))
    return [opened.number]


def skipped_lines(skipped: tuple[Skipped, ...]) -> list[str]:
    return [f"{s.repo_id}: {s.reason}" for s in skipped]
