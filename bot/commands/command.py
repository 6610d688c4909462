"""``quantbot command``: answer an issue comment (plan, report, fail), as the workflow does.

Every subcommand reads the ``issue_comment`` event from ``--event`` (``$GITHUB_EVENT_PATH``):
untrusted text never passes through argv or a shell.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import click

from bot.commanding.auth import Verdict, authorise, screen
from bot.commanding.event import CommentEvent, load_event
from bot.commanding.job import QUANTIZE_WORKFLOW, JobSpec, load_published, run_title
from bot.commanding.messages import (
    cancel_comment,
    error_comment,
    failure_comment,
    plan_comment,
    refusal_comment,
    repo_report,
    run_url,
    status_comment,
    success_comment,
)
from bot.commanding.outputs import write_outputs
from bot.commanding.parser import Command, Kind, ParseError, command_line, parse
from bot.commanding.target import model_of_issue
from bot.github.client import connect
from bot.github.comments import IssueThread
from bot.github.runs import cancel_active, issue_runs
from runners.errors import QuantbotError
from runners.results import load_run

log = logging.getLogger(__name__)

NOTHING = {"run": "false", "run_gguf": "false", "run_gpu": "false", "gpu_methods": "[]",
           "model": "", "issue": "", "plan": ""}

event_option = click.option(
    "--event", "event_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="GITHUB_EVENT_PATH", required=True, help="The issue_comment event JSON file.")
bot_login_option = click.option(
    "--bot-login", envvar="QUANTBOT_BOT_LOGIN", default="github-actions[bot]", show_default=True,
    help="The bot's own login: its comments are ignored.")
owner_option = click.option(
    "--owner", envvar="QUANTBOT_HUB_OWNER", default=None,
    help="Hub namespace the repositories go to (default: the config's hub.namespace).")


def hub_owner(owner: str | None) -> str:
    """``--owner``, else ``hub.namespace`` of the project configuration."""
    if owner:
        return owner
    from bot.config import load_config

    return load_config().hub.namespace


def _thread(event: CommentEvent) -> IssueThread:
    return IssueThread(connect(), event.repo, event.issue_number)


def _this_run() -> int | None:
    run = os.environ.get("GITHUB_RUN_ID", "")
    return int(run) if run.isdigit() else None


@click.group("command")
def command() -> None:
    """Answer /quantize, /status and /cancel comments on issues."""


@command.command("plan")
@event_option
@bot_login_option
@owner_option
@click.option("--workflow", default=QUANTIZE_WORKFLOW, show_default=True,
              help="Workflow file whose runs /status and /cancel act on.")
def plan_cmd(event_path: Path, bot_login: str, owner: str | None, workflow: str) -> None:
    """Parse and authorise the comment, answer it, write job outputs to $GITHUB_OUTPUT."""
    outputs = dict(NOTHING)
    try:
        outputs.update(_plan(load_event(event_path), bot_login, owner, workflow))
    finally:
        text = write_outputs(outputs)
        if not os.environ.get("GITHUB_OUTPUT"):
            click.echo(text, nl=False)


def _plan(event: CommentEvent, bot_login: str, owner: str | None,
          workflow: str) -> dict[str, str]:
    first = screen(event, bot_login)
    if first.verdict is Verdict.IGNORE:
        log.info("ignored: %s", first.reason)
        return {}
    error: ParseError | None = None
    cmd: Command | None = None
    try:
        cmd = parse(event.comment_body)
    except ParseError as exc:
        error = exc
    if cmd is None and error is None:
        log.info("ignored: not a command")
        return {}
    thread = _thread(event)
    decision = authorise(event, thread.repo, bot_login)
    line = cmd.line if cmd else (command_line(event.comment_body) or "")
    if decision.verdict is not Verdict.ALLOW:
        thread.post(refusal_comment(event.author, decision.reason, line.split()[0]))
        return {}
    if error is not None:
        thread.react(event.comment_id, "confused")
        thread.post(error_comment(event.author, error, line))
        return {}
    assert cmd is not None
    title = run_title(event.issue_number)
    if cmd.kind is Kind.STATUS:
        runs = [ln for _, ln in issue_runs(thread.repo, workflow, title, exclude=_this_run())]
        thread.post(status_comment(event.author, runs, event.issue_number))
        thread.react(event.comment_id, "+1")
        return {}
    if cmd.kind is Kind.CANCEL:
        result = cancel_active(thread.repo, workflow, title, exclude=_this_run())
        thread.post(cancel_comment(event.author, result.cancelled, result.failed))
        thread.react(event.comment_id, "+1")
        return {}
    assert cmd.plan is not None
    try:
        job = JobSpec(model=model_of_issue(event.issue_title, event.issue_body),
                      issue=event.issue_number, plan=cmd.plan)
    except QuantbotError as exc:
        thread.react(event.comment_id, "confused")
        thread.post(error_comment(event.author, exc, line))
        return {}
    thread.react(event.comment_id, "eyes")
    thread.post(plan_comment(job, event.author, hub_owner(owner), run_url()))
    return {
        "run": "true",
        "run_gguf": str(job.plan.run_gguf).lower(),
        "run_gpu": str(bool(job.plan.gpu_methods)).lower(),
        "gpu_methods": json.dumps(list(job.plan.gpu_methods)),
        "model": job.model,
        "issue": str(job.issue),
        "plan": job.to_json(),
    }


@command.command("report")
@event_option
@click.option("--results", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="Folder with the repositories and published.json.")
def report_cmd(event_path: Path, results: Path) -> None:
    """Post the final comment: every published repository with its card's table."""
    event = load_event(event_path)
    reports = [repo_report(p, load_run(results / p.folder)) for p in load_published(results)]
    if not reports:
        raise QuantbotError(f"{results} lists no published repository",
                            "run `quantbot run-job publish` first")
    model = reports[0].card.base_model
    thread = _thread(event)
    thread.post(success_comment(model, event.author, reports, run_url()))
    thread.react(event.comment_id, "+1")


@command.command("fail")
@event_option
@click.option("--step", required=True, help="The job or step that failed (e.g. gguf).")
@click.option("--model", default=None, help="The model, if known (the plan's model output).")
def fail_cmd(event_path: Path, step: str, model: str | None) -> None:
    """Post a failure comment naming the step, with a link to the run log."""
    event = load_event(event_path)
    if model is None:
        try:
            model = model_of_issue(event.issue_title, event.issue_body)
        except QuantbotError:
            model = None
    _thread(event).post(failure_comment(model or None, step, run_url()))
