"""The texts the bot posts on issues, rendered from ``templates/comment_*.md.j2`` (pure)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import jinja2

from bot.cards.data import CardData, build_card_data
from bot.commanding.job import JobSpec, Published
from bot.commanding.parser import ParseError, QuantizePlan
from runners.errors import QuantbotError
from runners.results import QuantRun

USAGE = ("/quantize [gguf[=TYPE,...]] [imatrix] [gptq [bits=2|3|4|8] [group_size=32|64|128|none] "
         "[act_order=true|false] [damp=0.01]] [awq [group_size=32|64|128] "
         "[zero_point=true|false]]")
_MAX_QUOTE = 200


def code(text: object) -> str:
    """Inline code that survives any content: no Markdown, no @-mentions, bounded length."""
    value = " ".join(str(text).split())
    if len(value) > _MAX_QUOTE:
        value = value[:_MAX_QUOTE] + "…"
    fence = "`"
    while fence in value:
        fence += "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


@cache
def _env() -> jinja2.Environment:
    root = files("templates")

    def load(name: str) -> str | None:
        path = root.joinpath(name)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=False,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["code"] = code
    return env


def render(name: str, **context: object) -> str:
    return _env().get_template(f"comment_{name}.md.j2").render(**context).strip() + "\n"


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


def plan_rows(plan: QuantizePlan, model: str, hub_owner: str | None) -> list[MethodRow]:
    """One line per method: where it will go and with which settings."""
    name = model.split("/")[-1]
    rows = []
    for method in plan.methods:
        repo = f"{hub_owner}/{name}-{method.upper()}" if hub_owner else f"{name}-{method.upper()}"
        if method == "gguf":
            settings = ", ".join(plan.gguf_types) + (
                "; importance matrix" if plan.imatrix else "")
        elif method == "gptq":
            g = plan.gptq
            group = "none" if g.group_size == -1 else str(g.group_size)
            settings = (f"{g.bits}-bit, group size {group}, "
                        f"act order {'on' if g.act_order else 'off'}, damp {g.damp:g}")
        else:
            a = plan.awq
            settings = (f"{a.bits}-bit, group size {a.group_size}, "
                        f"zero point {'on' if a.zero_point else 'off'}")
        rows.append(MethodRow(method.upper(), repo, settings))
    return rows


def plan_comment(job: JobSpec, author: str, hub_owner: str | None = None,
                 run: str | None = None) -> str:
    return render("plan", job=job, author=author, rows=plan_rows(job.plan, job.model, hub_owner),
                  hub_url=hub_url(job.model), run=run)


def refusal_comment(author: str, reason: str, command: str) -> str:
    return render("refusal", author=author, reason=reason, command=command)


def error_comment(author: str, error: QuantbotError, line: str | None = None) -> str:
    token = error.token if isinstance(error, ParseError) else ""
    return render("error", author=author, problem=error.problem, fix=error.fix, line=line,
                  token=token, usage=USAGE if isinstance(error, ParseError) else None)


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
