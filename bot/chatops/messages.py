"""The texts the bot posts on issues, rendered from ``templates/comment_*.md.j2`` (pure)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from bot.cards.data import CardData, build_card_data
from bot.handover import Published
from bot.methods import METHODS
from bot.plan import Plan
from bot.request import ParseError, usage
from bot.templating import render as render_template
from runners.errors import QuantbotError
from runners.results import QuantRun


def render(name: str, **context: object) -> str:
    return render_template(f"comment_{name}.md.j2", **context).strip() + "\n"


def run_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}/actions/runs/${GITHUB_RUN_ID}``, if known."""
    env = os.environ if environ is None else environ
    server, repo, run = (env.get(k) for k in
                         ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if not (server and repo and run):
        return None
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run}"


def hub_url(repo_id: str) -> str:
    return f"https://huggingface.co/{repo_id}"


@dataclass(frozen=True)
class MethodRow:
    method: str
    repo: str
    settings: str


def plan_rows(plan: Plan, hub_owner: str | None) -> list[MethodRow]:
    """One line per method: where it will go and with which settings."""
    name = plan.model.split("/")[-1]
    rows = []
    for method_name, spec in plan.request.specs.items():
        m = METHODS[method_name]
        repo = f"{hub_owner}/{m.repo_name(name)}" if hub_owner else m.repo_name(name)
        rows.append(MethodRow(m.label, repo, spec.describe()))
    return rows


def plan_comment(plan: Plan, author: str, hub_owner: str | None = None,
                 run: str | None = None) -> str:
    return render("plan", plan=plan, author=author, rows=plan_rows(plan, hub_owner),
                  hub_url=hub_url(plan.model), run=run)


def refusal_comment(author: str, reason: str, command: str) -> str:
    return render("refusal", author=author, reason=reason, command=command)


def error_comment(author: str, error: QuantbotError, line: str | None = None) -> str:
    token = error.token if isinstance(error, ParseError) else ""
    return render("error", author=author, problem=error.problem, fix=error.fix, line=line,
                  token=token, usage=usage() if isinstance(error, ParseError) else None)


@dataclass(frozen=True)
class RepoReport:
    """One published repository and the card data (table rows) its README shows."""

    repo_id: str
    url: str
    card: CardData


def repo_report(published: Published, run: QuantRun) -> RepoReport:
    return RepoReport(repo_id=published.repo_id, url=published.location,
                      card=build_card_data(run, published.repo_id))


def success_comment(model: str, author: str, reports: list[RepoReport],
                    run: str | None = None) -> str:
    return render("success", model=model, author=author, reports=reports, run=run)


def failure_comment(model: str | None, step: str, run: str | None) -> str:
    return render("failure", model=model, step=step, run=run)


@dataclass(frozen=True)
class RunLine:
    """One quantize workflow run as /status and /cancel show it."""

    id: int
    status: str
    conclusion: str | None
    url: str
    created: str


def status_comment(author: str, runs: list[RunLine], issue: int) -> str:
    return render("status", author=author, runs=runs, issue=issue)


def cancel_comment(author: str, cancelled: list[RunLine], failed: list[RunLine]) -> str:
    return render("cancel", author=author, cancelled=cancelled, failed=failed)
