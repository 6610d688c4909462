"""GPTQ or AWQ end to end: baseline once, then per variant quantize → reload-check → measure.

Each variant goes to its own folder inside the repository folder (``<repo>/<variant name>/``),
a complete model folder that ``from_pretrained(repo, subfolder=...)`` loads. Quantization and the
check run in fresh processes, one after the other (one GPU). A variant folder that already passed
verification is reused, so a rerun after a failure resumes.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runners.errors import QuantbotError
from runners.gptq import evaluate
from runners.gptq.calibration import calibration_set, evaluation_blocks
from runners.gptq.check import check_folder
from runners.gptq.quantize import quantize_in_subprocess, verify_folder
from runners.gptq.types import Measurement, QuantOutcome, QuantSpec
from runners.results import EvalSpec, Quality, QuantRun, Variant
from runners.source import SourceModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GptqOptions:
    """What to make and how to measure it (defaults: the usual GPTQ/AWQ recipes)."""

    specs: list[QuantSpec]
    work_dir: Path
    device: str = "auto"
    dtype: str = "auto"
    calib_samples: int = 128
    calib_len: int = 512
    ctx: int = 512
    chunks: int = 32
    batch_size: int = 1
    check_tokens: int = 16

    def __post_init__(self) -> None:
        if not self.specs:
            raise QuantbotError("no GPTQ/AWQ variant requested", "name at least one variant")
        methods = {s.method for s in self.specs}
        if len(methods) != 1:
            raise QuantbotError("one run mixes GPTQ and AWQ variants",
                                "run GPTQ and AWQ separately: each makes its own repository")
        if self.ctx < 8 or self.chunks < 1:
            raise QuantbotError(f"bad evaluation window {self.chunks} x {self.ctx}",
                                "use --ctx 8 or more and at least one chunk")

    @property
    def method(self) -> str:
        return self.specs[0].method


def to_quality(m: Measurement) -> Quality:
    return Quality(ppl=round(m.ppl, 4), ppl_err=round(m.ppl_err, 4),
                   kld_mean=None if m.kld_mean is None else round(m.kld_mean, 6),
                   kld_err=None if m.kld_err is None else round(m.kld_err, 6),
                   kld_p99=None if m.kld_p99 is None else round(m.kld_p99, 6),
                   same_top_p=None if m.same_top_p is None else round(m.same_top_p, 4))


def bits_per_weight(size_bytes: int, n_params: int) -> float:
    """Whole-folder bits per source weight (embeddings and norms included, as for GGUF)."""
    return round(size_bytes * 8 / n_params, 3) if n_params else 0.0


def run_gptq(source: SourceModel, opts: GptqOptions, repo_dir: Path) -> QuantRun:
    """Make, check and measure every variant into ``repo_dir``; return the run's record."""
    from transformers import AutoTokenizer

    work = opts.work_dir
    work.mkdir(parents=True, exist_ok=True)
    repo_dir.mkdir(parents=True, exist_ok=True)
    log_file = work / "tools.log"
    tokenizer = AutoTokenizer.from_pretrained(source.path)
    calibration = calibration_set(tokenizer, opts.calib_len, opts.calib_samples)
    blocks, eval_text = evaluation_blocks(tokenizer, opts.ctx, opts.chunks)
    blocks_file = work / "eval-blocks.json"
    blocks_file.write_text(json.dumps(blocks))
    key = evaluate.baseline_key(blocks, f"{source.info.repo_id}:{source.info.n_params}")
    baseline_dir = work / "baseline"
    # On CPU, skip the kernels' torch.compile (inductor builds C++ for ~40 s per process; the
    # numbers are the same).
    env = {"TORCHDYNAMO_DISABLE": "1"} if opts.device == "cpu" else {}
    eval_req = {"blocks_file": str(blocks_file), "baseline_dir": str(baseline_dir), "key": key}

    if evaluate.baseline_ready(baseline_dir, key):
        base = Measurement(**json.loads((baseline_dir / "measurement.json").read_text()))
        log.info("baseline reused: PPL %.4f", base.ppl)
    else:
        log.info("baseline: %s on %d windows of %d tokens", source.path, len(blocks), opts.ctx)
        checked = check_folder(source.path, work, opts.device, opts.check_tokens,
                               quantized=False, evaluation={**eval_req, "write_baseline": True},
                               env=env, log_file=log_file)
        base = checked.measurement
        assert base is not None
        (baseline_dir / "measurement.json").write_text(json.dumps(base.__dict__))

    variants = []
    for spec in opts.specs:
        folder = repo_dir / spec.name
        outcome = _reuse(folder, spec, work)
        if outcome is None:
            shutil.rmtree(folder, ignore_errors=True)  # a partial folder from a failed run
            outcome = quantize_in_subprocess(
            source.path, spec, folder, calibration, work, opts.device, opts.dtype,
            opts.batch_size, log_file)
        (work / f"{spec.name}.outcome.json").write_text(json.dumps(
            {**outcome.__dict__, "spec": spec.__dict__, "folder": str(folder)}))
        checked = check_folder(folder, work, opts.device, opts.check_tokens,
                               evaluation=eval_req, env=env, log_file=log_file)
        assert checked.measurement is not None
        log.info("%s: PPL %.4f (base %.4f), KLD %.5f, %d bytes", spec.name,
                 checked.measurement.ppl, base.ppl, checked.measurement.kld_mean or 0.0,
                 outcome.size_bytes)
        variants.append(Variant(
            method=spec.method, name=spec.name,
            files=[f"{spec.name}/{f}" for f in outcome.files], size_bytes=outcome.size_bytes,
            bits_per_weight=bits_per_weight(outcome.size_bytes, source.info.n_params),
            ram_bytes=checked.peak_vram_bytes or checked.peak_rss_bytes,
            peak_rss_bytes=outcome.peak_rss_bytes, quality=to_quality(checked.measurement),
            check_output=checked.text,
            params={**spec.params(), "quant_seconds": outcome.seconds,
                    "quant_peak_vram_bytes": outcome.peak_vram_bytes,
                    "calibration_tokens": outcome.calibration_tokens,
                    "kernel": checked.load_class, "eval_dtype": checked.measurement.dtype,
                    "eval_device": checked.device}))
    return QuantRun(
        method=opts.method, source=source.info, baseline=to_quality(base),
        evaluation=EvalSpec(text_name=f"{eval_text.name}, evaluation split",
                            text_sha256=eval_text.sha256, n_tokens=len(blocks) * opts.ctx,
                            ctx=opts.ctx, chunks=len(blocks),
                            evaluator="transformers (second half of each window scored, "
                                      "as llama-perplexity)"),
        variants=variants,
        tools={"quantizer": outcome_tool(work, opts.specs),
               "calibration": f"{calibration.text_name}: {len(calibration.blocks)} x "
                              f"{opts.calib_len} tokens",
               "loader": "transformers AutoModelForCausalLM (+ gptqmodel kernels, optimum)"},
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def outcome_tool(work: Path, specs: list[QuantSpec]) -> str:
    for spec in specs:
        path = work / f"{spec.name}.outcome.json"
        if path.is_file():
            return json.loads(path.read_text()).get("tool_version") or "gptqmodel"
    return "gptqmodel"


def _reuse(folder: Path, spec: QuantSpec, work: Path) -> QuantOutcome | None:
    """A finished variant from an earlier run (verified folder and its recorded outcome)."""
    record = work / f"{spec.name}.outcome.json"
    if not (folder.is_dir() and record.is_file()):
        return None
    try:
        verify_folder(folder, spec)
    except QuantbotError:
        return None
    data = json.loads(record.read_text())
    if QuantSpec(**data["spec"]) != spec:
        return None
    log.info("%s: reusing %s", spec.name, folder)
    return QuantOutcome(**{**data, "spec": spec, "folder": folder})
