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
* **transformers family** (GPTQ, AWQ, NF4, GPU runner): disk = source + outputs + the baseline's
  saved log-probabilities; RAM = the source loaded whole on the CPU (GPTQModel and transformers
  load there first); GPU memory = the unquantized model loaded whole to score the baseline
  (2 bytes/weight) plus activations, which is what bounds these methods on one card.
"""

from __future__ import annotations

from dataclasses import dataclass

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
              vocab: int = DEFAULT_VOCAB) -> Footprint:
    """Estimated needs of method ``m`` on ``n_params`` weights (``source_bytes``: the download,
    default 2 bytes a weight)."""
    source = source_bytes or 2 * n_params
    estimates = m.estimate(n_params, spec)
    outputs = sum(e.bytes for e in estimates)
    largest = max((e.bytes for e in estimates), default=0)
    logits = 2 * vocab * EVAL_SCORED_TOKENS  # f16 log-probabilities (GGUF keeps uint16 + scales)
    intermediate = int(m.intermediate_bytes_per_weight * n_params)
    disk = source + intermediate + outputs + logits
    if m.baseline_on_gpu:
        return Footprint(m.name, m.runner, source, intermediate, outputs, disk=disk,
                         ram=int(source * 1.1) + 4 * GIB, vram=2 * n_params + 4 * GIB)
    return Footprint(m.name, m.runner, source, intermediate, outputs, disk=disk,
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
         runners: dict[str, RunnerSpec]) -> list[Fit]:
    """Each method's needs for this model and what its runner lacks."""
    out = []
    for name in methods:
        m = METHODS[name]
        need = footprint(m, n_params, source_bytes)
        runner = runners.get(m.runner)
        lacks = shortfalls(need, runner) if runner else [f"no {m.runner} runner is configured"]
        out.append(Fit(name, need, lacks))
    return out
