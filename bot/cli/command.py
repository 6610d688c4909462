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
import requests
from github import GithubException

from bot.chatops.commands import Command
from bot.chatops.event import CommentEvent, load_event
from bot.chatops.handlers import Context, answer, read
from bot.chatops.messages import (
    error_comment,
    failure_comment,
    repo_report,
    run_url,
    success_comment,
)
from bot.chatops.outputs import write_outputs
from bot.chatops.target import model_of_issue
from bot.github.client import connect
from bot.github.comments import IssueThread, github_error
from bot.handover import QUANTIZE_WORKFLOW, published_records
from runners.errors import QuantbotError
from runners.results import load_run

log = logging.getLogger(__name__)

NOTHING = {"run": "false", "matrix": json.dumps({"include": []}), "model": "", "issue": "",
           "plan": ""}

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
    from bot.config import load_config
    from bot.hub.client import hub_api
    from bot.hub.model import read_model

    config = load_config()
    route = read(event, bot_login, config.quant.methods)
    if route is None:
        return {}
    thread = _thread(event)

    def context(cmd: Command) -> Context:
        return Context(event=event, command=cmd, bot_login=bot_login, repo=thread.repo,
                       workflow=workflow,
                       hub_owner=hub_owner(owner), run_url=run_url(), this_run=_this_run(),
                       config=config,
                       read_model=lambda repo_id: read_model(hub_api(), repo_id, config.hub))

    try:
        reply = answer(event, route, thread.repo, context)
    except QuantbotError as exc:  # GitHub or the Hub failed us, or the config is broken
        _reply_failure(thread, event, route.line, exc)
        raise
    except (GithubException, requests.RequestException) as exc:
        error = github_error(exc, "answer the comment")
        _reply_failure(thread, event, route.line, error)
        raise error from exc
    try:
        thread.post(reply.body)
    except QuantbotError as exc:  # no one was told, so nothing runs (run=false)
        log.error("could not answer the comment of @%s on #%d, so nothing runs: %s",
                  event.author, event.issue_number, exc)
        raise
    if reply.reaction:
        try:
            thread.react(event.comment_id, reply.reaction)
        except QuantbotError as exc:  # a reaction only decorates: the reply told already
            log.warning("no %s reaction on the comment: %s", reply.reaction, exc)
    if reply.plan is None:
        return {}
    return {"run": "true", "matrix": json.dumps(reply.plan.matrix()), "model": reply.plan.model,
            "issue": str(reply.plan.issue), "plan": reply.plan.to_json()}


def _reply_failure(thread: IssueThread, event: CommentEvent, line: str,
                   error: QuantbotError) -> None:
    """Log why the comment got no answer and, if GitHub still takes comments, tell its author."""
    log.error("could not answer the comment of @%s on #%d: %s", event.author, event.issue_number,
              error)
    told = QuantbotError(error.problem, "comment the command again later; nothing was run")
    try:
        thread.post(error_comment(event.author, told, line))
    except QuantbotError as exc:
        log.error("could not reply on #%d either: %s", event.issue_number, exc)


@command.command("report")
@event_option
@click.option("--results", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="Folder holding the method jobs' published.json files (any depth).")
def report_cmd(event_path: Path, results: Path) -> None:
    """Post the final comment: every published repository with its card's table."""
    event = load_event(event_path)
    reports = [repo_report(p, load_run(record)) for p, record in published_records(results)]
    if not reports:
        raise QuantbotError(f"{results} lists no published repository",
                            "run `quantbot run-job make` (it publishes) first")
    model = reports[0].card.base_model
    thread = _thread(event)
    thread.post(success_comment(model, event.author, reports, run_url()))
    thread.react(event.comment_id, "+1")


@command.command("fail")
@event_option
@click.option("--step", required=True, help="The job or step that failed (e.g. gguf).")
@click.option("--model", default=None, help="The model, if known (the plan's model output).")
@bot_login_option
def fail_cmd(event_path: Path, step: str, model: str | None, bot_login: str) -> None:
    """Post a failure comment naming the step, with a link to the run log."""
    event = load_event(event_path)
    if model is None:
        try:
            model = model_of_issue(event.issue_title, event.issue_body,
                                   event.issue_author.lower() == bot_login.lower())
        except QuantbotError:
            model = None
    _thread(event).post(failure_comment(model or None, step, run_url()))
