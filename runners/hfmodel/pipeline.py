"""A transformers-family method end to end: baseline once, then per variant quantize → reload
check → measure.

GPTQ, AWQ, NF4 and FP8 differ only in how one variant is made (a :class:`Quantizer`: a worker
module run in a fresh process), MLX also in where its variants are loaded (a :class:`Runtime`:
mlx-lm instead of transformers); everything else — the unquantized baseline scored once by
transformers and shared by every method of a model (the work folder is the model's), the reload
in a fresh process, PPL/KLD on the same windows, answer agreement with the unquantized model in
the same runtime, the run record — is this module.

Each variant is made in its own work folder (``<work>/variants/<name>/``; one that already passed
verification is reused, so a rerun after a failure resumes), then laid out in the repository
folder as published (:mod:`runners.results`): the first variant of the spec, the default, at the
root (``main``), so ``from_pretrained(repo_id)`` and ``vllm serve repo_id`` load it as they did
TheBloke's repositories; every other variant in ``.branches/<name>/``, its branch. Files are
hard-linked, not copied, where the file system allows. The reload check then loads each variant
from that folder, as a user loads the repository root or the branch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from runners.answers import Answers, PromptSet, compare
from runners.errors import QuantbotError
from runners.evaluation_mix import EvaluationText
from runners.hfmodel import evaluate, worker
from runners.hfmodel.calibration import calibration_set, evaluation_blocks
from runners.hfmodel.check import check_folder
from runners.hfmodel.types import CalibrationSet, Measurement, QuantOutcome
from runners.proc import ToolFailed
from runners.results import BRANCHES_DIR, MAIN_BRANCH, EvalSpec, Quality, QuantRun, Variant, branch_dir
from runners.settings import RunSettings
from runners.source import SourceModel

log = logging.getLogger(__name__)


class HfVariant(Protocol):
    """One variant of a transformers-family method (a frozen dataclass)."""

    @property
    def name(self) -> str: ...

    def params(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Runtime:
    """Where a method's variants are loaded, measured and answer the prompts in a fresh process.

    ``check_module`` answers :func:`runners.hfmodel.check.check_folder`'s request. The
    unquantized baseline is always scored by transformers (one set of log-probs per model, so
    every method is measured against the same reference); answer agreement compares each variant
    with the unquantized model answering in the same runtime, saved as ``answers-<reference>``.
    """

    name: str
    check_module: str
    reference: str


TRANSFORMERS = Runtime("transformers", "runners.hfmodel.check", "reference")


@dataclass(frozen=True)
class Quantizer:
    """How one method makes a variant folder.

    ``module`` runs as ``python -m MODULE REQUEST.json RESULT.json`` (:mod:`runners.hfmodel.worker`)
    and answers a :class:`QuantOutcome`; ``verify(folder, variant)`` lists a finished folder's
    files or raises; ``env`` is what the worker needs in its environment; ``runtime`` is where
    the variants are checked and measured.
    """

    module: str
    verify: Callable[[Path, Any], list[str]]
    calibrated: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    runtime: Runtime = TRANSFORMERS


def bits_per_weight(size_bytes: int, n_params: int) -> float:
    """Whole-folder bits per source weight (embeddings and norms included, as for GGUF)."""
    return round(size_bytes * 8 / n_params, 3) if n_params else 0.0


def quantize_variant(quantizer: Quantizer, source: Path, variant: HfVariant, out_dir: Path,
                     calibration: CalibrationSet | None, settings: RunSettings,
                     log_file: Path) -> QuantOutcome:
    """Make one variant in a fresh process; its peak RSS is that process's own."""
    try:
        data, run = worker.call(quantizer.module, f"quantize-{variant.name}", {
            "source": str(source), "variant": asdict(variant),  # type: ignore[call-overload]
            "out_dir": str(out_dir), "calibration": asdict(calibration) if calibration else None,
            "device": settings.device, "dtype": settings.dtype, "batch_size": settings.batch_size,
            "side_dir": str(settings.work_dir / "logs")},
            settings.work_dir, {**os.environ, **quantizer.env}, log_file)
    except ToolFailed as exc:
        raise QuantbotError(f"{variant.name}: quantization failed: {exc.problem.strip()}",
                            "read the quantizer's error above") from exc
    return QuantOutcome(**{**data, "folder": Path(data["folder"]),
                           "peak_rss_bytes": run.peak_rss_bytes})


def _reuse(quantizer: Quantizer, folder: Path, variant: HfVariant, work: Path) -> QuantOutcome | None:
    """A finished variant from an earlier run (verified folder and its recorded outcome)."""
    record = work / f"{variant.name}.outcome.json"
    if not (folder.is_dir() and record.is_file()):
        return None
    try:
        quantizer.verify(folder, variant)
    except QuantbotError:
        return None
    data = json.loads(record.read_text())
    recipe = asdict(variant)  # type: ignore[call-overload]
    if data.get("recipe") != recipe or data.get("folder") != str(folder):
        return None
    log.info("%s: reusing %s", variant.name, folder)
    data.pop("recipe")
    return QuantOutcome(**{**data, "folder": folder})


def _clear_layout(repo_dir: Path, keep: Path) -> None:
    """Empty ``repo_dir`` of an earlier run's layout (root files, branch folders, the old
    ``<repo>/<variant>/`` folders), keeping other hidden entries and anything holding ``keep``."""
    for entry in repo_dir.iterdir():
        if entry.name.startswith(".") and entry.name != BRANCHES_DIR:
            continue
        if keep.resolve().is_relative_to(entry.resolve()):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _place(made: Path, files: list[str], dest: Path) -> None:
    """Put a made variant's files where its branch lies in the repository folder."""
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(made / name, target)
        except OSError:
            shutil.copy2(made / name, target)


def _baseline(source: SourceModel, settings: RunSettings, eval_req: dict[str, Any],
              log_file: Path, env: dict[str, str]) -> Measurement:
    baseline_dir = Path(eval_req["baseline_dir"])
    record = baseline_dir / "measurement.json"
    answers = _answer_files(settings, baseline_dir, "reference")
    if evaluate.baseline_ready(baseline_dir, eval_req["key"]) and record.is_file():
        data = json.loads(record.read_text())
        base = Measurement(**{**data, "quality": Quality(**data["quality"])})
        log.info("baseline reused: PPL %.4f", base.quality.ppl)
        if answers is not None and not answers[1].is_file():  # a new prompt set: answer it
            check_folder(source.path, settings.work_dir, settings.device, settings.check_tokens,
                         quantized=False, env=env, log_file=log_file, answers=answers)
        return base
    log.info("baseline: scoring the unquantized %s", source.path)
    checked = check_folder(source.path, settings.work_dir, settings.device, settings.check_tokens,
                           quantized=False, evaluation={**eval_req, "write_baseline": True},
                           env=env, log_file=log_file, answers=answers)
    assert checked.measurement is not None
    record.write_text(json.dumps(asdict(checked.measurement)))
    return checked.measurement


def _answer_files(settings: RunSettings, folder: Path, name: str) -> tuple[Path, Path] | None:
    """The prompt set and where ``name``'s answers to it go (named by the set's hash)."""
    prompts = settings.answer_prompts_file
    if prompts is None:
        return None
    key = hashlib.sha256(prompts.read_bytes()).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    return prompts, folder / f"answers-{name}.{key}.json"


def _runtime_reference(source: SourceModel, settings: RunSettings, runtime: Runtime,
                       baseline_dir: Path, log_file: Path, env: dict[str, str]) -> None:
    """The unquantized model's answers in ``runtime`` (transformers' come with the baseline)."""
    answers = _answer_files(settings, baseline_dir, runtime.reference)
    if runtime == TRANSFORMERS or answers is None or answers[1].is_file():
        return
    log.info("reference answers: the unquantized %s in %s", source.path, runtime.name)
    check_folder(source.path, settings.work_dir, settings.device, settings.check_tokens,
                 quantized=False, env=env, log_file=log_file, answers=answers,
                 module=runtime.check_module, runtime=runtime.name)


def _agreement(settings: RunSettings, baseline_dir: Path, made: tuple[Path, Path] | None,
               runtime: Runtime) -> Answers | None:
    """How a variant's answers compare with the unquantized model's, both in ``runtime``."""
    reference = _answer_files(settings, baseline_dir, runtime.reference)
    if made is None or reference is None or not reference[1].is_file():
        return None
    prompts = PromptSet.read(made[0])
    ref = json.loads(reference[1].read_text(encoding="utf-8"))
    got = json.loads(made[1].read_text(encoding="utf-8"))
    return compare(prompts.ids, ref["tokens"], got["tokens"], got["texts"],
                   prompts.max_new_tokens, f"the unquantized model in {runtime.name}")


def run_variants(source: SourceModel, method: str, variants: list[HfVariant],
                 quantizer: Quantizer, settings: RunSettings, repo_dir: Path,
                 tools: dict[str, str]) -> QuantRun:
    """Make, check and measure every variant into ``repo_dir``; return the run's record."""
    from transformers import AutoTokenizer

    if not variants:
        raise QuantbotError(f"no {method} variant requested", "name at least one variant")
    work = settings.work_dir
    work.mkdir(parents=True, exist_ok=True)
    repo_dir.mkdir(parents=True, exist_ok=True)
    log_file = work / "tools.log"
    tokenizer = AutoTokenizer.from_pretrained(source.path)
    calibration = (calibration_set(tokenizer, settings.calib_len, settings.calib_samples)
                   if quantizer.calibrated else None)
    blocks, labels, eval_text = evaluation_blocks(
        tokenizer, settings.ctx, settings.chunks,
        EvaluationText.read(settings.evaluation_file) if settings.evaluation_file else None)
    blocks_file = work / "eval-blocks.json"
    blocks_file.write_text(json.dumps(blocks))
    key = evaluate.baseline_key(blocks, f"{source.info.repo_id}:{source.info.n_params}")
    # On CPU, skip the kernels' torch.compile (inductor builds C++ for ~40 s per process; the
    # numbers are the same).
    env = {"TORCHDYNAMO_DISABLE": "1"} if settings.device == "cpu" else {}
    eval_req = {"blocks_file": str(blocks_file), "baseline_dir": str(work / "baseline"),
                "key": key, "adaptive": settings.adaptive, "labels": labels}
    base = _baseline(source, settings, eval_req, log_file, env)
    runtime = quantizer.runtime
    _runtime_reference(source, settings, runtime, Path(eval_req["baseline_dir"]), log_file, env)

    made: list[Variant] = []
    tool_version = ""
    _clear_layout(repo_dir, keep=work)
    for index, variant in enumerate(variants):
        folder = work / "variants" / variant.name
        outcome = _reuse(quantizer, folder, variant, work)
        if outcome is None:
            shutil.rmtree(folder, ignore_errors=True)  # a partial folder from a failed run
            outcome = quantize_variant(quantizer, source.path, variant, folder, calibration,
                                       settings, log_file)
        tool_version = outcome.tool_version or tool_version
        (work / f"{variant.name}.outcome.json").write_text(json.dumps(
            {**asdict(outcome), "folder": str(folder),
             "recipe": asdict(variant)}))  # type: ignore[call-overload]
        branch = MAIN_BRANCH if index == 0 else variant.name
        published = branch_dir(repo_dir, branch)
        _place(folder, outcome.files, published)
        answer_files = _answer_files(settings, work / "answers", variant.name)
        checked = check_folder(published, work, settings.device, settings.check_tokens,
                               evaluation=eval_req, env=env, log_file=log_file,
                               answers=answer_files, module=runtime.check_module,
                               runtime=runtime.name)
        measured = checked.measurement
        assert measured is not None
        log.info("%s (branch %s): PPL %.4f (base %.4f), KLD %.5f, %d bytes", variant.name,
                 branch, measured.quality.ppl, base.quality.ppl, measured.quality.kld_mean or 0.0,
                 outcome.size_bytes)
        made.append(Variant(
            method=method, name=variant.name, branch=branch,
            files=sorted(outcome.files), size_bytes=outcome.size_bytes,
            bits_per_weight=bits_per_weight(outcome.size_bytes, source.info.n_params),
            ram_bytes=checked.peak_vram_bytes or checked.peak_rss_bytes,
            peak_rss_bytes=outcome.peak_rss_bytes, quality=measured.quality,
            check_output=checked.text,
            answers=_agreement(settings, Path(eval_req["baseline_dir"]), answer_files, runtime),
            params={**variant.params(), "quant_seconds": outcome.seconds,
                    "quant_peak_vram_bytes": outcome.peak_vram_bytes,
                    "calibration_tokens": outcome.calibration_tokens,
                    "kernel": checked.load_class, "eval_dtype": measured.dtype,
                    "eval_chunks": measured.windows, "eval_tokens": measured.n_scored,
                    "eval_device": checked.device}))
    calibrated = ({"calibration": f"{calibration.text_name}: {len(calibration.blocks)} x "
                                  f"{settings.calib_len} tokens",
                   "calibration_sha256": calibration.text_sha256} if calibration else {})
    return QuantRun(
        method=method, source=source.info, baseline=base.quality,
        evaluation=EvalSpec(text_name=eval_text.name,
                            text_sha256=eval_text.sha256, n_tokens=len(blocks) * settings.ctx,
                            ctx=settings.ctx, chunks=len(blocks),
                            evaluator="transformers (second half of each window scored, "
                                      "as llama-perplexity)"),
        variants=made,
        tools={"quantizer": tool_version or method, **calibrated, **tools},
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def serve_quantizer(module: str, make: Callable[[dict[str, Any]], QuantOutcome],
                    argv: list[str] | None = None) -> int:
    """A quantizer worker's ``main``: answer the request with ``make``'s outcome."""
    def answer(request: dict[str, Any]) -> dict[str, Any]:
        outcome = make(request)
        return {**asdict(outcome), "folder": str(outcome.folder)}

    return worker.serve(module, answer, argv)
