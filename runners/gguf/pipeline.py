"""The GGUF method end to end: convert once, quantize every type, measure, check.

On the CPU, independent per-type work (quantize → perplexity/KLD → load-and-generate check) runs on
a pool of ``jobs`` workers sharing every core (:func:`plan_workers`, :class:`CoreShare`); the f16
perplexity that saves the reference logits runs first on the same pool. On a GPU the types are
quantized on the CPU while the GPU measures (:mod:`runners.gguf.overlap`). Every finished step
leaves its file in the work folder, so a rerun after a failure resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runners.answers import PromptSet, compare
from runners.calibration_mix import MIX_NAME
from runners.errors import QuantbotError
from runners.evaluation_mix import EvaluationText, docs_text
from runners.gguf import llama_tools, mmproj
from runners.gguf.answers import answer_gguf
from runners.gguf.chat_check import check_chat_template
from runners.gguf.check import check_gguf
from runners.gguf.contents import contents, fingerprint, same_files
from runners.gguf.header import read_header
from runners.gguf.inspect import summarize
from runners.gguf.logits import remove_prefixes
from runners.gguf.measure import domain_quality, measure_file
from runners.gguf.mix_plan import mix_name
from runners.gguf.mixes import (
    SearchTools,
    probe_workers,
    recipe_command,
    run_search,
    sweep_budget,
    tuning_reference,
    verdict,
)
from runners.gguf.overlap import plan_lanes, run_overlapped
from runners.gguf.reference import MIN_SCORED_TOKENS, Reference, build_reference, scored
from runners.gguf.spec import GgufSpec
from runners.gguf.types import GGUF_TYPES
from runners.llamacpp import (
    Toolchain,
    ensure_cuda_toolchain,
    ensure_toolchain,
    gpu_memory_bytes,
)
from runners.proc import ToolFailed
from runners.progress import progress
from runners.ranking import pick
from runners.results import EvalSpec, ExtraFile, Quality, QuantRun, Variant
from runners.settings import RunSettings
from runners.source import SourceModel
from runners.texts import text_set

log = logging.getLogger(__name__)

def check_window(settings: RunSettings) -> None:
    """Enough scored tokens for llama-perplexity's KL-divergence statistics, before any work."""
    tokens = settings.chunks * scored(settings.ctx)
    if tokens < MIN_SCORED_TOKENS:
        raise QuantbotError(
            f"--ctx {settings.ctx} x --chunks {settings.chunks} scores only {tokens} tokens, "
            f"and llama-perplexity gives KL-divergence statistics from {MIN_SCORED_TOKENS}",
            "raise --chunks or --ctx")


def plan_workers(n_tasks: int, model_bytes: int, cores: int | None = None,
                 free_bytes: int | None = None) -> tuple[int, int]:
    """``(jobs, threads)``: parallel tools within memory (each maps the model once), with
    ``jobs`` a divisor of the cores so that ``jobs * threads`` is every core. The first rule
    (jobs up to the task count, ``cores // jobs`` threads) gave 13 one-thread tools on 16 cores:
    three cores idle all run and every file measured on one thread."""
    cores = cores or os.cpu_count() or 1
    if free_bytes is None:
        free_bytes = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    by_memory = max(1, int(free_bytes // max(1, int(model_bytes * 1.5))))
    limit = max(1, min(cores, n_tasks, by_memory))
    jobs = max(d for d in range(1, limit + 1) if cores % d == 0)
    return jobs, cores // jobs


class CoreShare:
    """Threads for the CPU pool's next tool: every core shared among the tasks still running,
    at most ``jobs`` of them. While tasks queue each tool gets ``cores // jobs``; as the pool
    drains, the last files' tools start with more, instead of a tail of one-thread tools beside
    idle cores. A tool keeps the threads it started with, and every running tool started when at
    least as many tasks were left, so together they never ask for more than every core. With
    ``fixed`` (the user named the threads per tool) every tool gets ``cores // jobs``."""

    def __init__(self, cores: int, jobs: int, tasks: int, fixed: bool = False) -> None:
        self._cores, self._jobs, self._left, self._fixed = cores, jobs, tasks, fixed
        self._lock = threading.Lock()

    def threads(self) -> int:
        with self._lock:
            sharing = self._jobs if self._fixed else min(self._jobs, self._left)
            return max(1, self._cores // max(1, sharing))

    def finished(self) -> None:
        with self._lock:
            self._left -= 1


@dataclass(frozen=True)
class _Job:
    """What every per-type step reads: the request and the settings."""

    spec: GgufSpec
    settings: RunSettings

    @property
    def types(self) -> tuple[str, ...]:
        return self.spec.types


class _Progress:
    """A thread-safe progress bar counting finished steps (a log line off a terminal)."""

    def __init__(self, total: int) -> None:
        self._bar = progress(total=total, desc="gguf", unit="step")
        self._lock = threading.Lock()

    def done(self, what: str) -> None:
        with self._lock:
            self._bar.set_postfix_str(what)
            self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def _outtype(source: SourceModel) -> str:
    return "bf16" if "bfloat16" in source.info.dtype else "f16"


def _publish_name(source: SourceModel, qtype: str) -> str:
    return f"{source.info.name}.{qtype}.gguf"


def run(source: SourceModel, spec: GgufSpec, settings: RunSettings, repo_dir: Path,
        tc: Toolchain | None = None) -> QuantRun:
    """Make, measure and check every type into ``repo_dir``; return the run's record."""
    check_window(settings)
    tc = tc or ensure_toolchain()
    run_started = time.perf_counter()  # the stock set's clock, for the mix search's default time
    opts = _Job(spec, settings)
    work = settings.work_dir
    work.mkdir(parents=True, exist_ok=True)
    repo_dir.mkdir(parents=True, exist_ok=True)
    wanted = {_publish_name(source, t).removesuffix(".gguf") for t in opts.types}
    wanted |= {p.name.removesuffix(".gguf") for p in mmproj.projectors(source)}
    for old in repo_dir.glob("*.gguf"):  # files of types an earlier run made but this one does not
        if re.sub(r"-\d{5}-of-\d{5}$", "", old.name.removesuffix(".gguf")) not in wanted:
            old.unlink()
    for torn in [*repo_dir.glob(".*.partial"), *repo_dir.glob(".*.split")]:  # a killed run's
        log.info("gguf: removing %s, left by an interrupted run", torn.name)
        if torn.is_dir() and not torn.is_symlink():
            shutil.rmtree(torn)
        else:
            torn.unlink()
    log_file = work / "tools.log"
    outtype = _outtype(source)
    steps = (2 + 3 * len(opts.types) + 3 * len(opts.spec.mix_sizes()) + int(opts.spec.imatrix)
             + int(bool(mmproj.projectors(source))))
    progress = _Progress(steps)
    side = ThreadPoolExecutor(max_workers=1)  # projectors convert beside the text model
    try:
        projector_future = side.submit(mmproj.convert_projectors, tc, source, repo_dir, work,
                                       log_file)
        base = work / f"{source.info.name}.{outtype.upper()}.gguf"
        if not base.exists():
            tmp = base.with_suffix(".partial")
            _convert_text(tc, source, tmp, outtype, log_file)
            tmp.rename(base)
        progress.done(f"converted to {outtype}")
        ctx = min(settings.ctx, source.info.context_length or settings.ctx)
        building = time.perf_counter()
        eval_tc = _measuring_toolchain(tc, settings)
        run_started += time.perf_counter() - building  # building GPU tools is not the stock set
        on_gpu = eval_tc.backend == "cuda"
        if on_gpu:
            quantize_threads, threads = plan_lanes(settings.threads or os.cpu_count() or 1,
                                                   "cuda")
            imatrix_threads = threads
            log.info("gguf: %d types quantized on the CPU (%d threads), measured on the GPU "
                     "meanwhile", len(opts.types), quantize_threads)
        else:
            jobs, threads = plan_workers(len(opts.types) + 1, base.stat().st_size)
            if settings.jobs:  # the user's jobs, sharing every core unless threads are named
                jobs, threads = settings.jobs, max(1, (os.cpu_count() or 1) // settings.jobs)
            threads = settings.threads or threads
            imatrix_threads = jobs * threads
            log.info("gguf: %d types on %d workers x %d threads", len(opts.types), jobs, threads)
        imatrix_file, calibration = _imatrix(eval_tc, base, work, ctx, opts, imatrix_threads,
                                             log_file, progress)
        prompts = settings.answer_prompts_file
        eval_text = (EvaluationText.read(settings.evaluation_file)
                     if settings.evaluation_file is not None else docs_text())
        if on_gpu:
            lanes = run_overlapped(
                opts.types,
                quantize=lambda qtype: _quantized(tc, source, base, qtype, repo_dir,
                                                  imatrix_file, quantize_threads, opts, log_file,
                                                  progress),
                measure=lambda qtype, parts, base_run, _lane: _measured(
                    eval_tc, qtype, parts, base_run, imatrix_file, threads, opts,
                    log_file, progress),
                baseline=lambda: _baseline(eval_tc, base, eval_text, work, ctx, settings.chunks,
                                           threads, log_file, progress, prompts))
            base_run = lanes.baseline
            variants = [lanes.results[t] for t in opts.types]
            log.info("gguf: stage %.0f s, of which %.0f s of measurement hidden behind "
                     "quantization", lanes.wall_seconds, lanes.hidden_seconds())
        else:
            share = CoreShare(jobs * threads, jobs, len(opts.types), fixed=bool(settings.threads))
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                # Every type waits for the reference after its quantization: give it every core.
                base_future = pool.submit(_baseline, tc, base, eval_text, work, ctx,
                                          settings.chunks, jobs * threads, log_file, progress,
                                          prompts)
                futures = [pool.submit(_one_type, tc, source, base, qtype, repo_dir,
                                       base_future, imatrix_file, share, opts, log_file,
                                       progress)
                           for qtype in opts.types]
                base_run = base_future.result()
                variants = [f.result() for f in futures]
            threads = jobs * threads  # what follows runs one tool at a time
        baseline, chunks, n_ctx = base_run[0], base_run[1], base_run[2]
        mix_search: dict = {}
        if opts.spec.mixes:
            mixes, mix_search = _mixes(tc, eval_tc, source, base, variants, base_run, eval_text,
                                       repo_dir, imatrix_file, ctx, threads, opts, log_file,
                                       progress, time.perf_counter() - run_started)
            variants += mixes
        variants = _fold_identical(variants, repo_dir)
        variants = _with_domains(eval_tc, variants, repo_dir, base_run[5], threads, log_file)
        remove_prefixes(_logits_path(work, ctx, settings.chunks, eval_text.sha256))
        projector_future.result()
        extra_files = mmproj.check_projectors(tc, source, repo_dir,
                                              repo_dir / variants[0].files[0],
                                              settings.check_tokens)
        if extra_files:
            progress.done("projectors made and checked")
        if imatrix_file is not None:
            extra_files.append(_publish_imatrix(imatrix_file, repo_dir, source, calibration))
        chat = check_chat_template(tc, repo_dir / variants[0].files[0], source.info.chat_template,
                                   source.info.bos_token, source.info.eos_token)
    finally:
        side.shutdown(wait=True)
        progress.close()
    return QuantRun(
        method="gguf", source=source.info, baseline=baseline,
        evaluation=EvalSpec(text_name=eval_text.name,
                            text_sha256=eval_text.sha256, n_tokens=chunks * n_ctx, ctx=n_ctx,
                            chunks=chunks,
                            evaluator=f"llama.cpp llama-perplexity ({eval_tc.backend.upper()} "
                                      "build)"),
        variants=variants,
        tools={"llama.cpp": f"vendored in llama-cpp-python {tc.version}",
               "converter": "convert_hf_to_gguf.py", "quantizer": "llama-quantize",
               **({"imatrix": f"llama-imatrix on {calibration.name}",
                   "calibration_sha256": calibration.sha256} if calibration else {}),
               "chat_template": chat.describe(),
               **({"projector": "convert_hf_to_gguf.py --mmproj, checked with an image through "
                                "llama-cpp-python's mtmd"}
                  if any(e.kind == "mmproj" for e in extra_files) else {})},
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        extra_files=extra_files,
        mix_search=mix_search,
    )


def _mixes(tc: Toolchain, eval_tc: Toolchain, source: SourceModel, base: Path,
           stock: list[Variant], base_run: tuple, eval_text: EvaluationText, repo_dir: Path,
           imatrix_file: Path | None, ctx: int, threads: int, opts: _Job, log_file: Path,
           progress: _Progress, stock_seconds: float) -> tuple[list[Variant], dict]:
    """The mix search (:mod:`runners.gguf.mixes`) at the sizes of the requested stock types, on
    the tuning windows; each winner spliced from the search's tensors (the bytes its recipe makes
    with plain llama-quantize), then measured and checked on the held-out windows like every file, and
    kept only where it beats the stock file of its size there
    (:func:`runners.gguf.mixes.verdict`). The search's record (sweep, candidates, every mix's
    verdict) goes to ``quantbot.json`` whatever was published. ``stock_seconds``: the run so
    far, which sets the sweeps' default time on a GPU (:func:`runners.gguf.mixes.sweep_budget`)."""
    by_name = {v.name: v for v in stock}
    split = [v.name for v in stock if len(v.files) > 1]
    if split:
        raise QuantbotError(f"{split[0]} is split into parts, and the mix search splices whole "
                            "files", "drop `mixes` from the request for a model this large")
    started = time.perf_counter()
    folder = opts.settings.work_dir / "mixes"
    folder.mkdir(parents=True, exist_ok=True)
    cores = opts.settings.threads or os.cpu_count() or 1
    tuning = tuning_reference(eval_tc, base, eval_text, base_run[5], folder, ctx, threads,
                              log_file)
    stock_files = {v.name: repo_dir / v.files[0] for v in stock}
    largest = max(stock_files[s].stat().st_size for s in opts.spec.mix_sizes())
    # threads: every core on the CPU path (one tool at a time), the GPU lane's share on a GPU
    tools = SearchTools(quantize=tc, measure=eval_tc, quantize_threads=cores,
                        measure_threads=threads,
                        workers=probe_workers(eval_tc.backend, largest, gpu_memory_bytes()),
                        log_file=log_file)
    out_of = {size: repo_dir / _publish_name(source, mix_name(size))
              for size in opts.spec.mix_sizes()}
    minutes, budget_from = sweep_budget(opts.spec.mix_minutes, eval_tc.backend,
                                        _stock_set_seconds(folder, stock_seconds),
                                        time.perf_counter() - started)
    plans, record = run_search(tools, base, stock_files, opts.spec.mix_sizes(), imatrix_file,
                               tuning, folder, minutes, out_of)
    record.budget_minutes, record.budget_from = minutes, budget_from
    kept, outcomes = [], []
    for plan in plans:
        out = out_of[plan.stock]
        progress.done(f"{plan.name} made")
        variant = _measured(eval_tc, plan.name, [out], base_run, imatrix_file, threads, opts,
                            log_file, progress)
        won, why = verdict(variant, by_name[plan.stock])
        outcomes.append({"name": plan.name, "stock": plan.stock, "published": won,
                         "why": why, "size_bytes": variant.size_bytes,
                         "kld_mean": variant.quality.kld_mean,
                         "kld_err": variant.quality.kld_err})
        log.info("gguf: %s %s: %s", plan.name, "published" if won else "not published", why)
        if not won:
            out.unlink()
            continue
        kept.append(dataclasses.replace(variant, params={**variant.params, "mix": {
            "competes_with": plan.stock, "base_type": plan.base, "options": plan.args,
            "groups": plan.types, "command": recipe_command(
                plan, base.name, out.name, f"{source.info.name}.imatrix.gguf"
                if imatrix_file is not None else None),
            "predicted_tuning_kld": round(plan.predicted_kld, 6),
            "tuning_kld": round(plan.tuning_kld, 6), "verdict": why}}))
    # the whole stage: the search, and making, measuring and checking its mixes
    stage = round(time.perf_counter() - started, 1)
    return kept, {**dataclasses.asdict(record), "mixes": outcomes, "stage_seconds": stage}


def _stock_set_seconds(folder: Path, measured: float) -> float:
    """The stock set's time as the first run of this work folder took it: a rerun reuses its
    files and takes seconds, and the mix search's default time must not shrink with that."""
    clock = folder / "stock-set-seconds.json"
    if clock.exists():
        measured = max(measured, float(json.loads(clock.read_text())["seconds"]))
    clock.write_text(json.dumps({"seconds": round(measured, 1)}))
    return measured


def _has_mtp_weights(folder: Path) -> bool:
    """Whether the checkpoint holds multi-token-prediction tensors (``mtp.*``), from headers."""
    for file in folder.glob("*.safetensors"):
        with file.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            names = json.loads(fh.read(length))
        if any(n.startswith(("mtp.", "model.mtp.")) or ".mtp." in n for n in names):
            return True
    return False


def _convert_text(tc: Toolchain, source: SourceModel, out: Path, outtype: str,
                  log_file: Path) -> None:
    """Convert the text model; without MTP weights, again with ``--no-mtp`` if that is why.

    The converter's Qwen3.5/Qwen3-Next classes assume the release's multi-token-prediction head
    is present and stop on ``assert self.opt_num_mtp_layers != 0`` when it is not, as in every
    checkpoint transformers saved (it drops ``mtp.*`` on load): fine-tunes, merges, stand-ins.
    Telling the converter there is none (``--no-mtp``) converts the model that is there.
    """
    try:
        llama_tools.convert(tc, source.path, out, outtype, log_file)
    except ToolFailed as exc:
        if "opt_num_mtp_layers" not in exc.problem or _has_mtp_weights(source.path):
            raise
        log.info("gguf: %s has no MTP weights; converting again with --no-mtp", source.info.name)
        llama_tools.convert(tc, source.path, out, outtype, log_file, ("--no-mtp",))


@dataclass(frozen=True)
class Calibration:
    """The text an importance matrix was computed on."""

    name: str
    sha256: str


def _imatrix(tc: Toolchain, base: Path, work: Path, ctx: int, opts: _Job, threads: int,
             log_file: Path, progress: _Progress) -> tuple[Path | None, Calibration | None]:
    """The importance matrix, from the calibration mix in the model's chat format when the
    settings carry it (:mod:`runners.calibration_mix`), else the docs' calibration split."""
    if not opts.spec.imatrix:
        return None, None
    given = opts.settings.calibration_file
    if given is not None:
        text = given.read_text(encoding="utf-8")
        calibration = Calibration(MIX_NAME, hashlib.sha256(text.encode()).hexdigest())
        calib = given
    else:
        split = text_set("calibration")
        calibration = Calibration(f"{split.name}, calibration split", split.sha256)
        calib = split.write(work / "calibration.txt")
    out = work / f"imatrix-{calibration.sha256[:16]}.gguf"  # a new text makes a new matrix
    if not out.exists():
        tmp = work / "imatrix.partial.gguf"
        llama_tools.imatrix(tc, base, calib, tmp, ctx, opts.settings.chunks, threads, log_file)
        tmp.rename(out)
    progress.done("imatrix")
    return out, calibration


def _publish_imatrix(matrix: Path, repo_dir: Path, source: SourceModel,
                     calibration: Calibration | None) -> ExtraFile:
    """The importance matrix beside the files it made, for users who quantize further."""
    name = f"{source.info.name}.imatrix.gguf"
    target = repo_dir / name
    target.unlink(missing_ok=True)
    shutil.copy2(matrix, target)
    return ExtraFile(kind="imatrix", name=name, dtype="F32", size_bytes=target.stat().st_size,
                     params={"calibration": calibration.name if calibration else "",
                             "calibration_sha256": calibration.sha256 if calibration else ""})


def _baseline(tc: Toolchain, base: Path, eval_text: EvaluationText, work: Path, ctx: int,
              max_chunks: int, threads: int, log_file: Path, progress: _Progress,
              prompts: Path | None = None
              ) -> tuple[Quality, int, int, Path, tuple[list[list[int]], str] | None, Reference]:
    """The reference logits (each domain's windows in turn, :mod:`runners.gguf.reference`), the
    unquantized model's PPL, and its answers when a prompt set is given."""
    ref = build_reference(tc, base, eval_text, _logits_path(work, ctx, max_chunks,
                                                            eval_text.sha256),
                          ctx, max_chunks, threads, log_file)
    progress.done("f16 perplexity")
    reference = None
    if prompts is not None:  # the unquantized file's answers, which every type is compared with
        tokens, _ = answer_gguf(tc, base, prompts, _answers_file(work, base.name, prompts),
                                threads)
        reference = (tokens, f"the unquantized {base.stem.rsplit('.', 1)[-1]} GGUF in "
                             "llama-cpp-python")
    return ref.quality, ref.chunks, ref.n_ctx, ref.logits, reference, ref


def _logits_path(work: Path, ctx: int, max_chunks: int, text_sha256: str) -> Path:
    """The reference logits of this text, window size and count (a new one is a new file)."""
    return work / f"reference-{text_sha256[:12]}-c{ctx}-n{max_chunks}.kld"


def _answers_file(work: Path, model_name: str, prompts: Path) -> Path:
    """Where a file's answers are kept: named by the prompt set, so a new set answers again."""
    key = hashlib.sha256(prompts.read_bytes()).hexdigest()[:12]
    return work / "answers" / f"{model_name}.{key}.json"


def _measuring_toolchain(tc: Toolchain, settings: RunSettings) -> Toolchain:
    """Where perplexity, KLD and the imatrix run: the CUDA build of the same tree when a card is
    there and the settings allow it (``--device auto`` or ``cuda``), else ``tc`` (the CPU)."""
    if settings.device == "cpu":
        return tc
    cuda = ensure_cuda_toolchain(tc.version)
    if cuda is None and settings.device.startswith("cuda"):
        raise QuantbotError("--device cuda, but no NVIDIA card with nvcc was found for "
                            "llama.cpp's CUDA build", "use --device auto or cpu")
    return cuda or tc


def _one_type(tc: Toolchain, source: SourceModel, base: Path, qtype: str, repo_dir: Path,
              base_future: Future, imatrix_file: Path | None, share: CoreShare,
              opts: _Job, log_file: Path, progress: _Progress) -> Variant:
    """One type on the CPU pool: quantize, then measure and check once the baseline is done,
    each step with the threads the pool can spare when it starts."""
    try:
        parts = _quantized(tc, source, base, qtype, repo_dir, imatrix_file, share.threads(),
                           opts, log_file, progress)
        base_run = base_future.result()
        return _measured(tc, qtype, parts, base_run, imatrix_file, share.threads(), opts,
                         log_file, progress)
    finally:
        share.finished()


def _quantized(tc: Toolchain, source: SourceModel, base: Path, qtype: str, repo_dir: Path,
               imatrix_file: Path | None, threads: int, opts: _Job, log_file: Path,
               progress: _Progress) -> list[Path]:
    parts = _quantized_parts(tc, base, qtype, _publish_name(source, qtype), repo_dir,
                             imatrix_file, threads, opts, log_file)
    progress.done(f"{qtype} quantized")
    return parts


def _measured(eval_tc: Toolchain, qtype: str, parts: list[Path], base_run: tuple,
              imatrix_file: Path | None, threads: int, opts: _Job, log_file: Path,
              progress: _Progress) -> Variant:
    """Perplexity/KLD with ``eval_tc`` (CPU or CUDA build) against this run's reference logits
    (``base_run``, :func:`_baseline`'s answer, never another window's), then the
    load-and-generate check and the answer set in llama-cpp-python with the same build (on the
    GPU for the CUDA one: see runners.gguf.check)."""
    reference = base_run[4]
    measured = measure_file(eval_tc, parts[0], base_run[5], threads, log_file,
                            opts.settings.adaptive, domains=_domains_per_file(eval_tc))
    quality, chunks = measured.quality, measured.chunks
    progress.done(f"{qtype} measured on {chunks} windows")
    text = check_gguf(eval_tc, parts[0], tokens=opts.settings.check_tokens)
    answers = None
    prompts = opts.settings.answer_prompts_file
    if prompts is not None and reference is not None:
        work = opts.settings.work_dir
        tokens, texts = answer_gguf(eval_tc, parts[0], prompts,
                                    _answers_file(work, parts[0].name, prompts), threads)
        answer_set = PromptSet.read(prompts)
        answers = compare(answer_set.ids, reference[0], tokens, texts,
                          answer_set.max_new_tokens, reference[1])
    progress.done(f"{qtype} checked")
    summary = summarize(parts)
    ram, ram_ctx = summary.ram_estimate()
    tensors = [t for part in parts for t in read_header(part).tensors]
    held = contents(qtype, tensors)
    return Variant(
        method="gguf", name=qtype, files=[p.name for p in parts], size_bytes=summary.file_bytes,
        bits_per_weight=round(summary.bits_per_weight, 3), ram_bytes=ram,
        peak_rss_bytes=measured.peak_rss_bytes, quality=quality, check_output=text, answers=answers,
        params={"tensor_types": summary.tensor_types, "ram_ctx": ram_ctx,
                "eval_chunks": chunks, "eval_tokens": chunks * scored(base_run[5].n_ctx),
                "tensor_fingerprint": fingerprint(tensors), "content_note": held.note(),
                "imatrix": imatrix_file is not None, "measured_on": eval_tc.backend,
                "checked_on": eval_tc.backend},
    )


def _domains_per_file(eval_tc: Toolchain) -> bool:
    """Whether every file gets its per-domain figures as it is measured: where runs are cheap
    (the CUDA build). On the CPU, four more runs a file are worth it for the recommended file
    alone, once all are measured (:func:`_with_domains`)."""
    return eval_tc.backend != "cpu"


def _with_domains(eval_tc: Toolchain, variants: list[Variant], repo_dir: Path,
                  reference: Reference, threads: int, log_file: Path) -> list[Variant]:
    """``variants`` with the recommended file's per-domain figures where it was measured without
    them (the CPU: :func:`_measured`), so the card's per-domain table has them."""
    chosen = pick(variants).chosen
    if (_domains_per_file(eval_tc) or chosen.quality.domains is not None
            or len(set(reference.labels)) < 2):
        return variants
    domains = domain_quality(eval_tc, repo_dir / chosen.files[0], reference,
                             chosen.params["eval_chunks"], threads, log_file)
    log.info("gguf: %s, the recommended file, measured on each domain", chosen.name)
    return [dataclasses.replace(v, quality=dataclasses.replace(v.quality, domains=domains))
            if v is chosen else v for v in variants]


def _fold_identical(variants: list[Variant], repo_dir: Path) -> list[Variant]:
    """One published file per set of identical tensor types: the first requested type keeps
    its file and says which other requested names it stands for; the others' files go."""
    by_name = {v.name: v for v in variants}
    groups = same_files({v.name: v.params["tensor_fingerprint"] for v in variants})
    kept = []
    for name, names in groups.items():
        variant = by_name[name]
        if len(names) > 1:
            log.info("gguf: %s have identical tensor types; publishing one file, %s",
                     ", ".join(names), variant.files[0])
            for other in names[1:]:
                for file in by_name[other].files:
                    (repo_dir / file).unlink(missing_ok=True)
            variant = dataclasses.replace(variant, params={**variant.params, "stands_for": names})
        kept.append(variant)
    return kept


def _complete_split(parts: list[Path]) -> bool:
    """``parts`` are every ``-0000i-of-0000n`` of one split, each once."""
    found = [re.search(r"-(\d{5})-of-(\d{5})\.gguf$", p.name) for p in parts]
    if not all(found):
        return False
    totals = {int(m.group(2)) for m in found if m}
    numbers = sorted(int(m.group(1)) for m in found if m)
    return len(totals) == 1 and numbers == list(range(1, totals.pop() + 1))


def _quantized_parts(tc: Toolchain, base: Path, qtype: str, name: str, repo_dir: Path,
                     imatrix_file: Path | None, threads: int, opts: _Job,
                     log_file: Path) -> list[Path]:
    """The finished file(s) for one type: reused if present, else quantized (and split)."""
    whole = repo_dir / name
    stem = whole.with_suffix("")
    existing = sorted(repo_dir.glob(f"{stem.name}-*-of-*.gguf"))
    if existing and _complete_split(existing):
        return existing
    for part in existing:  # a run killed while moving the parts in: split again
        part.unlink()
    if whole.exists():
        return [whole]
    tmp = repo_dir / f".{name}.partial"
    type_arg, options = GGUF_TYPES[qtype].quantize_args()
    llama_tools.quantize(tc, base, tmp, type_arg, threads, imatrix_file, log_file, options)
    if tmp.stat().st_size <= opts.settings.split_bytes:
        tmp.rename(whole)
        return [whole]
    split_dir = repo_dir / f".{name}.split"
    shutil.rmtree(split_dir, ignore_errors=True)
    split_dir.mkdir()
    parts = llama_tools.split(tc, tmp, split_dir / stem.name, opts.settings.split_bytes, log_file)
    for part in parts:
        part.rename(repo_dir / part.name)
    shutil.rmtree(split_dir)
    tmp.unlink()
    return [repo_dir / p.name for p in parts]
