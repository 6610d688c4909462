"""``quantbot run-job``: the job entry points the quantize workflow calls, runnable locally.

    quantbot run-job plan --model OWNER/NAME --comment "/quantize gguf=Q4_K_M" -o plan.json
    quantbot run-job make --plan plan.json --method gguf --out results/ [--isolation bwrap]
    quantbot run-job publish --plan plan.json --results results/ [--hub-dir hub/]
    quantbot run-job cards --results report/ [--hub-dir hub/]

Each method job makes its repository folder (files, ``quantbot.json``, ``README.md``) in
``OUT/<owner>/<repo>/`` and then, in a later step that alone holds the Hub token, publishes it
from the same runner and lists it in ``published.json`` for ``quantbot command report``. Large
files therefore never pass through workflow artifacts. A method job knows only its own
measurements, so the report job, which has every job's records, renders each card again with the
table and plot of every format (``run-job cards``) and commits only the card files.

On a self-hosted runner the make step reads strangers' files, so it downloads first and then runs
itself again in a bubblewrap sandbox (``--isolation bwrap``, :mod:`runners.sandbox`); the publish
step runs no model code and checks every file against ``quantbot.json`` before uploading
(:mod:`bot.publish.manifest`).
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

import click

from bot.cards import CARD_FILES
from bot.chatops.commands import Kind, parse
from bot.cli.command import hub_owner
from bot.config import config_files, load_config
from bot.handover import Published, published_records, save_published
from bot.methods import METHODS, Method, method
from bot.pipeline import make_repository, snapshot_repo, work_folder, write_release_cards
from bot.plan import Plan
from bot.publish.base import Publisher
from bot.publish.local import LocalHub
from bot.publish.manifest import checked_record
from runners import sandbox
from runners.errors import QuantbotError
from runners.paths import cache_dir
from runners.results import RUN_FILE
from runners.settings import RunSettings
from runners.source import SourceModel, load_source

log = logging.getLogger(__name__)

plan_option = click.option("--plan", "plan_path", required=True,
                           type=click.Path(exists=True, dir_okay=False, path_type=Path),
                           help="plan.json: the `plan` output of `quantbot command plan`.")


@click.group("run-job")
def command() -> None:
    """The quantize workflow's jobs, one subcommand each (no GitHub needed)."""


@command.command("plan")
@click.option("--model", required=True, help="Hub repo id the plan is for.")
@click.option("--comment", default="/quantize", show_default=True,
              help="The command, as it would be commented.")
@click.option("--issue", type=int, default=0, show_default=True)
@click.option("--revision", default=None, help="The source commit (40 hex digits) to pin.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default="plan.json", show_default=True)
def plan_cmd(model: str, comment: str, issue: int, revision: str | None, output: Path) -> None:
    """Write a plan.json from a /quantize command, as the plan job would."""
    cmd = parse(comment)
    if cmd is None or cmd.kind is not Kind.QUANTIZE or cmd.request is None:
        raise QuantbotError(f"{comment!r} is not a /quantize command", 'pass --comment "/quantize"')
    plan = Plan(model=model, issue=issue, request=cmd.request, revision=revision)
    output.write_text(plan.to_json() + "\n", encoding="utf-8")
    click.echo(f"{output}: {', '.join(plan.request.methods)} of {model}")


#: The options of ``make`` the sandboxed run gets from the download phase, not as typed.
SANDBOX_SETS = frozenset({"plan_path", "method_name", "out", "source", "owner", "work",
                           "isolation"})


@command.command("make")
@plan_option
@click.option("--method", "method_name", type=click.Choice(list(METHODS)), required=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Results folder: OUT/<owner>/<repo>/.")
@click.option("--source", default=None, help="Model folder or Hub id to read instead of the plan's.")
@click.option("--owner", envvar="QUANTBOT_HUB_OWNER", default=None,
              help="Hub namespace (default: the config's hub.namespace).")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for intermediate files (default: the user's cache).")
@click.option("--ctx", type=click.IntRange(16), default=512, show_default=True)
@click.option("--chunks", type=click.IntRange(1), default=32, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto",
              show_default=True)
@click.option("--fixed-windows", is_flag=True,
              help="Measure every file on all --chunks windows (default: adaptive).")
@click.option("--answers", type=click.IntRange(0), default=64, show_default=True,
              help="Chat prompts every file answers (0: no answer agreement).")
@click.option("--answer-tokens", type=click.IntRange(1), default=48, show_default=True)
@click.option("--isolation", type=click.Choice(sandbox.ISOLATIONS), default="none", show_default=True,
              help="bwrap: download, then convert, quantize, measure and check in a bubblewrap "
                   "sandbox (no network, writes only to --out and the model's own work folder, "
                   "every process ended on return), as the workflow does on self-hosted "
                   "runners.")
def make_cmd(plan_path: Path, method_name: str, out: Path, source: str | None, owner: str | None,
             work: Path | None, ctx: int, chunks: int, device: str, fixed_windows: bool,
             answers: int, answer_tokens: int, isolation: str) -> None:
    """Make, measure and check one method of the plan (on the runner its label names)."""
    plan = Plan.load(plan_path)
    if method_name not in plan.request.specs:
        raise QuantbotError(f"the plan has no {method_name} method", "run the jobs the plan lists")
    m = method(method_name)
    model = load_source(source or plan.model, repo_id=plan.model if source else None,
                        revision=None if source else plan.revision,
                        allow_remote_code=load_config().filters.allow_remote_code)
    work = work or cache_dir() / "work"
    owner = hub_owner(owner)
    if isolation == sandbox.BWRAP:
        _make_sandboxed(plan_path, m, model, out, owner, work,
                        forwarded_options(click.get_current_context(), SANDBOX_SETS))
        return
    settings = RunSettings(work_dir=work, ctx=ctx, chunks=chunks, device=device,
                           adaptive=not fixed_windows, answers=answers,
                           answer_tokens=answer_tokens)
    repo_id, staging = make_repository(model, m, plan.request, settings, owner)
    published = LocalHub(out).publish(staging, repo_id)
    click.echo(f"{repo_id}: {len(published.uploaded)} files in {published.location}")


def forwarded_options(ctx: click.Context, skip: frozenset[str]) -> list[str]:
    """The command line of ``ctx``'s options but ``skip``, as given (defaults included), so that
    the sandboxed run measures as asked whatever options ``make`` gains."""
    args: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if not isinstance(param, click.Option) or param.name in skip or value is None:
            continue
        name = max(param.opts, key=len)
        if param.is_flag and param.secondary_opts:
            args.append(name if value else max(param.secondary_opts, key=len))
        elif param.is_flag:
            args += [name] if value else []
        else:
            args += [a for v in (value if param.multiple else [value]) for a in (name, str(v))]
    return args


def _make_sandboxed(plan_path: Path, m: Method, model: SourceModel, out: Path, owner: str,
                    work: Path, knobs: list[str]) -> None:
    """The untrusted phase of ``make``: this very command again, on the downloaded folder, in
    the sandbox (:mod:`runners.sandbox`); the tools it needs are built first, outside, since
    the sandbox sees quantbot's cache read-only."""
    m.build_tools()
    source = model.path
    hub_repo = snapshot_repo(source)
    own_work = work_folder(work, model.info.repo_id, m)  # not the other models' work folders
    policy = sandbox.make_policy(readable=[hub_repo or source, plan_path, cache_dir(),
                                           *config_files()],
                                 writable=[out, own_work])
    verbose = ["-v"] if logging.getLogger().isEnabledFor(logging.DEBUG) else []
    argv = [str(Path(sys.executable).with_name("quantbot")), *verbose, "run-job", "make",
            "--plan", str(plan_path.resolve()), "--method", m.name, "--out", str(out.resolve()),
            "--source", str(source), "--owner", owner, "--work", str(work.resolve()), *knobs]
    status = sandbox.run(policy, argv)
    if status != 0:
        raise QuantbotError(f"the sandboxed {m.label} make step failed (exit status {status})",
                            "read its error above; a rerun resumes from the finished steps")


def finished_repos(results: Path) -> list[Path]:
    """``results/<owner>/<repo>/`` folders holding a finished run, sorted."""
    return sorted(p.parent for p in Path(results).glob(f"*/*/{RUN_FILE}"))


def _publisher(hub_dir: Path | None) -> Publisher:
    if hub_dir is not None:
        return LocalHub(hub_dir)
    from bot.publish.hub import HubPublisher

    return HubPublisher(private=load_config().hub.private)


def expected_repo(plan: Plan, run_method: str, owner: str) -> str | None:
    """The repository a plan's job of ``run_method`` makes (``None``: the plan has no such
    job), so that a folder named otherwise is never published."""
    if run_method not in plan.request.specs:
        return None
    return f"{owner}/{method(run_method).repo_name(plan.model.split('/')[-1])}"


@command.command("publish")
@click.option("--results", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="The worker jobs' results, merged.")
@click.option("--plan", "plan_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Only publish the repositories this plan's jobs make, of its model.")
@click.option("--owner", envvar="QUANTBOT_HUB_OWNER", default=None,
              help="Hub namespace the plan's repositories go to (default: the config's "
                   "hub.namespace).")
@click.option("--hub-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Publish to this local hub folder instead of the Hugging Face Hub.")
def publish_cmd(results: Path, plan_path: Path | None, owner: str | None,
                hub_dir: Path | None) -> None:
    """Publish every finished repository folder; write results/published.json.

    Every folder is checked first, before anything is uploaded: each file's size and sha256
    against its ``quantbot.json`` (no link, no extra, missing or changed file) and, with
    ``--plan``, its name and source against the plan.
    """
    folders = finished_repos(results)
    if not folders:
        raise QuantbotError(f"{results} holds no finished repository (*/*/{RUN_FILE})",
                            "run `quantbot run-job make` into it first")
    plan = Plan.load(plan_path) if plan_path else None
    runs = []
    for folder in folders:
        run = checked_record(folder)  # links first, then the record, then every file
        repo_id = f"{folder.parent.name}/{folder.name}"
        if plan and run.source.repo_id != plan.model:
            raise QuantbotError(f"{folder} holds a run of {run.source.repo_id}, not {plan.model}",
                                "publish each plan's results separately")
        if plan and repo_id != expected_repo(plan, run.method, hub_owner(owner)):
            raise QuantbotError(f"{folder} is not a repository this plan's jobs make "
                                f"({run.method} of {plan.model})",
                                "publish only what `quantbot run-job make` made for this plan "
                                "(pass --owner as the make step had it)")
        runs.append((folder, repo_id, run))
    publisher = _publisher(hub_dir)
    published = []
    for folder, repo_id, run in runs:
        result = publisher.publish(folder, repo_id)
        published.append(Published(repo_id=result.repo_id, location=result.location,
                                   method=run.method, folder=repo_id))
        click.echo(f"published {result.repo_id}: {result.location}")
    save_published(results, published)


def stage_records(records: list[tuple[Published, Path]], work: Path) -> list[tuple[str, Path]]:
    """``(repo id, WORK/<repo id>/)`` holding a copy of each record, in the registry's method
    order (as one local run lists them), ready for the cards to be rendered beside it."""
    order = {name: i for i, name in enumerate(METHODS)}
    repo_ids = [p.repo_id for p, _ in records]
    if len(set(repo_ids)) != len(repo_ids):
        raise QuantbotError(f"the report lists a repository twice ({', '.join(sorted(repo_ids))})",
                            "pass the report artifacts of one /quantize run")
    staged = []
    records = sorted(records, key=lambda r: (order.get(r[0].method, len(order)), r[0].repo_id))
    for p, record in records:
        if not (record / RUN_FILE).is_file():
            raise QuantbotError(f"the report has no {RUN_FILE} for {p.repo_id} (in {record})",
                                "upload each method job's quantbot.json beside its published.json "
                                "(quantize-jobs.yml does)")
        folder = Path(work) / p.repo_id
        folder.mkdir(parents=True, exist_ok=True)
        for name in (*CARD_FILES, RUN_FILE):  # never write into a file linked elsewhere
            (folder / name).unlink(missing_ok=True)
        shutil.copyfile(record / RUN_FILE, folder / RUN_FILE)
        staged.append((p.repo_id, folder))
    return staged


@command.command("cards")
@click.option("--results", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="The method jobs' reports: each published.json with the "
                                  "quantbot.json of its repositories (any depth).")
@click.option("--hub-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Update this local hub folder instead of the Hugging Face Hub.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to render the cards in (default: a temporary one, removed after).")
def cards_cmd(results: Path, hub_dir: Path | None, work: Path | None) -> None:
    """Render every published card of one release again with the table and plot of all its
    formats, and commit only the card files (README.md, quality.png) to each repository."""
    records = published_records(results)
    if not records:
        raise QuantbotError(f"{results} lists no published repository",
                            "run `quantbot run-job publish` and pass its published.json")
    if len(records) == 1:
        click.echo(f"{records[0][0].repo_id}: the only format of its release; its card is whole")
        return
    scratch = nullcontext(str(work)) if work else tempfile.TemporaryDirectory(
        prefix="quantbot-cards-")
    with scratch as base:
        staged = stage_records(records, Path(base))
        try:
            write_release_cards(staged)
        except ValueError as exc:
            raise QuantbotError(f"the report's records share no scale ({exc})",
                                "pass the report artifacts of one /quantize run") from exc
        publisher = _publisher(hub_dir)
        for repo_id, folder in staged:
            result = publisher.update_cards(folder, repo_id)
            changed = ", ".join(result.uploaded) or "unchanged"
            click.echo(f"card of {repo_id}: {changed} ({result.location})")
