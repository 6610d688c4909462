"""``quantbot run-job``: the job entry points the quantize workflow calls, runnable locally.

    quantbot run-job plan --model OWNER/NAME --comment "/quantize gguf=Q4_K_M" -o plan.json
    quantbot run-job gguf --plan plan.json --out results/
    quantbot run-job gpu --plan plan.json --method gptq --out results/
    quantbot run-job publish --plan plan.json --results results/ [--hub-dir hub/]

Worker jobs write finished repository folders (files, ``quantbot.json``, ``README.md``) to
``OUT/<owner>/<name>-<METHOD>/``; the publish job pushes each and lists them in
``published.json`` for ``quantbot command report``.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import asdict
from pathlib import Path

import click

from bot.commanding.job import JobSpec, Published, save_published
from bot.commanding.parser import Kind, parse
from bot.commands.command import hub_owner
from bot.publish.base import Publisher
from bot.publish.local import LocalHub
from runners.errors import QuantbotError
from runners.results import RUN_FILE, load_run

log = logging.getLogger(__name__)

GPU_MODULES = {"gptq": "runners.gptq.pipeline", "awq": "runners.gptq.pipeline"}

plan_option = click.option("--plan", "plan_path", required=True,
                           type=click.Path(exists=True, dir_okay=False, path_type=Path),
                           help="plan.json: the `plan` output of `quantbot command plan`.")
source_option = click.option("--source", default=None,
                             help="Model folder or Hub id to read instead of the plan's model.")
work_option = click.option("--work", type=click.Path(file_okay=False, path_type=Path),
                           default=None, help="Folder for intermediate files (default: cache).")
out_option = click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                          required=True, help="Results folder: OUT/<owner>/<repo>/.")
owner_option = click.option("--owner", envvar="QUANTBOT_HUB_OWNER", default=None,
                            help="Hub namespace (default: the config's hub.namespace).")


@click.group("run-job")
def command() -> None:
    """The quantize workflow's jobs, one subcommand each (no GitHub needed)."""


@command.command("plan")
@click.option("--model", required=True, help="Hub repo id the plan is for.")
@click.option("--comment", default="/quantize", show_default=True,
              help="The command, as it would be commented.")
@click.option("--issue", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default="plan.json", show_default=True)
def plan_cmd(model: str, comment: str, issue: int, output: Path) -> None:
    """Write a plan.json from a /quantize command, as the plan job would."""
    cmd = parse(comment)
    if cmd is None or cmd.kind is not Kind.QUANTIZE or cmd.plan is None:
        raise QuantbotError(f"{comment!r} is not a /quantize command", 'pass --comment "/quantize"')
    job = JobSpec(model=model, issue=issue, plan=cmd.plan)
    output.write_text(job.to_json() + "\n", encoding="utf-8")
    click.echo(f"{output}: {', '.join(job.plan.methods)} of {model}")


def _build(method: str, job: JobSpec, source: str | None, out: Path, owner: str | None,
           work: Path | None, settings: dict) -> None:
    from bot.quantize_job import JobOptions, quantize_and_publish

    opts = JobOptions(owner=hub_owner(owner), work_dir=work,
                      repo_id=job.model if source else None,
                      **{method: settings})
    for result in quantize_and_publish(source or job.model, [method], opts, LocalHub(out)):
        click.echo(f"{result.repo_id}: {len(result.uploaded)} files in {result.location}")


@command.command("gguf")
@plan_option
@out_option
@source_option
@owner_option
@work_option
@click.option("--ctx", type=click.IntRange(16), default=512, show_default=True)
@click.option("--chunks", type=click.IntRange(1), default=32, show_default=True)
def gguf_cmd(plan_path: Path, out: Path, source: str | None, owner: str | None,
             work: Path | None, ctx: int, chunks: int) -> None:
    """Make, measure and check the plan's GGUF types (a [self-hosted, cpu] job)."""
    job = JobSpec.load(plan_path)
    if not job.plan.run_gguf:
        raise QuantbotError("the plan has no GGUF method", "run the jobs the plan lists")
    settings = {"types": ",".join(job.plan.gguf_types), "imatrix": job.plan.imatrix,
                "ctx": ctx, "max_chunks": chunks}
    _build("gguf", job, source, out, owner, work, settings)


def gpu_quantizer(method: str) -> None:
    """Import the GPU method's module; a clear error when this quantbot does not have it."""
    module = GPU_MODULES[method]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise QuantbotError(
            f"{method.upper()} needs the GPU quantizer {module}, which cannot be imported ({exc})",
            "run GPU jobs on a runner set up with runners/setup/setup-gpu-runner.sh, "
            "with a quantbot version that has GPU methods") from exc
    from bot.quantize_job import METHODS

    if method not in METHODS:
        raise QuantbotError(f"{module} is importable but {method} is not a registered method",
                            "register it in bot.quantize_job.METHODS")


@command.command("gpu")
@plan_option
@click.option("--method", type=click.Choice(sorted(GPU_MODULES)), required=True)
@out_option
@source_option
@owner_option
@work_option
def gpu_cmd(plan_path: Path, method: str, out: Path, source: str | None, owner: str | None,
            work: Path | None) -> None:
    """Quantize and measure with GPTQ or AWQ (a [self-hosted, gpu] job)."""
    job = JobSpec.load(plan_path)
    if method not in job.plan.gpu_methods:
        raise QuantbotError(f"the plan has no {method} method", "run the jobs the plan lists")
    gpu_quantizer(method)
    _build(method, job, source, out, owner, work, asdict(getattr(job.plan, method)))


def finished_repos(results: Path) -> list[Path]:
    """``results/<owner>/<repo>/`` folders holding a finished run, sorted."""
    return sorted(p.parent for p in Path(results).glob(f"*/*/{RUN_FILE}"))


def _publisher(hub_dir: Path | None) -> Publisher:
    if hub_dir is not None:
        return LocalHub(hub_dir)
    from bot.config import load_config
    from bot.publish.hub import HubPublisher

    return HubPublisher(private=load_config().hub.private)


@command.command("publish")
@click.option("--results", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="The worker jobs' results, merged.")
@click.option("--plan", "plan_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Only publish runs of this plan's model.")
@click.option("--hub-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Publish to this local hub folder instead of the Hugging Face Hub.")
def publish_cmd(results: Path, plan_path: Path | None, hub_dir: Path | None) -> None:
    """Publish every finished repository folder; write results/published.json."""
    folders = finished_repos(results)
    if not folders:
        raise QuantbotError(f"{results} holds no finished repository (*/*/{RUN_FILE})",
                            "download the worker jobs' artifacts into it first")
    model = JobSpec.load(plan_path).model if plan_path else None
    publisher = _publisher(hub_dir)
    published = []
    for folder in folders:
        run = load_run(folder)
        if model and run.source.repo_id != model:
            raise QuantbotError(f"{folder} holds a run of {run.source.repo_id}, not {model}",
                                "publish each plan's results separately")
        repo_id = f"{folder.parent.name}/{folder.name}"
        result = publisher.publish(folder, repo_id)
        published.append(Published(repo_id=result.repo_id, location=result.location,
                                   method=run.method, folder=f"{folder.parent.name}/{folder.name}"))
        click.echo(f"published {result.repo_id}: {result.location}")
    save_published(results, published)
