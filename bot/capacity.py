"""What a job needs on its runner, and whether the runner has it (pure).

Size limits come from the runners, not from a constant: ``quantbot.toml`` describes each runner
label's disk, RAM and GPU memory (:class:`RunnerSpec`), and each method job's needs are estimated
from the parameter count, the source's bytes and the request: the download, the intermediate
16-bit file, every output, and peak memory. A model no runner can hold is skipped by the watcher
and refused by ``/quantize``, with the numbers.

The rules, per method family (measured on an 8B Llama; see bench/README.md):

* **GGUF** (llama.cpp, CPU runner): disk = source + 16-bit GGUF (2 bytes/weight) + every output +
  the reference logits of the evaluation; RAM = the largest output file loaded whole for its
  perplexity run (the tools map the 16-bit file, which the page cache holds, not the process),
  plus the converter's working set (one tensor at a time) and 2 GiB of slack.
* **transformers family** (GPTQ, AWQ, NF4, FP8, GPU runner): disk = source + outputs + the
  baseline's saved log-probabilities; RAM = the source loaded whole on the CPU (GPTQModel and
  transformers load there first); GPU memory = the unquantized model loaded whole to score the
  baseline (2 bytes/weight) plus activations, which is what bounds these methods on one card.
* **MLX** (CPU runner): disk as the transformers family; RAM = the source loaded whole, by
  ``mlx_lm.convert`` and by transformers scoring the shared baseline on the CPU; no GPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from bot.methods import METHODS, Method
from runners.spec import MethodSpec
from runners.units import human_bytes

GIB = 2**30
#: Evaluation the cards use (RunSettings' defaults): windows x tokens, half of them scored.
EVAL_SCORED_TOKENS = 32 * 256
#: A vocabulary to assume when the config is not known (Llama 3's is 128k).
DEFAULT_VOCAB = 128_256


@dataclass(frozen=True)
class RunnerSpec:
    """One self-hosted runner label's machine."""

    disk_bytes: int
    ram_bytes: int
    gpu_bytes: int = 0  # per GPU; 0: no GPU
    gpus: int = 0
    #: Jobs the machine runs at once (runner agents registered on it with this label): a GPU
    #: machine with 2 takes the GGUF job beside a GPTQ/AWQ one (runners/setup/README.md).
    slots: int = 1
    #: CPU cores: what a measurement on a runner without a GPU runs on (time estimates).
    cores: int = 16


#: A realistic self-hosted pair: a 16-core CPU box with 128 GiB RAM and 2 TB disk, and a GPU box
#: with one 80 GB card, 125 GiB RAM and 1 TB disk. Models up to ~80 B fit the CPU runner's GGUF.
DEFAULT_RUNNERS: dict[str, RunnerSpec] = {
    "cpu": RunnerSpec(disk_bytes=2 * 10**12, ram_bytes=128 * GIB),
    "gpu": RunnerSpec(disk_bytes=10**12, ram_bytes=125 * GIB, gpu_bytes=80 * GIB, gpus=1),
}


@dataclass(frozen=True)
class Footprint:
    """What one method job needs at its peak."""

    method: str
    runner: str
    download: int
    intermediate: int
    outputs: int
    disk: int
    ram: int
    vram: int

    def describe(self) -> str:
        parts = [f"{human_bytes(self.disk)} disk", f"{human_bytes(self.ram)} RAM"]
        if self.vram:
            parts.append(f"{human_bytes(self.vram)} GPU memory")
        return ", ".join(parts)


def footprint(m: Method, n_params: int, source_bytes: int | None, spec: MethodSpec | None = None,
              vocab: int = DEFAULT_VOCAB, runner: str | None = None) -> Footprint:
    """Estimated needs of method ``m`` on ``n_params`` weights (``source_bytes``: the download,
    default 2 bytes a weight) on runner label ``runner`` (default: the method's own)."""
    label = runner or m.runner
    source = source_bytes or 2 * n_params
    estimates = m.estimate(n_params, spec)
    outputs = sum(e.bytes for e in estimates)
    largest = max((e.bytes for e in estimates), default=0)
    logits = 2 * vocab * EVAL_SCORED_TOKENS  # f16 log-probabilities (GGUF keeps uint16 + scales)
    intermediate = int(m.intermediate_bytes_per_weight * n_params)
    disk = source + intermediate + outputs + logits
    if m.baseline_on_gpu:
        return Footprint(m.name, label, source, intermediate, outputs, disk=disk,
                         ram=int(source * 1.1) + 4 * GIB, vram=2 * n_params + 4 * GIB)
    if m.work_group == "transformers":  # MLX: the shared baseline is scored on the CPU
        return Footprint(m.name, label, source, intermediate, outputs, disk=disk,
                         ram=int(source * 1.1) + 4 * GIB, vram=0)
    return Footprint(m.name, label, source, intermediate, outputs, disk=disk,
                     ram=int(largest * 1.1) + 2 * GIB, vram=0)


def shortfalls(need: Footprint, runner: RunnerSpec) -> list[str]:
    """What the runner lacks for this job, in words (empty: it fits)."""
    lacks = []
    if need.disk > runner.disk_bytes:
        lacks.append(f"{human_bytes(need.disk)} disk (the {need.runner} runner has "
                     f"{human_bytes(runner.disk_bytes)})")
    if need.ram > runner.ram_bytes:
        lacks.append(f"{human_bytes(need.ram)} RAM (the {need.runner} runner has "
                     f"{human_bytes(runner.ram_bytes)})")
    if need.vram > runner.gpu_bytes * max(runner.gpus, 0):
        lacks.append(f"{human_bytes(need.vram)} GPU memory (the {need.runner} runner has "
                     f"{human_bytes(runner.gpu_bytes * runner.gpus)})")
    return lacks


@dataclass(frozen=True)
class Fit:
    """One method's verdict for one model on the configured runners."""

    method: str
    need: Footprint
    lacks: list[str]

    @property
    def ok(self) -> bool:
        return not self.lacks

    def describe(self) -> str:
        if self.ok:
            label = METHODS[self.method].label
            return f"{label}: needs {self.need.describe()} on the {self.need.runner} runner"
        return f"{METHODS[self.method].label}: needs {'; '.join(self.lacks)}"


def fits(methods: tuple[str, ...], n_params: int, source_bytes: int | None,
         runners: dict[str, RunnerSpec], specs: Mapping[str, MethodSpec] | None = None,
         vocab: int = DEFAULT_VOCAB) -> list[Fit]:
    """Each method's needs for this model (with the requested ``specs``, else each method's
    defaults) and what its runner lacks, on the label :func:`place` chooses."""
    def need(name: str, label: str) -> Fit:
        m = METHODS[name]
        job = footprint(m, n_params, source_bytes, (specs or {}).get(name), vocab, label)
        runner = runners.get(label)
        return Fit(name, job, shortfalls(job, runner) if runner
                   else [f"no {label} runner is configured"])

    own = {name: need(name, METHODS[name].runner) for name in methods}
    out = []
    for name in methods:
        other = METHODS[name].also_on
        if other is not None and other in runners:
            moved = need(name, other)
            beside = [f.need for n, f in own.items() if n != name and f.need.runner == other]
            if place(moved.need, beside, runners[other]):
                out.append(moved)
                continue
        out.append(own[name])
    return out


def place(job: Footprint, beside: list[Footprint], runner: RunnerSpec) -> bool:
    """Whether ``job`` goes to ``runner``'s label rather than its method's own (pure): the
    machine holds it, has a free slot beside the ``beside`` jobs of that label, and holds it
    together with the largest of them at once (the jobs share its disk and memory)."""
    if len(beside) + 1 > runner.slots:
        return False
    together = replace(job, disk=job.disk + max((b.disk for b in beside), default=0),
                       ram=job.ram + max((b.ram for b in beside), default=0),
                       vram=job.vram + max((b.vram for b in beside), default=0))
    return not shortfalls(together, runner)


@dataclass(frozen=True)
class RunnerFix:
    """The ``[runners.<label>]`` settings that would hold a job: only those that fall short
    (None: enough already), in the keys ``bot/config.py`` reads."""

    runner: str
    disk: int | None = None
    ram: int | None = None
    gpu_memory: int | None = None  # per card, at ``gpus`` cards
    gpus: int | None = None  # set only where the label has no GPU at all

    @property
    def settings(self) -> list[tuple[str, str]]:
        """``(key, TOML value)`` pairs, sizes rounded up to whole GB so that they hold the job."""
        sizes = [(k, v) for k, v in (("disk", self.disk), ("ram", self.ram),
                                     ("gpu_memory", self.gpu_memory)) if v is not None]
        pairs = [(k, f'"{math.ceil(v / 10**9)}GB"') for k, v in sizes]
        return pairs + ([("gpus", str(self.gpus))] if self.gpus is not None else [])

    def merge(self, other: RunnerFix) -> RunnerFix:
        """One fix holding both jobs of the same runner label."""
        def most(a: int | None, b: int | None) -> int | None:
            return max(a, b) if a is not None and b is not None else a if b is None else b
        return RunnerFix(self.runner, most(self.disk, other.disk), most(self.ram, other.ram),
                         most(self.gpu_memory, other.gpu_memory), most(self.gpus, other.gpus))


def runner_fix(need: Footprint, runner: RunnerSpec | None) -> RunnerFix:
    """What the job's runner label must offer to hold ``need``: GPU memory per card at the
    runner's GPU count, as :func:`shortfalls` counts every card of the machine."""
    have = runner or RunnerSpec(disk_bytes=0, ram_bytes=0)
    short_gpu = need.vram > have.gpu_bytes * max(have.gpus, 0)
    cards = max(have.gpus, 1)
    return RunnerFix(
        need.runner,
        disk=need.disk if need.disk > have.disk_bytes else None,
        ram=need.ram if need.ram > have.ram_bytes else None,
        gpu_memory=math.ceil(need.vram / cards) if short_gpu else None,
        gpus=1 if short_gpu and have.gpus < 1 else None)


def runner_fixes(fixes: list[RunnerFix]) -> list[RunnerFix]:
    """One fix per runner label (the largest need of each setting), in first-seen order."""
    merged: dict[str, RunnerFix] = {}
    for fix in fixes:
        merged[fix.runner] = merged[fix.runner].merge(fix) if fix.runner in merged else fix
    return list(merged.values())
