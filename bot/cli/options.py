"""Click options shared by ``quantbot quantize`` and ``quantbot demo``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bot.methods import METHODS
from bot.pipeline import SourceOptions, quantize_and_publish
from bot.publish.base import PublishResult
from bot.publish.local import LocalHub
from bot.request import parse_words, usage
from runners.errors import QuantbotError
from runners.settings import RunSettings
from runners.units import parse_count

#: What the command line makes when its words name no method: the methods that run on any
#: machine (GGUF; :attr:`bot.methods.Method.cli_default`).
CLI_DEFAULT_METHODS = tuple(name for name, m in METHODS.items() if m.cli_default)
WORDS_HELP = (f"WORDS say what to make, as after /quantize on an issue: "
              f"{usage('').strip()} (default: {' '.join(CLI_DEFAULT_METHODS)}).")


def job_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The request words, then the run settings, in the order ``--help`` shows them."""
    options = [
        click.argument("words", nargs=-1),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="hub",
                     show_default=True, help="Local hub folder: results go to OUT/<owner>/<repo>."),
        click.option("--owner", default="quantbot", show_default=True,
                     help="Namespace of the published repositories."),
        click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Folder for intermediate files (default: the user's cache)."),
        click.option("--ctx", type=click.IntRange(16), default=512, show_default=True,
                     help="Evaluation window in tokens (capped at the model's context)."),
        click.option("--chunks", type=click.IntRange(1), default=32, show_default=True,
                     help="At most this many evaluation windows."),
        click.option("--jobs", type=click.IntRange(0), default=0,
                     help="GGUF tools run in parallel (0: from cores and memory)."),
        click.option("--threads", type=click.IntRange(0), default=0,
                     help="Threads per tool (0: cores / jobs)."),
        click.option("--split-size", default="48G", show_default=True,
                     help="Split GGUF files larger than this (e.g. 48G, 500M) with llama-gguf-split."),
        click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto",
                     show_default=True, help="Where transformers-family methods quantize and evaluate."),
        click.option("--calib-samples", type=click.IntRange(1), default=128, show_default=True,
                     help="Calibration blocks (GPTQ, AWQ)."),
        click.option("--calib-len", type=click.IntRange(16), default=512, show_default=True,
                     help="Tokens per calibration block."),
        click.option("--fixed-windows", is_flag=True,
                     help="Measure every file on all --chunks windows (default: add windows, "
                          "4, 8, 16 …, only until each file's KLD is settled)."),
        click.option("--answers", type=click.IntRange(0), default=64, show_default=True,
                     help="Chat prompts every file answers, to compare with the original's "
                          "answers (0: skip answer agreement)."),
        click.option("--answer-tokens", type=click.IntRange(1), default=48, show_default=True,
                     help="New tokens each answer may take."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def run_settings(work: Path | None, ctx: int, chunks: int, jobs: int, threads: int,
                 split_size: str, device: str, calib_samples: int, calib_len: int,
                 answers: int = 64, answer_tokens: int = 48,
                 fixed_windows: bool = False) -> RunSettings:
    from runners.paths import cache_dir

    return RunSettings(work_dir=work or cache_dir() / "work", ctx=ctx, chunks=chunks, jobs=jobs,
                       threads=threads, split_bytes=parse_count(split_size, "--split-size"),
                       device=device, calib_samples=calib_samples, calib_len=calib_len,
                       answers=answers, answer_tokens=answer_tokens, adaptive=not fixed_windows)


def run_quantize(source: str, *, words: tuple[str, ...], out: Path, owner: str,
                 source_options: SourceOptions, **settings: Any) -> list[PublishResult]:
    """Parse the words, run every method, publish to the local hub, say where results went;
    a method that failed is reported after the others are published, and the exit status is 1."""
    request = parse_words(list(words), CLI_DEFAULT_METHODS, head="quantbot quantize SOURCE")
    outcome = quantize_and_publish(source, request, run_settings(**settings), owner,
                                   source_options, LocalHub(out))
    for result in outcome.published:
        click.echo(f"{result.repo_id}: {len(result.uploaded)} files in {result.location}")
    if len(outcome.failed) == 1 and not outcome.published:  # the request's only method
        raise outcome.failed[0].error
    if outcome.failed:
        names = ", ".join(METHODS[f.method].label for f in outcome.failed)
        details = "; ".join(f"{METHODS[f.method].label}: {f.problem}" for f in outcome.failed)
        fixes = "; ".join(dict.fromkeys(f.fix for f in outcome.failed))
        published = len(outcome.published)
        raise QuantbotError(f"{names} failed ({published} other repositor"
                            f"{'y was' if published == 1 else 'ies were'} published): {details}",
                            fixes)
    return outcome.published
