"""The support matrix: every stand-in through ``quantbot quantize``, per method, into README.md.

``python -m runners.standins.matrix`` builds the zoo (cached), runs each stand-in x method
through the real command line in a fresh process (``quantbot quantize DIR --repo-id zoo/<name>
WORDS`` with a tiny evaluation), records works / fails with the tool's own error / unsupported by
the tool (the support snapshot, not tried), saves the records as JSON beside the stand-ins and
rewrites the block between ``<!-- zoo:begin -->`` and ``<!-- zoo:end -->`` in README.md.
``--render-only`` rewrites the block from the saved records. ``tests/test_zoo.py`` runs the same
commands (:func:`quantize_args`) through click's CliRunner.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from runners.paths import cache_dir
from runners.progress import progress
from runners.standins.build import build_standin
from runners.standins.zoo import BY_NAME, KNOWN_FAILURES, ZOO, KnownFailure, StandIn
from runners.support.registry import snapshot_versions, support

log = logging.getLogger(__name__)

#: What each matrix column asks for, as the words after ``quantbot quantize SOURCE``.
METHOD_WORDS: dict[str, tuple[str, ...]] = {
    "gguf": ("gguf=Q4_K_M,Q8_0",), "gptq": ("gptq",), "awq": ("awq",), "nf4": ("nf4",)}
#: The support snapshot's section for each method (as bot/methods.py registers them).
METHOD_SUPPORT = {"gguf": "converter", "gptq": "gptqmodel", "awq": "gptqmodel",
                  "nf4": "transformers"}
#: A tiny evaluation and calibration: the point is that every step runs, not the numbers.
SETTINGS = ("--ctx", "64", "--chunks", "4", "--answers", "0", "--device", "cpu",
            "--calib-samples", "4", "--calib-len", "64")
MARK_BEGIN, MARK_END = "<!-- zoo:begin -->", "<!-- zoo:end -->"
RESULTS = "matrix.json"


@dataclass(frozen=True)
class Trial:
    """One stand-in x one method: ``works``, ``text-only`` (a vision model published without
    its vision tower), ``fails`` or ``unsupported`` (not tried)."""

    standin: str
    method: str
    status: str
    detail: str  # the tool's error, or the support snapshot's reason, or what was made
    seconds: float = 0.0
    projector: str = ""  # gguf of a vision model: works / fails / "" (not applicable)
    known: str = ""  # why, when the failure is a recorded known one (zoo.KNOWN_FAILURES)


def quantize_args(model_dir: Path, standin: StandIn, method: str, out: Path,
                  work: Path) -> list[str]:
    """``quantbot`` arguments that run ``method`` on the stand-in's folder."""
    return ["quantize", str(model_dir), "--repo-id", f"zoo/{standin.name}",
            *METHOD_WORDS[method], *SETTINGS, "--out", str(out), "--work", str(work)]


def verdict(model_dir: Path, method: str) -> tuple[bool, str]:
    """Whether the method's tool registers the folder's architecture, and the snapshot's reason."""
    config = json.loads((model_dir / "config.json").read_text())
    text_archs = (config.get("text_config") or {}).get("architectures") or [None]
    v = support(config["architectures"][0], config.get("model_type"),
                {method: METHOD_SUPPORT[method]}, text_architecture=text_archs[0])[method]
    return v.supported, v.reason


def error_of(output: str) -> str:
    """The tool's own error from ``quantbot``'s output: its ``Error:`` line and, when a tool
    exited non-zero, the exception line it ended with (one line, at most 400 characters)."""
    lines = output.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Error:")), None)
    if start is None:
        tail = [line for line in lines if line.strip()][-3:]
        return " | ".join(t.strip() for t in tail)[-400:]
    head = lines[start].removeprefix("Error:").strip()
    exc = [line.strip() for line in lines[start + 1:]
           if re.match(r"\s*([\w.]*(Error|Exception)\b|error\b).*:", line, re.IGNORECASE)
           or re.fullmatch(r"[\w.]*(Error|Exception|StopIteration)", line.strip())]
    if not exc:  # a C tool: its first error line is the cause (llama.cpp logs "E ...: error")
        exc = [re.sub(r"^[\d.]+ E ", "", line.strip()) for line in lines[start + 1:]
               if "error" in line.lower()][:1]
    text = f"{head} {exc[-1]}" if exc and exc[-1] not in head else head
    frames = re.findall(r'File "[^"]*?([\w]+\.py)", line \d+, in (\w+)', output)
    if frames:  # where the tool raised it: the last frames of its traceback
        text += " (raised in " + " > ".join(f"{f}:{fn}" for f, fn in frames[-3:]) + ")"
    return re.sub(r"\s+", " ", text.split(". Fix:")[0])[:400]


def known(standin: str, method: str, output: str) -> KnownFailure | None:
    """The recorded known failure for this trial if the tool's ``output`` shows it."""
    k = KNOWN_FAILURES.get((standin, method))
    return k if k and k.match in output else None


def _quantbot() -> list[str]:
    script = Path(sys.executable).with_name("quantbot")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


def run_trial(standin: StandIn, model_dir: Path, method: str, scratch: Path) -> Trial:
    """Run one method on one stand-in in a fresh ``quantbot`` process."""
    ok, reason = verdict(model_dir, method)
    if not ok:
        return Trial(standin.name, method, "unsupported", reason)
    out, work = scratch / "hub", scratch / "work"
    start = time.perf_counter()
    proc = subprocess.run([*_quantbot(), *quantize_args(model_dir, standin, method, out, work)],
                          capture_output=True, text=True, check=False)
    seconds = round(time.perf_counter() - start, 1)
    output = proc.stdout + proc.stderr
    projector = ""
    if method == "gguf" and standin.multimodal:
        made = sorted(p.name for p in out.glob(f"*/{standin.name}-GGUF/mmproj-*.gguf"))
        projector = "works" if proc.returncode == 0 and made else "fails"
    if proc.returncode != 0:
        k = known(standin.name, method, output)
        return Trial(standin.name, method, "fails", error_of(output), seconds, projector,
                     k.why if k else "")
    made_files = sorted(p.name for p in out.glob(f"*/{standin.name}-*/*") if p.is_file())
    dropped = _dropped_parts(model_dir, out, standin)
    if dropped:
        return Trial(standin.name, method, "text-only", dropped, seconds, projector)
    return Trial(standin.name, method, "works", ", ".join(made_files), seconds, projector)


def _dropped_parts(model_dir: Path, out: Path, standin: StandIn) -> str:
    """For a vision model's transformers-family output: the class it was saved as, if that is
    no longer the source's (a text-only class drops the vision tower), else ``""``."""
    if not standin.multimodal:
        return ""
    source = json.loads((model_dir / "config.json").read_text())["architectures"][0]
    saved = {json.loads(c.read_text()).get("architectures", [""])[0]
             for c in out.glob(f"*/{standin.name}-*/**/config.json")}
    changed = sorted(a for a in saved if a != source)
    return (f"saved as {', '.join(changed)} (source: {source}): transformers' AutoModelForCausalLM "
            "class for it has no vision tower, so the published model has none") if changed else ""


def run_zoo(names: Sequence[str], methods: Sequence[str], root: Path | None = None,
            workers: int = 2, keep: Path | None = None) -> list[Trial]:
    """Build and run each named stand-in x method; one fresh scratch folder per trial (kept
    as ``keep/<name>-<method>/`` when ``keep`` is given, for a caller to inspect).

    Trials run ``workers`` at a time: each is a fresh ``quantbot`` process whose time goes mostly
    to single-threaded work (Python imports, conversion, tiny tools), so two share two cores
    well. Results come back in the order asked.
    """
    pairs = [(name, method) for name in names for method in methods]
    with ThreadPoolExecutor(max_workers=1) as builder:
        built = {name: builder.submit(build_standin, BY_NAME[name], root) for name in names}

        def one(pair: tuple[str, str]) -> Trial:
            name, method = pair
            model_dir = built[name].result()
            if keep is not None:
                scratch = keep / f"{name}-{method}"
                scratch.mkdir(parents=True, exist_ok=True)
                trial = run_trial(BY_NAME[name], model_dir, method, scratch)
            else:
                with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-{method}-") as tmp:
                    trial = run_trial(BY_NAME[name], model_dir, method, Path(tmp))
            log.info("%s %s: %s (%.0f s) %s", name, method, trial.status, trial.seconds,
                     trial.detail[:200])
            return trial

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(progress(pool.map(one, pairs), total=len(pairs), desc="zoo", unit="trial"))


class _Notes:
    """Numbered notes under the table; failures with the same known cause share one."""

    def __init__(self) -> None:
        self.items: list[tuple[str, list[str], str]] = []  # (why, cells, first error)

    def add(self, why: str, cell: str, error: str) -> int:
        for i, (w, cells, _) in enumerate(self.items, 1):
            if why and w == why:
                cells.append(cell)
                return i
        self.items.append((why, [cell], error))
        return len(self.items)

    def lines(self) -> list[str]:
        out = []
        for i, (why, cells, error) in enumerate(self.items, 1):
            where = ", ".join(cells)
            text = f"{why} Error: `{error}`" if why and error else why or f"`{error}`"
            out.append(f"{i}. {where}: {text}")
        return out


def _cell(trial: Trial | None, notes: _Notes) -> str:
    if trial is None:
        return "not run"
    if trial.status == "works":
        return f"works ({trial.seconds:.0f} s)"
    if trial.status == "unsupported":
        return "unsupported"
    where = f"{trial.standin} {trial.method.upper()}"
    if trial.status == "text-only":
        return f"text only [{notes.add(f'Works, but {trial.detail}.', where, '')}]"
    k = known(trial.standin, trial.method, trial.detail)
    return f"fails [{notes.add(k.why if k else trial.known, where, trial.detail)}]"


def _projector_cell(standin: StandIn, trial: Trial | None) -> str:
    if not standin.multimodal:
        return "-"
    if trial is None or trial.status == "unsupported":
        return "not run"
    return trial.projector or "fails"


def render(trials: Sequence[Trial], methods: Sequence[str]) -> str:
    """The Markdown block: one row per stand-in, a column per method, numbered failure notes."""
    by = {(t.standin, t.method): t for t in trials}
    notes = _Notes()
    head = ["architecture (stand-in)", "stands for", "MoE", "GGUF", "GGUF mmproj",
            *(m.upper() for m in methods if m != "gguf")]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for s in ZOO:
        if not any((s.name, m) in by for m in methods):
            continue
        cells = [f"{s.architecture} (`{s.name}`)", s.stands_for, "yes" if s.moe else "",
                 _cell(by.get((s.name, "gguf")), notes) if "gguf" in methods else "not run",
                 _projector_cell(s, by.get((s.name, "gguf"))),
                 *(_cell(by.get((s.name, m)), notes) for m in methods if m != "gguf")]
        rows.append("| " + " | ".join(cells) + " |")
    unsupported = sorted({f"{t.method.upper()}: {t.detail}" for t in trials
                          if t.status == "unsupported"})
    versions = ", ".join(f"{k} {v}" for k, v in sorted(snapshot_versions().items()))
    lines = [f"Made by `python -m runners.standins.matrix` ({versions}): each cell is "
             "`quantbot quantize` of a tiny random stand-in with the real tokenizer on 2 CPU "
             "cores, two trials at a time, with its wall time (so the times are only a rough "
             "guide). NF4, GPTQ and AWQ keep a vision model's tower in 16-bit.", "", *rows]
    if notes.items:
        lines += ["", *notes.lines()]
    if unsupported:
        lines += ["", "Unsupported (support snapshot, not tried): " + "; ".join(unsupported)]
    return "\n".join(lines)


def rewrite_readme(readme: Path, block: str) -> None:
    """Replace what lies between the zoo markers (which must be there) with ``block``."""
    text = readme.read_text(encoding="utf-8")
    if MARK_BEGIN not in text or MARK_END not in text:
        raise SystemExit(f"{readme} has no {MARK_BEGIN} … {MARK_END} block")
    before, rest = text.split(MARK_BEGIN, 1)
    after = rest.split(MARK_END, 1)[1]
    readme.write_text(f"{before}{MARK_BEGIN}\n{block}\n{MARK_END}{after}", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated stand-in names (default: all)")
    parser.add_argument("--methods", default=",".join(METHOD_WORDS),
                        help="comma-separated methods (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="trials at a time (%(default)s)")
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--results", type=Path, default=None,
                        help=f"records file (default: <cache>/standins/{RESULTS})")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite README.md from the saved records without running anything")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    methods = [m for m in args.methods.split(",") if m]
    results = args.results or cache_dir() / "standins" / RESULTS
    saved = [Trial(**t) for t in json.loads(results.read_text())] if results.is_file() else []
    if not args.render_only:
        names = [n for n in args.only.split(",") if n] or [s.name for s in ZOO]
        fresh = run_zoo(names, methods, workers=args.workers)
        done = {(t.standin, t.method) for t in fresh}
        saved = [t for t in saved if (t.standin, t.method) not in done] + fresh
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps([asdict(t) for t in saved], indent=1))
    rewrite_readme(args.readme, render(saved, methods))
    log.info("wrote the matrix of %d trials into %s", len(saved), args.readme)


if __name__ == "__main__":
    main()
