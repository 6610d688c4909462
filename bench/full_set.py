"""The whole default /quantize set for a full-size stand-in on one GPU machine, timed by stage.

Runs on a GPU runner (one H100 + 16 cores, issue 10) what ``/quantize`` does by default for a
model: convert, the 12 GGUF types with perplexity/KLD on the GPU (:mod:`runners.gguf.overlap`:
the CPU quantizes type k+1 while the GPU measures type k) and each file's load-and-generate
check, GPTQ and AWQ 4-bit with their evaluation and reload checks (on the GPU, at the same time
as the GGUF stage). After it, in the same run, the bare sequence a user runs by hand:
convert + 12 x ``llama-quantize``, one after another, every core, no measurement. The GGUF stage
is the pipeline's GPU path (``runners.gguf.pipeline`` with a CUDA build: the same
:func:`~runners.gguf.overlap.run_overlapped` lanes, ``llama-perplexity`` on the GPU, the
llama-cpp-python load check) written out here so that each file can be deleted once measured.

Prints every stage's wall time and peak RAM / VRAM / disk, then two ratios:

- the whole measured set against the bare by-hand sequence;
- the GGUF stage against the same stage with one worker (its steps one after another). That
  one is **derived** from the step times measured in the overlapped run, not run separately
  (it would cost another 10 minutes of the GPU machine); the output says so.

The model is a stand-in (``bench/standin.py``): **random weights, so every perplexity and KL
divergence printed is meaningless**; sizes, memory and timings are real. A 64 GiB disk does not
hold the 12 GGUF files of an 8B model (61 GB) beside the source and the f16 file, so each file is
deleted once measured and checked (its size and timings are kept), and the by-hand files once
written; GPTQ/AWQ folders likewise after their checks.

    python bench/full_set.py --work /data/fs --out results/         # everything
    python bench/full_set.py --standin llama-tiny --types Q4_K_M,Q8_0 --methods gguf  # a dry run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GIB = 2**30
DEFAULT_TYPES = ("Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_K_S", "Q4_K_M", "Q5_0",
                 "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0")


class Monitor:
    """Samples used RAM (total - available), GPU memory in use (all processes, NVML) and the
    work folder's disk use, keeping peaks overall and since the last :meth:`mark`."""

    def __init__(self, path: Path, period: float = 0.5) -> None:
        self.path = path
        self.period = period
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.peak = {"ram": 0, "vram": 0, "disk": 0}
        self.stage_peak = dict(self.peak)
        self.windows: dict[str, dict[str, int]] = {}  # named windows that span stages
        self._nvml = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = [pynvml.nvmlDeviceGetHandleByIndex(i)
                          for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:
            self._nvml = None
        self.disk_base = shutil.disk_usage(path).used
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> dict[str, int]:
        import psutil

        vm = psutil.virtual_memory()
        vram = 0
        if self._nvml:
            import pynvml

            vram = sum(pynvml.nvmlDeviceGetMemoryInfo(h).used for h in self._nvml)
        return {"ram": vm.total - vm.available, "vram": vram,
                "disk": shutil.disk_usage(self.path).used}

    def _run(self) -> None:
        while not self._stop.is_set():
            s = self.sample()
            with self._lock:
                for k, v in s.items():
                    self.peak[k] = max(self.peak[k], v)
                    self.stage_peak[k] = max(self.stage_peak[k], v)
                    for window in self.windows.values():
                        window[k] = max(window[k], v)
            self._stop.wait(self.period)

    def mark(self) -> dict[str, int]:
        """Peaks since the previous mark; starts a new window."""
        with self._lock:
            out = dict(self.stage_peak)
            self.stage_peak = {k: 0 for k in self.stage_peak}
        return out

    def open(self, name: str) -> None:
        with self._lock:
            self.windows[name] = {"ram": 0, "vram": 0, "disk": 0}

    def close(self, name: str) -> dict[str, int]:
        with self._lock:
            return self.windows.pop(name)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Stage:
    name: str
    seconds: float
    peak_ram: int = 0
    peak_vram: int = 0
    peak_disk: int = 0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Stages in order, each line also appended to ``<out>/full_set.jsonl`` as it finishes."""

    def __init__(self, out: Path, monitor: Monitor) -> None:
        self.out = out
        self.monitor = monitor
        self.stages: list[Stage] = []
        self.log = out / "full_set.jsonl"

    def event(self, **data: Any) -> None:
        line = json.dumps({"t": round(time.time(), 1), **data}, default=str)
        print("EVENT " + line, flush=True)
        with self.log.open("a") as fh:
            fh.write(line + "\n")

    def run(self, name: str, fn: Callable[[], Any], note: str = "") -> Any:
        """Run ``fn`` as a stage of its own (peaks are the stage's window)."""
        self.monitor.mark()
        start = time.perf_counter()
        value = fn()
        self.add(name, time.perf_counter() - start, note)
        return value

    def add(self, name: str, seconds: float, note: str = "", peaks: dict[str, int] | None = None,
            **extra: Any) -> Stage:
        peaks = peaks if peaks is not None else self.monitor.mark()
        stage = Stage(name, round(seconds, 2), peaks["ram"], peaks["vram"],
                      peaks["disk"] - self.monitor.disk_base, note, extra)
        self.stages.append(stage)
        self.event(stage=asdict(stage))
        return stage


def _gib(n: int) -> str:
    return f"{n / GIB:6.1f}"


def toolchains(rec: Recorder) -> tuple[Any, Any]:
    """``(quantize toolchain, evaluation toolchain)``: the CUDA build for both on a GPU machine
    (its llama-quantize is the CPU code of the CPU build), the CPU build otherwise."""
    from runners.llamacpp import ensure_cuda_toolchain, ensure_toolchain

    start = time.perf_counter()
    cuda = ensure_cuda_toolchain()
    tc = cuda or ensure_toolchain()
    rec.event(toolchain=str(tc.bin_dir), backend=tc.backend,
              seconds=round(time.perf_counter() - start, 1))
    return tc, tc


def by_hand(rec: Recorder, tc: Any, model: Path, f16: Path, outtype: str, types: list[str],
            work: Path, threads: int, keep: str | None = None) -> dict[str, Any]:
    """convert + llama-quantize per type, serial, every core, nothing else; every file but
    ``keep``'s is deleted once written (untimed)."""
    from runners.gguf import llama_tools

    log_file = work / "by-hand.log"
    rec.monitor.mark()
    t0 = time.perf_counter()
    llama_tools.convert(tc, model, f16, outtype, log_file)
    convert_s = time.perf_counter() - t0
    rec.add("by hand: convert", convert_s, f"--outtype {outtype}",
            f16_bytes=f16.stat().st_size)
    sizes, times = {}, {}
    rec.monitor.mark()
    q0 = time.perf_counter()
    for qtype in types:
        out = work / f"hand.{qtype}.gguf"
        s = time.perf_counter()
        llama_tools.quantize(tc, f16, out, qtype, threads, None, log_file)
        times[qtype] = round(time.perf_counter() - s, 2)
        sizes[qtype] = out.stat().st_size
        if qtype != keep:
            out.unlink()  # the disk holds no 12 files beside source and f16 (untimed)
        rec.event(by_hand=qtype, seconds=times[qtype], bytes=sizes[qtype])
    quant_s = time.perf_counter() - q0
    rec.add(f"by hand: {len(types)} x llama-quantize", quant_s, f"{threads} threads each, serial",
            per_type=times, sizes=sizes)
    return {"convert": convert_s, "quantize": quant_s, "per_type": times, "sizes": sizes}


def preflight(rec: Recorder, eval_tc: Any, f16: Path, text: Path, work: Path) -> None:
    """Two windows of perplexity on the converted model with the measuring build."""
    from runners.gguf import llama_tools

    run = llama_tools.perplexity_base(eval_tc, f16, text, work / "preflight.kld", 512, 2, 4,
                                      work / "preflight.log")
    (work / "preflight.kld").unlink(missing_ok=True)
    rec.event(preflight=llama_tools.parse_base_ppl(run.output).ppl, seconds=round(run.seconds, 1),
              backend=eval_tc.backend)


#: The type whose by-hand file the CPU-only sample measures (the card's usual recommendation).
CPU_SAMPLE_TYPE = "Q4_K_M"


def cpu_only(rec: Recorder, tc: Any, f16: Path, quantized: Path, text: Path, work: Path,
             cores: int, ctx: int, chunks: int, check_tokens: int) -> dict[str, Any]:
    """The CPU-only runner's measuring steps on this machine's cores, the GPU hidden
    (``CUDA_VISIBLE_DEVICES=""``: the CUDA build's tools then run on the CPU, the code a CPU build
    runs): the unquantized perplexity that writes the reference logits and one file's KLD, on
    ``chunks`` windows with every core, and that file's load check (one thread, as on a CPU
    runner). A whole CPU-only set at the full window count is derived from these rates and this
    run's by-hand quantization times, and labelled so."""
    from runners.gguf import llama_tools
    from runners.gguf.check import check_gguf

    cpu_tc = replace(tc, backend="cpu")
    logits = work / "cpu-reference.kld"
    log_file = work / "cpu-only.log"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        rec.monitor.mark()
        base = llama_tools.perplexity_base(cpu_tc, f16, text, logits, ctx, chunks, cores,
                                           log_file)
        rec.add(f"CPU only: bf16 perplexity + reference logits, {chunks} windows", base.seconds,
                f"{cores} threads, GPU hidden")
        kld = llama_tools.perplexity_kld(cpu_tc, quantized, logits, cores, log_file)
        rec.add(f"CPU only: {CPU_SAMPLE_TYPE} PPL/KLD, {chunks} windows", kld.seconds,
                f"{cores} threads, GPU hidden")
        start = time.perf_counter()
        check_gguf(cpu_tc, quantized, tokens=check_tokens)
        check_s = time.perf_counter() - start
        rec.add(f"CPU only: {CPU_SAMPLE_TYPE} load check", check_s, "one thread, GPU hidden")
    finally:
        if hidden is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = hidden
        logits.unlink(missing_ok=True)
    n_chunks, _ = llama_tools.parse_chunks(base.output)
    return {"chunks": n_chunks, "threads": cores, "type": CPU_SAMPLE_TYPE,
            "base_s": round(base.seconds, 2), "kld_s": round(kld.seconds, 2),
            "check_s": round(check_s, 2),
            "base_s_per_chunk": round(base.seconds / n_chunks, 3),
            "kld_s_per_chunk": round(kld.seconds / n_chunks, 3)}


def gguf_overlapped(rec: Recorder, tc: Any, eval_tc: Any, f16: Path, types: list[str],
                    text: Path, work: Path, cores: int, ctx: int, chunks: int,
                    check_tokens: int) -> dict[str, Any]:
    """The GGUF stage as quantbot runs it on a GPU machine (runners.gguf.overlap)."""
    from runners.errors import QuantbotError
    from runners.gguf import llama_tools
    from runners.gguf.check import check_gguf
    from runners.gguf.overlap import plan_lanes, run_overlapped

    qthreads, ethreads = plan_lanes(cores, eval_tc.backend)
    log_file = work / "gguf.log"
    logits = work / f"reference-c{ctx}-n{chunks}.kld"
    details: dict[str, dict[str, Any]] = {}

    def quantize(qtype: str) -> Path:
        out = work / f"standin.{qtype}.gguf"
        run = llama_tools.quantize(tc, f16, out, qtype, qthreads, None, log_file)
        details[qtype] = {"quantize_s": round(run.seconds, 2), "bytes": out.stat().st_size,
                          "quantize_peak_rss": run.peak_rss_bytes}
        return out

    check_tc = [eval_tc]  # the pipeline's choice: the measuring build (all layers on the GPU)

    def checked(path: Path) -> str:
        try:
            return check_gguf(check_tc[0], path, tokens=check_tokens)
        except QuantbotError as exc:
            if check_tc[0].backend != "cuda":
                raise
            rec.event(check_fallback=str(exc)[:1500])  # the bench goes on with the CPU check
            check_tc[0] = replace(eval_tc, backend="cpu")
            return check_gguf(check_tc[0], path, tokens=check_tokens)

    def measure(qtype: str, path: Path, base: Any, lane: int) -> dict[str, Any]:
        run = llama_tools.perplexity_kld(eval_tc, path, logits, ethreads, log_file)
        quality = llama_tools.parse_kld(run.output)
        s = time.perf_counter()
        text_out = checked(path)
        check_s = time.perf_counter() - s
        path.unlink()  # measured and checked; the disk cannot hold all 12
        d = {**details[qtype], "measure_s": round(run.seconds, 3), "check_s": round(check_s, 2),
             "backend": eval_tc.backend, "checked_on": check_tc[0].backend,
             "measure_peak_rss": run.peak_rss_bytes,
             "ppl": quality.ppl, "kld_mean": quality.kld_mean, "kld_p99": quality.kld_p99,
             "same_top_p": quality.same_top_p, "check_text": text_out}
        rec.event(gguf=qtype, **{k: v for k, v in d.items() if k != "check_text"})
        return d

    def baseline() -> Any:  # the reference logits for every measure()
        return llama_tools.perplexity_base(eval_tc, f16, text, logits, ctx, chunks, ethreads,
                                           log_file)

    rec.monitor.mark()
    res = run_overlapped(types, quantize, measure, baseline)
    peaks = rec.monitor.mark()
    base = {"ppl": llama_tools.parse_base_ppl(res.baseline.output).ppl,
            "seconds": round(res.baseline.seconds, 3), "backend": eval_tc.backend}
    rec.add("measured: GGUF stage (overlapped)", res.wall_seconds,
            f"quantize {qthreads} threads on the CPU; PPL/KLD on {eval_tc.backend} "
            f"({ethreads} threads) + load check, one file behind", peaks,
            baseline_ppl=base["ppl"], baseline_s=base["seconds"], baseline_backend=base["backend"])
    return {"wall": res.wall_seconds, "serial_derived": res.serial_seconds(),
            "cpu_busy": res.busy("cpu"), "eval_busy": res.busy("eval"),
            "timeline": res.timeline(), "types": res.results, "baseline": base}


def gpu_methods(rec: Recorder, model: Path, methods: list[str], work: Path,
                results: dict[str, Any]) -> None:
    """GPTQ then AWQ 4-bit with quantbot's pipeline: baseline, quantize, reload + PPL/KLD."""
    from runners.gptq.pipeline import run as run_gptq
    from runners.gptq.spec import AwqSpec, GptqSpec
    from runners.settings import RunSettings
    from runners.source import load_source

    source = load_source(str(model), repo_id="bench/standin")
    import torch

    settings = RunSettings(work_dir=work / "hf-work",
                           device="cuda" if torch.cuda.is_available() else "cpu")
    for method in methods:
        spec = GptqSpec() if method == "gptq" else AwqSpec()
        repo = work / f"repo-{method}"
        start = time.perf_counter()
        try:
            run = run_gptq(source, spec, settings, repo)
        except Exception as exc:
            results[method] = {"error": f"{type(exc).__name__}: {exc}"[:1500],
                               "seconds": round(time.perf_counter() - start, 1)}
            rec.event(method=method, error=results[method]["error"])
            continue
        wall = time.perf_counter() - start
        v = run.variants[0]
        results[method] = {
            "wall_s": round(wall, 1), "quant_s": v.params.get("quant_seconds"),
            "quant_peak_vram": v.params.get("quant_peak_vram_bytes"),
            "bytes": v.size_bytes, "ppl": v.quality.ppl, "kld_mean": v.quality.kld_mean,
            "kld_p99": v.quality.kld_p99, "same_top_p": v.quality.same_top_p,
            "baseline_ppl": run.baseline.ppl, "check_kernel": v.params.get("kernel"),
            "check_text": v.check_output, "eval_device": v.params.get("eval_device"),
            "peak_rss": v.peak_rss_bytes, "check_vram": v.ram_bytes,
            "calibration_tokens": v.params.get("calibration_tokens"),
            # GPTQModel's own region timer (where the quantizer's time went), if it kept one
            "regions_s": _regions(settings.work_dir / "logs" / f"{v.name}.regions.json"),
        }
        rec.event(method=method, **{k: val for k, val in results[method].items()
                                    if k != "check_text"})
        shutil.rmtree(repo, ignore_errors=True)  # measured and checked; disk


def _regions(path: Path) -> dict[str, float]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--standin", default="llama-3.1-8b")
    ap.add_argument("--work", type=Path, default=Path("/tmp/quantbot-full-set"))
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--types", default=",".join(DEFAULT_TYPES))
    ap.add_argument("--methods", default="gguf,gptq,awq")
    ap.add_argument("--skip-by-hand", action="store_true")
    ap.add_argument("--wait-file", type=Path, default=None,
                    help="after the setup, wait (at most --wait-max s) for this file: another "
                         "benchmark sharing the setup's time (bench/awq_probe.py) is done")
    ap.add_argument("--wait-max", type=float, default=120.0)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=32)
    ap.add_argument("--check-tokens", type=int, default=16)
    ap.add_argument("--cpu-chunks", type=int, default=4,
                    help="windows of the CPU-only sample after the by-hand sequence (0: none)")
    args = ap.parse_args(argv)

    import torch

    from bench import standin

    types = [t for t in args.types.split(",") if t]
    methods = [m for m in args.methods.split(",") if m]
    cores = os.cpu_count() or 1
    cuda = torch.cuda.is_available()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    monitor = Monitor(work)
    rec = Recorder(args.out, monitor)
    summary: dict[str, Any] = {
        "standin": args.standin, "cores": cores, "types": types, "methods": methods,
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "warning": "random weights: PPL and KLD are meaningless; timings, sizes, memory real",
    }
    rec.event(start=summary)

    # Setup (not part of either timed sequence): toolchain build beside the stand-in's writing.
    tc_box: dict[str, Any] = {}

    def build() -> None:
        try:
            tc_box["tc"] = toolchains(rec) if "gguf" in methods else (None, None)
        except BaseException as exc:
            tc_box["error"] = exc

    rec.monitor.mark()
    t0 = time.perf_counter()
    builder = threading.Thread(target=build)
    builder.start()
    model = work / args.standin
    if not (model / "standin.json").is_file():
        shutil.rmtree(model, ignore_errors=True)
        info = rec.run("setup: write stand-in", lambda: standin.write_standin(
            args.standin, model, device="cuda" if cuda else "cpu",
            workers=8 if cuda else min(8, cores)))
        summary["standin_info"] = info
    builder.join()
    if args.wait_file is not None:
        deadline = time.perf_counter() + args.wait_max
        while not args.wait_file.exists() and time.perf_counter() < deadline:
            time.sleep(2)
        rec.event(waited_for=str(args.wait_file), present=args.wait_file.exists())
    if "error" in tc_box:
        raise tc_box["error"]
    tc, eval_tc = tc_box["tc"]
    rec.add("setup: toolchain + stand-in", time.perf_counter() - t0,
            f"toolchain {tc.backend} at {tc.bin_dir}" if tc else "no GGUF: no toolchain")
    outtype = "bf16"  # quantbot converts a bf16 source to bf16 (runners/gguf/pipeline.py)
    f16 = work / f"standin.{outtype.upper()}.gguf"
    from runners.texts import text_set

    eval_text = text_set("evaluation").write(work / "evaluation.txt")

    # The measured set: GPTQ/AWQ on the GPU from the start (as their job starts beside the GGUF
    # job on one runner), GGUF: convert, a preflight of the measuring build (two windows; a
    # tool that fails on this model stops the run in seconds), then the CPU + GPU lanes. It
    # runs before the by-hand sequence so that a short lease yields the set's numbers first.
    gpu_results: dict[str, Any] = {}
    hf_methods = [m for m in methods if m in ("gptq", "awq")]
    rec.monitor.mark()
    rec.monitor.open("set")
    set_start = time.perf_counter()
    gpu_thread = None
    if hf_methods:
        gpu_thread = threading.Thread(target=gpu_methods,
                                      args=(rec, model, hf_methods, work, gpu_results))
        gpu_thread.start()
    convert_s = gguf_s = 0.0
    if "gguf" in methods:
        from runners.gguf import llama_tools

        f16.unlink(missing_ok=True)
        s = time.perf_counter()
        llama_tools.convert(tc, model, f16, outtype, work / "gguf.log")
        convert_s = time.perf_counter() - s
        rec.add("measured: convert", convert_s, f"--outtype {outtype}")
        preflight(rec, eval_tc, f16, eval_text, work)
        summary["gguf"] = gguf_overlapped(rec, tc, eval_tc, f16, types, eval_text, work, cores,
                                          args.ctx, args.chunks, args.check_tokens)
        gguf_s = time.perf_counter() - set_start
    if gpu_thread:
        gpu_thread.join()
    set_wall = time.perf_counter() - set_start
    rec.monitor.mark()
    set_peaks = rec.monitor.close("set")
    rec.add("measured: whole set (GGUF stage | GPTQ+AWQ on the GPU)", set_wall,
            "GPU methods from the start; GGUF: convert, preflight, CPU + GPU lanes", set_peaks)
    summary["gpu_methods"] = gpu_results
    (args.out / "full_set.json").write_text(json.dumps(summary, indent=1, default=str))

    hand = None
    if "gguf" in methods and not args.skip_by_hand:
        f16.unlink(missing_ok=True)
        keep = CPU_SAMPLE_TYPE if CPU_SAMPLE_TYPE in types and args.cpu_chunks else None
        hand = by_hand(rec, tc, model, f16, outtype, types, work, cores, keep=keep)
        summary["by_hand"] = hand
        (args.out / "full_set.json").write_text(json.dumps(summary, indent=1, default=str))
        if keep:
            summary["cpu_only"] = cpu_only(rec, tc, f16, work / f"hand.{keep}.gguf", eval_text,
                                           work, cores, args.ctx, args.cpu_chunks,
                                           args.check_tokens)
    summary["stages"] = [asdict(s) for s in rec.stages]
    summary["peaks"] = monitor.peak
    monitor.stop()

    # Ratios (convert counts on both sides: shared unless --reconvert).
    if hand and "gguf" in summary:
        bare = hand["convert"] + hand["quantize"]
        g = summary["gguf"]
        gguf_stage = gguf_s
        whole = set_wall
        summary["ratios"] = {
            "bare_by_hand_s": round(bare, 1),
            "gguf_stage_s": round(gguf_stage, 1),
            "whole_set_s": round(whole, 1),
            "whole_set_vs_by_hand": round(whole / bare, 3),
            "gguf_stage_vs_by_hand": round(gguf_stage / bare, 3),
            "gguf_one_worker_s_derived": round(convert_s + g["serial_derived"], 1),
            "gguf_stage_vs_one_worker_derived": round(
                gguf_stage / (convert_s + g["serial_derived"]), 3),
            "note": "each side ran its own convert (the set first, then by hand); the GGUF "
                    "stage includes its convert and preflight; the one-worker figure is the "
                    "sum of the overlapped run's step times (quantize + measure + check), "
                    "derived, not a separate run",
        }
    cpu = summary.get("cpu_only")
    if cpu and hand:
        cpu["gguf_set_s_derived"] = round(
            hand["convert"] + hand["quantize"] + cpu["base_s_per_chunk"] * args.chunks
            + len(types) * (cpu["kld_s_per_chunk"] * args.chunks + cpu["check_s"]), 1)
        cpu["note"] = (f"derived: this run's by-hand convert + quantize, then at {args.chunks} "
                       f"windows the measured per-window rates (every type at {cpu['type']}'s) "
                       "and checks one after another, all on the CPU")
    (args.out / "full_set.json").write_text(json.dumps(summary, indent=1, default=str))
    print_table(summary)
    return 0


def print_table(summary: dict[str, Any]) -> None:
    print(f"\nfull set: {summary['standin']} on {summary['gpu'] or 'CPU only'}, "
          f"{summary['cores']} cores  (random weights: PPL/KLD meaningless)")
    print(f"{'stage':58} {'wall s':>8} {'RAM GiB':>8} {'VRAM GiB':>8} {'disk GiB':>8}")
    for s in summary["stages"]:
        print(f"{s['name'][:58]:58} {s['seconds']:8.1f} {_gib(s['peak_ram']):>8} "
              f"{_gib(s['peak_vram']):>8} {_gib(s['peak_disk']):>8}")
    g = summary.get("gguf")
    if g:
        print(f"\n{'type':8} {'quant s':>8} {'meas s':>7} {'check s':>7} {'GiB':>6} {'KLD':>8} "
              f"{'PPL':>10} backend")
        for t, d in g["types"].items():
            print(f"{t:8} {d['quantize_s']:8.1f} {d['measure_s']:7.1f} {d['check_s']:7.1f} "
                  f"{d['bytes'] / GIB:6.2f} {d['kld_mean'] or 0:8.4f} {d['ppl']:10.1f} "
                  f"{d['backend']}")
    for m, d in summary.get("gpu_methods", {}).items():
        if "error" in d:
            print(f"{m}: ERROR {d['error'][:300]}")
        else:
            print(f"{m}: quantize {d['quant_s']} s, pipeline {d['wall_s']} s, "
                  f"{d['bytes'] / GIB:.2f} GiB, KLD {d['kld_mean']}, reload {d['check_kernel']}")
    cpu = summary.get("cpu_only")
    if cpu:
        print("\nCPU only (GPU hidden): " + ", ".join(f"{k} {v}" for k, v in cpu.items()))
    r = summary.get("ratios")
    if r:
        print("\n" + "\n".join(f"{k:36} {v}" for k, v in r.items()))


if __name__ == "__main__":
    sys.exit(main())
