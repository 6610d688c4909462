"""Benchmark: what the mix search (issue 20) adds to a GGUF request, measured in one run.

Runs quantbot's GGUF pipeline once with ``gguf=<sizes> imatrix mixes``: convert, importance
matrix, the stock files of ``--sizes`` quantized, measured and checked, then the mix stage
(tuning reference, gap files, sweeps, candidates, each winner spliced from the search's
tensors, its recipe's bytes, then measured and checked on the held-out windows). The stock
set's time is the run's wall time less the mix stage's (``stage_seconds`` in
``quantbot.json``); the ratio is the stage's time over the stock set's. Prints both, the
search's own time, how many probes it measured at once and of how many planned (on a GPU the
sweeps stop at three quarters of the stock set's time unless ``mix_minutes`` says otherwise),
where a probe's time goes (getting its parts, the tool's start to its first window, the tool's
whole run), the files it quantized for itself, and each size's verdict; ``--out`` keeps the
numbers and ``quantbot.json``. The runners' log lines go to stderr.

Random weights (a stand-in) say nothing of the mixes' quality; the times are real.

    python bench/standin.py llama-3.1-8b /root/standin8b
    python bench/mix_search.py --model /root/standin8b --work /dev/shm/w --out OUT
    python bench/mix_search.py --model smollm2-135m-instruct     # the real model, 2 cores
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import time
from pathlib import Path

from runners.builtin import BUILTIN_MODELS
from runners.gguf.mixes import probe_seconds
from runners.gguf.pipeline import run as run_gguf
from runners.gguf.spec import GgufSpec
from runners.llamacpp import ensure_toolchain, gpu_memory_bytes
from runners.settings import RunSettings
from runners.source import load_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="HF model folder or a built-in's name")
    parser.add_argument("--sizes", default="Q3_K_M,Q4_K_M,Q5_K_M")
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--chunks", type=int, default=8, help="held-out windows per file")
    parser.add_argument("--work", type=Path, default=Path("bench-mix-search"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    # The runners' lines (workers, probes at once, each file's windows) go to stderr.
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)9.0f ms %(message)s")
    model = (BUILTIN_MODELS[args.model].build() if args.model in BUILTIN_MODELS
             else Path(args.model))
    source = load_source(str(model), repo_id="bench/model")
    sizes = tuple(args.sizes.split(","))
    tc = ensure_toolchain()
    shutil.rmtree(args.work, ignore_errors=True)
    repo = args.work / "repo"
    start = time.perf_counter()
    run = run_gguf(source, GgufSpec(types=sizes, imatrix=True, mixes=True),
                   RunSettings(work_dir=args.work / "work", ctx=args.ctx, chunks=args.chunks,
                               answers=0), repo, tc)
    total = time.perf_counter() - start
    search = run.mix_search
    stage = search["stage_seconds"]
    stock = total - stage
    numbers = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, GPU memory "
                   f"{(gpu_memory_bytes() or 0) / 2**30:.0f} GiB",
        "model": str(model), "sizes": list(sizes), "chunks": args.chunks,
        "stock_set_seconds": round(stock, 1), "mix_stage_seconds": stage,
        "search_seconds": search["seconds"], "ratio_stage_over_stock": round(stage / stock, 2),
        "probes": sum(len(s["sweep"]) for s in search["sizes"]),
        "planned_probes": search.get("planned_probes"),
        "sweep_budget": {"minutes": search.get("budget_minutes"),
                         "from": search.get("budget_from"),
                         "stopped": search.get("stopped_by_budget")},
        # Where a probe's time goes (means): its parts, the tool's start to its first window,
        # the tool's whole run; the probes ran ``probe_workers`` at once.
        "probe_seconds": {k: round(v, 2) for k, v in probe_seconds(
            p for s in search["sizes"] for p in s["sweep"]).items()},
        "gap_files": search.get("gap_files", []),
        "verdicts": {m["name"]: m["why"] for m in search["mixes"]},
    }
    print(json.dumps(numbers, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "mix_search.json").write_text(json.dumps(numbers, indent=1))
        run.save(args.out)  # quantbot.json, as the pipeline records it


if __name__ == "__main__":
    main()
