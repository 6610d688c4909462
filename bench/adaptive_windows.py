"""Benchmark: adaptive evaluation windows against fixed windows, on the same GGUF set.

Runs quantbot's GGUF pipeline twice on one model, on the evaluation mix (its chats through the
model's own template, as real models are measured; ``--docs-text`` for the fast demo's text),
back to back in one process: every file
measured on all ``--chunks`` windows (``--fixed-windows``, the rule before issue 19), then on the
first 4, 8, 16 … windows until its KLD is settled (:mod:`runners.adaptive`, the default). Both
runs make the same files from the same reference; answer agreement is off on both sides, so the
times are the set's own (convert, quantize, measure, check). Prints both wall times, the ratio,
each file's windows and KLD on both sides, and whether the card's decisions are the same: the
recommended file (and why), each file's quality band, and the notes that rank a larger file
below a smaller one.

    python bench/adaptive_windows.py --model smollm2-135m-instruct --chunks 16
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from bot.cards.quality import interval_text, name_notes, quality_band, recommendation
from bot.model_texts import evaluation_text
from runners.builtin import BUILTIN_MODELS
from runners.demo_model import build_demo_model
from runners.gguf.pipeline import run as run_gguf
from runners.gguf.spec import GgufSpec
from runners.llamacpp import ensure_toolchain
from runners.results import QuantRun
from runners.settings import RunSettings
from runners.source import load_source


def decisions(run: QuantRun) -> dict[str, object]:
    """What the card decides from the measurements."""
    return {"recommended": recommendation(run.variants)[0].name,
            "bands": {v.name: quality_band(v.quality.kld_mean) for v in run.variants},
            "notes": sorted(n for n in name_notes(run.variants) if "further" in n)}


def timed_run(model_dir: Path, types: tuple[str, ...], work: Path, ctx: int, chunks: int,
              adaptive: bool, mixed_text: bool) -> tuple[float, QuantRun]:
    source = load_source(str(model_dir), repo_id="bench/model")
    text = evaluation_text(source, work) if mixed_text else None
    start = time.perf_counter()
    run = run_gguf(source, GgufSpec(types=types),
                   RunSettings(work_dir=work, ctx=ctx, chunks=chunks, adaptive=adaptive,
                               answers=0, evaluation_file=text), work / "repo",
                   ensure_toolchain())
    return time.perf_counter() - start, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="HF model folder or a built-in model's name (default: the demo)")
    parser.add_argument("--types", default=None, help="GGUF types (default: the 12 of TheBloke)")
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--docs-text", action="store_true",
                        help="measure on the Python-docs text instead of the evaluation mix")
    args = parser.parse_args()
    ensure_toolchain()
    if args.model in BUILTIN_MODELS:
        model_dir = BUILTIN_MODELS[args.model].build()
    else:
        model_dir = Path(args.model) if args.model else build_demo_model()
    types = GgufSpec(**({"types": GgufSpec.option("types").read(args.types, "GGUF")}
                        if args.types else {})).types
    root = Path(tempfile.mkdtemp(prefix="quantbot-adaptive-"))
    try:
        fixed_s, fixed = timed_run(model_dir, types, root / "fixed", args.ctx, args.chunks, False,
                                   not args.docs_text)
        adaptive_s, adaptive = timed_run(model_dir, types, root / "adaptive", args.ctx,
                                         args.chunks, True, not args.docs_text)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"model: {model_dir}  types: {len(types)}  machine: {platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} cores  eval: ctx {args.ctx}, at most {args.chunks} "
          f"windows")
    print(f"text: {fixed.evaluation.text_name}")
    print(f"{'fixed windows':<24}{fixed_s:8.1f} s")
    print(f"{'adaptive windows':<24}{adaptive_s:8.1f} s")
    print(f"{'ratio fixed / adaptive':<24}{fixed_s / adaptive_s:8.2f} x")
    by_name = {v.name: v for v in fixed.variants}
    print(f"\n{'file':<10}{'windows':>8}  {'KLD fixed':<20}{'KLD adaptive':<20}band (fixed/adaptive)")
    for v in sorted(adaptive.variants, key=lambda v: v.size_bytes):
        f = by_name[v.name]
        print(f"{v.name:<10}{v.params['eval_chunks']:>8}  "
              f"{interval_text(f.quality.kld_mean, f.quality.kld_err, '.4f'):<20}"
              f"{interval_text(v.quality.kld_mean, v.quality.kld_err, '.4f'):<20}"
              f"{quality_band(f.quality.kld_mean)} / {quality_band(v.quality.kld_mean)}")
    ours, theirs = decisions(fixed), decisions(adaptive)
    for key in ours:
        same = "same" if ours[key] == theirs[key] else "DIFFERENT"
        print(f"\ncard decision '{key}': {same}")
        if ours[key] != theirs[key]:
            print(f"  fixed:    {ours[key]}\n  adaptive: {theirs[key]}")
        elif key == "recommended":
            print(f"  {ours[key]}: {recommendation(adaptive.variants)[1]}")


if __name__ == "__main__":
    main()
