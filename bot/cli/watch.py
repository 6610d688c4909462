"""``quantbot watch``: poll the Hub for trending models and open one issue per new candidate."""

from __future__ import annotations

import logging
import time

import click

from bot.config import Config, load_config
from bot.github.client import connect
from bot.github.issues import IssueTracker
from bot.hub.client import hub_api
from bot.hub.poll import PollReport, poll, skipped_lines
from bot.hub.watcher import HubWatcher
from runners.errors import QuantbotError

log = logging.getLogger(__name__)


def _echo_report(report: PollReport) -> None:
    d = report.decision
    verb = "would open" if report.dry_run else "to open"
    click.echo(f"{len(d.candidates)} candidate(s), {len(d.skipped)} skipped")
    for t in report.already_tracked:
        click.echo(f"  already tracked: {t.model_id} -> #{t.number} ({t.state})")
    if not report.github_checked:
        click.echo("  (no GitHub repository configured: existing issues not checked)")
    for text in report.to_open:
        click.echo(f"  {verb}: {text.title}  [labels: {', '.join(text.labels)}]")
    for t in report.opened:
        click.echo(f"  opened: #{t.number} {t.model_id} {t.url}")
    for t in report.duplicates_closed:
        click.echo(f"  closed duplicate: #{t.number} ({t.model_id})")
    for change in report.upstream:
        click.echo(f"  source changed: {change.source} {change.old_revision[:12]} -> "
                   f"{change.new_revision[:12]} ({', '.join(change.changed)})")
    for number in report.reminded:
        click.echo(f"  told #{number} its source changed")
    for line in skipped_lines(d.skipped):
        click.echo(f"  skipped {line}")


def run_once(cfg: Config, dry_run: bool) -> PollReport:
    watcher = HubWatcher(hub_api(), cfg.hub)
    repo = cfg.github.resolved_repo()
    tracker = IssueTracker(connect(), repo, cfg.github.candidate_label) if repo else None
    if tracker is None and not dry_run:
        raise QuantbotError("no GitHub repository to open issues in",
                            "set github.repo in quantbot.toml or $GITHUB_REPOSITORY, "
                            "or pass --dry-run")
    return poll(cfg, watcher, tracker, dry_run=dry_run)


@click.command("watch")
@click.option("--once", is_flag=True,
              help="Poll once and exit (default: poll every watch.interval_s).")
@click.option("--dry-run", is_flag=True, help="Print what would be opened; write nothing.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="quantbot.toml or pyproject.toml (default: ./quantbot.toml, then "
                   "[tool.quantbot] in ./pyproject.toml).")
def command(once: bool, dry_run: bool, config_path: str | None) -> None:
    """Open a GitHub issue for each new trending text-generation model worth quantizing.

    Hub: $HF_ENDPOINT / HF_TOKEN; GitHub: $GITHUB_API_URL / $GITHUB_TOKEN / $GITHUB_REPOSITORY.
    """
    cfg = load_config(config_path)
    while True:
        try:
            _echo_report(run_once(cfg, dry_run))
        except QuantbotError as exc:
            if once:
                raise
            click.echo(f"poll failed, trying again next time: {exc}", err=True)
        if once:
            return
        log.info("next poll in %ds", cfg.watch.interval_s)
        time.sleep(cfg.watch.interval_s)
