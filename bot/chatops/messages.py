"""The texts the bot posts on issues, rendered from ``templates/comment_*.md.j2`` (pure)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from bot.capacity import Fit, RunnerFix, RunnerSpec, runner_fixes
from bot.cards.data import CardData, build_card_data
from bot.handover import Published
from bot.methods import METHODS
from bot.moe import Experts
from bot.plan import Assessment, Declined, ModelFacts, Plan
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


@dataclass(frozen=True)
class NeedRow:
    """One job's peak needs beside what its runner has (None: no such runner configured)."""

    label: str
    fit: Fit
    disk: int | None
    ram: int | None
    gpu: int | None  # every card of the runner together


def need_rows(fits: list[Fit], runners: Mapping[str, RunnerSpec]) -> list[NeedRow]:
    rows = []
    for fit in fits:
        runner = runners.get(fit.need.runner)
        rows.append(NeedRow(METHODS[fit.method].label, fit,
                            runner.disk_bytes if runner else None,
                            runner.ram_bytes if runner else None,
                            runner.gpu_bytes * runner.gpus if runner else None))
    return rows


@dataclass(frozen=True)
class AssessmentView:
    """What the plan and the declined comments show of an assessment: the model's size, every
    sized job's needs against its runner, the methods left out and the runner settings that
    would hold them."""

    facts: ModelFacts
    experts: Experts | None
    tree_url: str  # the pinned commit's files on the Hub
    needs: list[NeedRow]
    declined: list[tuple[str, Declined]]  # (method label, why)
    fixes: list[RunnerFix]


def assessment_view(assessment: Assessment) -> AssessmentView:
    facts = assessment.facts
    order = list(METHODS)
    sized = sorted([*assessment.accepted,
                    *(d.fit for d in assessment.declined if d.fit is not None)],
                   key=lambda f: order.index(f.method))
    return AssessmentView(
        facts=facts, experts=facts.experts,
        tree_url=f"{hub_url(facts.repo_id)}/tree/{facts.revision}",
        needs=need_rows(sized, assessment.runners),
        declined=[(METHODS[d.method].label, d) for d in assessment.declined],
        fixes=runner_fixes([d.fix for d in assessment.declined if d.fix is not None]))


def plan_comment(plan: Plan, author: str, hub_owner: str | None = None,
                 run: str | None = None, assessment: Assessment | None = None) -> str:
    """The answer to an accepted /quantize: the commit, the model's size, each job's needs."""
    shown = assessment_view(assessment) if assessment is not None else None
    return render("plan", plan=plan, author=author, rows=plan_rows(plan, hub_owner),
                  hub_url=hub_url(plan.model), run=run, a=shown)


def declined_comment(assessment: Assessment, author: str, command: str) -> str:
    """The answer to a /quantize of which nothing can be made, with the reason or the numbers."""
    return render("declined", author=author, command=command, refusal=assessment.refusal,
                  hub_url=hub_url(assessment.facts.repo_id), a=assessment_view(assessment))


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
