"""The README's "Measured on a real model" table and plot, from one command.

``python bench/real_model.py [-- QUANTBOT OPTIONS]`` runs ``quantbot demo --model
smollm2-135m-instruct`` once per request of :data:`REQUESTS`, each in a fresh process (quantbot's
defaults unless options are given, e.g. ``-- --answers 32 --calib-samples 32`` on a small
machine): the GGUF default set; GPTQ, AWQ and NF4; the i-quants with an importance matrix; MLX
and FP8 dynamic. The block names the settings the runs recorded and whom each format's answers
were compared with. It reads every ``quantbot.json`` they wrote and rewrites the block between
``<!-- real:begin -->`` and ``<!-- real:end -->`` in README.md, and the plot
``bench/results/real-model/quality.png``. ``--render-only`` rewrites both from the saved runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.cards.plot import PlotPoint, draw_quality_plot  # noqa: E402
from bot.cards.quality import answers_cell, interval_text, ppl_cell  # noqa: E402
from bot.methods import METHODS  # noqa: E402
from runners.results import RUN_FILE, QuantRun, load_run  # noqa: E402
from runners.smollm2 import REFERENCE_NOTE  # noqa: E402
from runners.units import human_bytes  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "real-model"
PLOT = RESULTS / "quality.png"
MARK_BEGIN, MARK_END = "<!-- real:begin -->", "<!-- real:end -->"
#: The requests, each its own quantbot run (``--requests`` picks some, so that one request can be
#: run again without the others): the GGUF default set, the transformers-family methods, the
#: i-quants with an importance matrix, MLX and FP8 dynamic.
REQUESTS = {
    "gguf": ("gguf",),
    "transformers": ("gptq", "awq", "nf4"),
    "iquants": ("gguf=IQ2_XXS,IQ2_XS,IQ3_XXS,IQ3_XS,IQ4_XS", "imatrix"),
    "formats": ("mlx", "fp8"),
}


def run_requests(work: Path, names: list[str], extra: list[str]) -> dict[str, float]:
    """The named requests through the real command line; seconds each took."""
    seconds = {}
    for name in names:
        words = REQUESTS[name]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "demo", "--model",
                        "smollm2-135m-instruct", *words, "--out", str(work / name / "hub"),
                        "--work", str(work / name / "work"), *extra], check=True, cwd=ROOT)
        seconds[name] = round(time.perf_counter() - start, 1)
    return seconds


def rows(runs: list[tuple[str, QuantRun]]) -> list[list[str]]:
    """One table row per published file, smallest first."""
    out = []
    for request, run in runs:
        label = METHODS[run.method].label + (" (imatrix)" if request == "iquants" else "")
        for v in run.variants:
            q = v.quality
            names = v.params.get("stands_for") or [v.name]
            out.append((v.size_bytes, [
                label, " = ".join(names), human_bytes(v.size_bytes), f"{v.bits_per_weight:.2f}",
                ppl_cell(q),
                interval_text(q.kld_mean, q.kld_err, ".4f"),
                "n/a" if q.kld_p99 is None else f"{q.kld_p99:.3f}",
                interval_text(q.same_top_p, q.same_top_err, ".1f", 100),
                answers_cell(v.answers), str(v.params.get("eval_tokens", ""))]))
    return [cells for _, cells in sorted(out, key=lambda r: r[0])]


def references(runs: list[tuple[str, QuantRun]]) -> str:
    """Whom each format's answers were compared with, as the records say (e.g. "GGUF against the
    BF16 GGUF in llama-cpp-python; MLX against the unquantized model in mlx-lm")."""
    by_reference: dict[str, list[str]] = {}
    for _, run in runs:
        for v in run.variants:
            if v.answers is not None:
                labels = by_reference.setdefault(v.answers.reference, [])
                if METHODS[run.method].label not in labels:
                    labels.append(METHODS[run.method].label)
    return "; ".join(f"{', '.join(labels)} against {reference}"
                     for reference, labels in by_reference.items())


def finished(work: Path, request: str) -> list[Path]:
    """The request's published folders; while it runs (or after it was stopped), the folders of
    the methods it has finished, which hold the same records before publishing."""
    published = work / request / "hub" / "quantbot"
    if published.is_dir():
        return sorted(published.iterdir())
    return sorted(p.parent for p in (work / request / "work").glob(f"*/*/repo/*/{RUN_FILE}"))


def render(work: Path) -> str:
    runs = [(request, load_run(folder)) for request in REQUESTS
            for folder in finished(work, request)]
    made = {(request, run.method) for request, run in runs}
    missing = [f"{request}: {word.split('=')[0]}" for request, words in REQUESTS.items()
               for word in words if word in METHODS or word.split("=")[0] in METHODS
               if (request, word.split("=")[0]) not in made]
    first = runs[0][1]
    baselines = "; ".join(dict.fromkeys(
        f"{run.evaluation.evaluator}: {interval_text(run.baseline.ppl, run.baseline.ppl_err, '.3f')}"
        for _, run in runs))
    answers = next(v.answers for _, run in runs for v in run.variants if v.answers)
    points = [PlotPoint(format=METHODS[run.method].label + (" imatrix" if r == "iquants" else ""),
                        name=v.name, size_bytes=v.size_bytes, kld=v.quality.kld_mean)
              for r, run in runs for v in run.variants]
    RESULTS.mkdir(parents=True, exist_ok=True)
    draw_quality_plot(points, "SmolLM2-135M-Instruct: KL divergence against size", PLOT)
    versions = first.provenance.get("versions", {})
    settings = first.provenance.get("settings", {})
    header = ["Format", "File", "Size", "Bits/weight", "PPL", "KLD", "p99 KLD", "Same top %",
              "Answers like the original", "Tokens"]
    lines = [
        f"Made by `python bench/real_model.py` on {platform.machine()} "
        f"({len(os.sched_getaffinity(0))} cores): at most "
        f"{first.evaluation.chunks} windows of {first.evaluation.ctx} tokens of "
        f"{first.evaluation.text_name} ({first.evaluation.n_tokens} tokens), and "
        f"{answers.prompts} chat prompts answered with up to {answers.max_new_tokens} new tokens "
        f"({references(runs)}); each file measured on windows added until its KLD settled "
        f"(**Tokens** is the scored tokens it used); GPTQ/AWQ calibrated on "
        f"{settings.get('calib_samples')} x {settings.get('calib_len')} tokens of quantbot's "
        f"calibration text. ± is the 95 % interval. "
        f"Reference: {REFERENCE_NOTE}. Unquantized PPL on all windows: {baselines}; each row's "
        f"PPL is on the tokens it used, and in brackets its change against the original's PPL "
        f"on those same tokens (paired, with its own 95 % interval). "
        f"Versions: " + ", ".join(f"{k} {versions[k]}" for k in
                                  ("llama-cpp-python", "gptqmodel", "bitsandbytes",
                                   "compressed-tensors", "mlx-lm", "transformers", "torch")
                                  if k in versions)
        + ".",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " ---- |" * len(header),
        *("| " + " | ".join(cells) + " |" for cells in rows(runs)),
        "",
        f"![KL divergence against size, every file]({PLOT.relative_to(ROOT)})",
    ]
    if missing:
        lines.insert(1, f"\nNot measured yet (the run stopped before them): {', '.join(missing)}.")
    return "\n".join(lines)


def rewrite_readme(block: str, readme: Path) -> None:
    text = readme.read_text()
    pattern = re.compile(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme} has no {MARK_BEGIN} … {MARK_END} block")
    readme.write_text(pattern.sub(lambda _: f"{MARK_BEGIN}\n{block}\n{MARK_END}", text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("/tmp/quantbot-real-model"))
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--requests", default=",".join(REQUESTS),
                        help=f"which requests to run, comma-separated (of {', '.join(REQUESTS)})")
    parser.add_argument("extra", nargs="*", help="more quantbot options, e.g. --chunks 16")
    args = parser.parse_args()
    names = [n for n in args.requests.split(",") if n]
    unknown = sorted(set(names) - set(REQUESTS))
    if unknown:
        parser.error(f"unknown request {', '.join(unknown)}: use some of {', '.join(REQUESTS)}")
    if not args.render_only:
        for request, took in run_requests(args.work, names, args.extra).items():
            print(f"{request}: {took:.0f} s")  # a shared machine's wall time: printed, not kept
    rewrite_readme(render(args.work), ROOT / "README.md")


if __name__ == "__main__":
    main()
