"""One handler per command kind: each returns the reply to post and, for /quantize, the plan.

The route is read once, decided once, dispatched once: :func:`answer` screens the event (pure),
parses the comment once, asks the permission API once, then calls the one handler for the
command's kind. Nothing here writes workflow outputs; the command line does that with the plan.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from github.Repository import Repository

from bot.chatops.auth import Decision, Verdict, confirm, screen
from bot.chatops.commands import Command, Kind, command_line, parse
from bot.chatops.event import CommentEvent
from bot.chatops.messages import (
    cancel_comment,
    declined_comment,
    error_comment,
    plan_comment,
    refusal_comment,
    status_comment,
)
from bot.chatops.target import model_of_issue
from bot.config import Config
from bot.github.runs import cancel_active, issue_runs
from bot.handover import run_title
from bot.hub.model import ModelUnavailable
from bot.plan import ModelFacts, Plan, assess
from bot.request import ParseError
from runners.errors import QuantbotError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What every handler may use."""

    event: CommentEvent
    command: Command
    bot_login: str
    repo: Repository
    workflow: str
    hub_owner: str
    run_url: str | None
    this_run: int | None
    config: Config
    #: What the Hub says of a model at its current commit (bot.hub.model.read_model).
    read_model: Callable[[str], ModelFacts]


@dataclass(frozen=True)
class Reply:
    """A comment to post, a reaction to the command, and the plan to hand on (if any)."""

    body: str
    reaction: str | None = None
    plan: Plan | None = None


def on_status(ctx: Context) -> Reply:
    title = run_title(ctx.event.issue_number)
    runs = [line for _, line in issue_runs(ctx.repo, ctx.workflow, title, exclude=ctx.this_run)]
    return Reply(status_comment(ctx.event.author, runs, ctx.event.issue_number), "+1")


def on_cancel(ctx: Context) -> Reply:
    title = run_title(ctx.event.issue_number)
    result = cancel_active(ctx.repo, ctx.workflow, title, exclude=ctx.this_run)
    return Reply(cancel_comment(ctx.event.author, result.cancelled, result.failed), "+1")


def on_quantize(ctx: Context) -> Reply:
    """Pin the model's current commit, size every requested job against the runners, and plan
    the methods that fit; refuse, with the numbers, when none does. A Hub that cannot be asked
    raises (the command line tells the author to comment again), a missing model is answered."""
    assert ctx.command.request is not None
    author, line = ctx.event.author, ctx.command.line
    try:
        by_bot = ctx.event.issue_author.lower() == ctx.bot_login.lower()
        model = model_of_issue(ctx.event.issue_title, ctx.event.issue_body, by_bot)
    except QuantbotError as exc:
        return Reply(error_comment(author, exc, line), "confused")
    try:
        facts = ctx.read_model(model)
    except ModelUnavailable as exc:
        return Reply(error_comment(author, exc, line), "confused")
    assessment = assess(facts, ctx.command.request, ctx.config.filters, ctx.config.runners)
    plan = assessment.plan(ctx.event.issue_number)
    if plan is None:
        why = assessment.refusal.reason if assessment.refusal else "no requested method fits"
        log.info("declined /quantize of %s: %s", model, why)
        return Reply(declined_comment(assessment, author, line), "-1")
    return Reply(plan_comment(plan, author, ctx.hub_owner, ctx.run_url, assessment), "eyes", plan)


HANDLERS: dict[Kind, Callable[[Context], Reply]] = {
    Kind.QUANTIZE: on_quantize, Kind.STATUS: on_status, Kind.CANCEL: on_cancel,
}


@dataclass(frozen=True)
class Route:
    """A comment read before any request: the screen's decision and the command (or error)."""

    screened: Decision
    command: Command | None = None
    error: ParseError | None = None
    line: str = ""


def read(event: CommentEvent, bot_login: str | None,
         defaults: tuple[str, ...] | None) -> Route | None:
    """Screen and parse (pure). ``None``: not for us; say nothing."""
    first = screen(event, bot_login)
    if first.verdict is Verdict.IGNORE:
        log.info("ignored: %s", first.reason)
        return None
    try:
        command = parse(event.comment_body, defaults)
    except ParseError as exc:
        return Route(first, error=exc, line=command_line(event.comment_body) or "")
    if command is None:
        log.info("ignored: not a command")
        return None
    return Route(first, command=command, line=command.line)


def answer(event: CommentEvent, route: Route, repo: Repository,
           make_context: Callable[[Command], Context]) -> Reply:
    """Authorise once, then the one handler for the command's kind (or an error reply)."""
    first = route.screened
    decision = confirm(event, repo) if first.verdict is Verdict.CHECK else first
    if decision.verdict is not Verdict.ALLOW:
        return Reply(refusal_comment(event.author, decision.reason, route.line.split()[0]))
    if route.error is not None:
        return Reply(error_comment(event.author, route.error, route.line), "confused")
    assert route.command is not None
    return HANDLERS[route.command.kind](make_context(route.command))
