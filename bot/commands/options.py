"""Click options shared by ``quantbot quantize`` and ``quantbot demo``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bot.publish.base import PublishResult
from bot.publish.local import LocalHub
from bot.quantize_job import JobOptions, parse_methods, quantize_and_publish
from runners.gguf.pipeline import HUB_FILE_LIMIT


def job_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options of the main job, in the order ``--help`` shows them."""
    options = [
        click.option("--method", "methods", default="gguf", show_default=True,
                     help="Methods, comma-separated, or 'all'."),
        click.option("--types", default=None,
                     help="GGUF types, comma-separated (default: Q2_K … Q8_0, TheBloke's 12)."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="hub",
                     show_default=True, help="Local hub folder: results go to OUT/<owner>/<repo>."),
        click.option("--owner", default="quantbot", show_default=True,
                     help="Namespace of the published repositories."),
        click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Folder for intermediate files (default: the user's cache)."),
        click.option("--imatrix/--no-imatrix", default=False, show_default=True,
                     help="Use an importance matrix from the calibration text for GGUF types."),
        click.option("--ctx", type=click.IntRange(16), default=512, show_default=True,
                     help="Evaluation window in tokens (capped at the model's context)."),
        click.option("--chunks", type=click.IntRange(1), default=32, show_default=True,
                     help="At most this many evaluation windows."),
        click.option("--jobs", type=click.IntRange(0), default=0,
                     help="Tools run in parallel (0: from cores and memory)."),
        click.option("--threads", type=click.IntRange(0), default=0,
                     help="Threads per tool (0: cores / jobs)."),
        click.option("--split-size", default=HUB_FILE_LIMIT, show_default=True,
                     help="Split GGUF files larger than this (M or G) with llama-gguf-split."),
        click.option("--gptq-variants", default=None,
                     help="GPTQ variants as bits[:group],… e.g. 4,8:32 (default 4:128, act-order)."),
        click.option("--awq-variants", default=None,
                     help="AWQ variants as 4[:group],… (default 4:128 with zero point)."),
        click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto",
                     show_default=True, help="Where GPTQ/AWQ quantize and evaluate."),
        click.option("--calib-samples", type=click.IntRange(1), default=128, show_default=True,
                     help="GPTQ/AWQ calibration blocks."),
        click.option("--calib-len", type=click.IntRange(16), default=512, show_default=True,
                     help="Tokens per GPTQ/AWQ calibration block."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def run_job(source: str, *, methods: str, types: str | None, out: Path, owner: str,
            work: Path | None, imatrix: bool, ctx: int, chunks: int, jobs: int, threads: int,
            split_size: str, gptq_variants: str | None, awq_variants: str | None, device: str,
            calib_samples: int, calib_len: int, **extra: Any) -> list[PublishResult]:
    """Build :class:`JobOptions` from the CLI's options, run the job, print where results went."""
    gpu = {"device": device, "calib_samples": calib_samples, "calib_len": calib_len,
           "ctx": ctx, "chunks": chunks}
    opts = JobOptions(
        owner=owner, work_dir=work, gguf={"types": types, "imatrix": imatrix, "ctx": ctx,
                                          "max_chunks": chunks, "jobs": jobs, "threads": threads,
                                          "split_size": split_size},
        gptq={**gpu, "variants": gptq_variants}, awq={**gpu, "variants": awq_variants}, **extra)
    results = quantize_and_publish(source, parse_methods(methods), opts, LocalHub(out))
    for result in results:
        click.echo(f"{result.repo_id}: {len(result.uploaded)} files in {result.location}")
    return results
