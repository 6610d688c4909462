"""GGUF on a GPU machine: quantize on the CPU and measure on the GPU at the same time.

On one H100 with 16 cores (issue 10, a Llama-3.1-8B-shaped model), ``llama-quantize`` takes
25-85 s per file with every core, while ``llama-perplexity --kl-divergence`` takes about 7 s on
the GPU (167 s on 16 CPU threads). Several quantizers at once gain nothing there (four at a time
with four threads each: 278 s against 258 s one after another), so the stage is laid out as two
lanes that use different resources:

- the **CPU lane** quantizes the types one after another, each with every core;
- the **evaluation lane** (one per GPU) first runs the unquantized model's perplexity, which
  writes the reference logits, while the CPU quantizes the first type; then it measures each
  finished file (and runs whatever else the caller asks per file, such as the load check) while
  the CPU quantizes the next one.

The stage then costs about the serial quantization plus the last file's measurement.
:func:`run_overlapped` is the scheduler, generic over what a step does (the pipeline passes its
own quantize/measure functions, which record the backend, ``cuda`` or ``cpu``, that measured each
number: the two give slightly different KL divergences for the same file, 0.8125 against 0.8039
on random weights, issue 10); it records every step's lane, start and end
(:class:`OverlapResult`), so a caller can show how much of the evaluation was hidden.

A failure in either lane stops the CPU lane before its next type; the first error is raised once
both lanes have stopped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P")  # what quantizing one type gives (its file or parts)
B = TypeVar("B")  # what the baseline gives
V = TypeVar("V")  # what measuring one type gives

CPU = "cpu"
EVAL = "eval"

#: Threads the evaluation lane's tools get beside a quantizer that has every core: on the GPU
#: they only feed the card and compute the KL divergence over the saved logits.
GPU_EVAL_THREADS = 4


@dataclass(frozen=True)
class Step:
    """One finished step of a lane (times from the scheduler's clock, seconds)."""

    lane: str
    name: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class OverlapResult(Generic[B, V]):
    """What :func:`run_overlapped` did: the baseline, each type's measurement (in the order
    asked), every step, and the stage's wall time."""

    baseline: B
    results: dict[str, V]
    steps: list[Step] = field(default_factory=list)
    wall_seconds: float = 0.0

    def busy(self, lane: str) -> float:
        """Seconds the lane spent in steps."""
        return sum(s.seconds for s in self.steps if s.lane.startswith(lane))

    def serial_seconds(self) -> float:
        """The same steps one after another (one worker, no overlap): derived from the step
        times measured here, not run."""
        return sum(s.seconds for s in self.steps)

    def hidden_seconds(self) -> float:
        """Evaluation time that ran while the CPU lane was busy."""
        return max(0.0, self.serial_seconds() - self.wall_seconds)

    def timeline(self) -> list[dict[str, object]]:
        """Steps as plain dicts, times relative to the first start (for JSON)."""
        t0 = min((s.start for s in self.steps), default=0.0)
        return [{"lane": s.lane, "step": s.name, "start": round(s.start - t0, 3),
                 "end": round(s.end - t0, 3)} for s in sorted(self.steps, key=lambda s: s.start)]


def plan_lanes(cores: int, backend: str) -> tuple[int, int]:
    """``(quantize threads, evaluation threads)`` (pure).

    With the evaluation on a GPU the quantizer keeps every core and the evaluation's tools get
    :data:`GPU_EVAL_THREADS` (slightly oversubscribed: they mostly wait on the card). With the
    evaluation on the CPU there is nothing to overlap: callers use the serial pool instead; if
    they overlap anyway, the cores are halved.
    """
    cores = max(1, cores)
    if backend == "cuda":
        return cores, max(1, min(GPU_EVAL_THREADS, cores))
    half = max(1, cores // 2)
    return max(1, cores - half), half


def run_overlapped(types: Sequence[str], quantize: Callable[[str], P],
                   measure: Callable[[str, P, B, int], V], baseline: Callable[[], B],
                   eval_lanes: int = 1,
                   clock: Callable[[], float] = time.perf_counter) -> OverlapResult[B, V]:
    """Quantize ``types`` in order on the calling thread; measure each on an evaluation lane.

    ``baseline()`` runs first on evaluation lane 0, at the same time as the first
    ``quantize``; ``measure(qtype, product, baseline_value, lane)`` runs on lane ``lane``
    (``0 … eval_lanes-1``; with several GPUs, the caller maps lanes to cards) as soon as that
    type is quantized and the baseline is done, in order of quantization.
    """
    if eval_lanes < 1:
        raise ValueError("at least one evaluation lane")
    if len(set(types)) != len(types):
        raise ValueError(f"a type is listed twice: {list(types)}")
    steps: list[Step] = []
    lock = threading.Lock()
    errors: list[tuple[float, BaseException]] = []
    stop = threading.Event()
    base_done = threading.Event()
    base_box: list[B] = []
    results: dict[str, V] = {}
    work: queue.Queue[tuple[str, P] | None] = queue.Queue()

    def record(lane: str, name: str, start: float) -> None:
        with lock:
            steps.append(Step(lane, name, start, clock()))

    def fail(exc: BaseException) -> None:
        with lock:
            errors.append((clock(), exc))
        stop.set()

    def eval_lane(lane: int) -> None:
        tag = f"{EVAL}{lane}" if eval_lanes > 1 else EVAL
        if lane == 0:
            start = clock()
            try:
                base_box.append(baseline())
                record(tag, "baseline", start)
            except BaseException as exc:
                fail(exc)
            finally:
                base_done.set()
        else:
            base_done.wait()
        while True:
            item = work.get()
            if item is None:
                return
            if stop.is_set():
                continue  # drain: nothing more is measured after a failure
            qtype, product = item
            start = clock()
            try:
                value = measure(qtype, product, base_box[0], lane)
            except BaseException as exc:
                fail(exc)
                continue
            record(tag, f"measure {qtype}", start)
            with lock:
                results[qtype] = value

    t0 = clock()
    lanes = [threading.Thread(target=eval_lane, args=(i,), name=f"gguf-eval-{i}", daemon=True)
             for i in range(eval_lanes)]
    for t in lanes:
        t.start()
    try:
        for qtype in types:
            if stop.is_set():
                break
            start = clock()
            try:
                product = quantize(qtype)
            except BaseException as exc:
                fail(exc)
                break
            record(CPU, f"quantize {qtype}", start)
            work.put((qtype, product))
    finally:
        for _ in lanes:
            work.put(None)
        for t in lanes:
            t.join()
    wall = clock() - t0
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    return OverlapResult(baseline=base_box[0], results={t: results[t] for t in types},
                         steps=steps, wall_seconds=wall)
