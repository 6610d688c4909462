"""The mix search: measure how much each group of tensors costs in KL divergence at each type,
find the assignment of least predicted KLD at the size of each requested stock type, measure the
best candidates for real, and write the winner: the file its recipe makes with plain
``llama-quantize``.

Everything here is measured on the *tuning split*: evaluation windows after the ones the cards
report (the held-out split, never seen by the search). The pipeline then measures each mix on
the held-out windows like any other file and publishes it only where it wins there
(:func:`verdict`).

Steps (the sweeps cached in the work folder, so a rerun resumes):

1. the tuning reference: the unquantized model's logits on the windows after ``--chunks``;
2. the tensors' sources: the run's stock files hold most tensors at most types already
   (:func:`tensor_sources`); for a type some probe needs a tensor at that none holds, one *gap
   file* quantizes just those tensors at that type (the rest at the cheap Q8_0). The gap files
   are made on the CPU one after another while the probes that do not need them are measured;
3. per requested size, the sweep around that stock file: the file with one group changed to one
   type, for every group and each type within two ladder steps of its own
   (:func:`probe_types`), each measured on the tuning windows (the change of mean KLD against
   the stock file's, on the same tokens). A probe is written as nothing but links to parts
   shared by all probes (:mod:`runners.gguf.parts`); on a GPU several are measured at once
   (:func:`probe_workers`), every size's in one pool;
4. the knapsack (:func:`runners.gguf.mix_plan.search`) over those changes at the stock file's
   bytes and at 1 % and 2 % less, each candidate measured the same way; the best one is written
   by splicing its tensors into the stock file (:mod:`runners.gguf.splice`): the bytes its
   recipe makes with plain ``llama-quantize`` (a test), without quantizing again.

Each size is searched around its own stock file because llama.cpp's stock types differ in more
than one group: a sweep around Q4_K_M predicts the Q5_K_M-sized mixes badly (measured on
SmolLM2: its best Q5_K_M-sized candidate only matched Q5_K_M).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shlex
import shutil
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from runners.errors import QuantbotError
from runners.evaluation_mix import EvaluationText
from runners.gguf import llama_tools
from runners.gguf.header import GgufHeader, TensorInfo, read_header
from runners.gguf.logits import write_windows
from runners.gguf.mix_plan import (
    Assignment,
    Choice,
    Group,
    assigned_types,
    group_bytes,
    group_bytes_delta,
    groups_of,
    mix_name,
    recipe_args,
    search,
    tensor_type_args,
    type_bytes,
)
from runners.gguf.parts import PartStore
from runners.gguf.reference import Reference, build_reference, scored
from runners.gguf.splice import splice
from runners.llamacpp import Toolchain
from runners.proc import ToolRun
from runners.progress import progress
from runners.results import Quality, Variant
from runners.stats import ci95, lies_below

log = logging.getLogger(__name__)

#: Evaluation windows after ``--chunks`` that the search measures on.
TUNING_WINDOWS = 8
#: Types of a matrix ``llama-quantize`` did not quantize in a stock file: it never will.
UNQUANTIZED = frozenset({"F32", "F16", "BF16"})
#: Candidates measured per size: the knapsack at the stock file's bytes and at these shares.
CANDIDATE_BUDGETS = (1.0, 0.99, 0.98)
#: A group is tried at the types of its ladder up to this many steps from the ones it has.
PROBE_REACH = 2
#: On a GPU, with no ``mix_minutes`` asked, the sweeps start no probe past this share of the
#: stock set's own time from the mix stage's start: the rest is for the candidates and the
#: mixes' writing, measuring and checking, so that the stage adds at most about the stock
#: set's time (issue 20 item 6), the probes least likely to change a mix cut first.
SWEEP_SHARE_OF_STOCK = 0.75


def sweep_budget(asked_minutes: int, backend: str, stock_seconds: float,
                 spent_seconds: float) -> tuple[float | None, str]:
    """The sweeps' time limit in minutes and where it comes from (pure): ``mix_minutes`` when
    asked; on a GPU, what is left of :data:`SWEEP_SHARE_OF_STOCK` of the stock set's time after
    the ``spent_seconds`` the stage has taken; on the CPU none (the bot asks for
    ``mix_minutes`` there: :func:`bot.plan`)."""
    if asked_minutes:
        return float(asked_minutes), "mix_minutes"
    if backend == "cuda":
        left = max(0.0, SWEEP_SHARE_OF_STOCK * stock_seconds - spent_seconds)
        return round(left / 60, 2), "stock set"
    return None, ""


@dataclass(frozen=True)
class MixPlan:
    """What one mix is: the stock type it competes with, the base type its recipe starts
    from, the groups it changes, and what the search predicted and measured of it."""

    name: str
    stock: str
    base: str
    types: dict[str, str]
    args: list[str]
    file_bytes: int
    predicted_kld: float
    tuning_kld: float
    tuning_kld_err: float


@dataclass
class SearchRecord:
    """The search as ``quantbot.json`` keeps it: per requested size, the sweep around its stock
    file and the candidates; the tuning windows; the time taken."""

    tuning_windows: int
    tuning_tokens: int
    sizes: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by_budget: bool = False
    #: Probes the sweeps planned (``sizes[*].sweep`` holds those measured).
    planned_probes: int = 0
    #: The sweeps' time limit and where it came from: ``mix_minutes``, the stock set's time
    #: (:func:`sweep_budget`), or none.
    budget_minutes: float | None = None
    budget_from: str = ""
    #: Files quantized for the search: per type, the tensors some probe needs at it that no
    #: stock file holds (:func:`missing_tensors`).
    gap_files: list[dict] = field(default_factory=list)


def tuning_reference(tc: Toolchain, base: Path, text: EvaluationText, held_out: Reference,
                     folder: Path, ctx: int, threads: int, log_file: Path | None) -> Reference:
    """The reference logits of the :data:`TUNING_WINDOWS` windows that follow the held-out ones
    in the same turn of domains (so no token of them is measured on a card)."""
    wanted = held_out.chunks + TUNING_WINDOWS
    long = build_reference(tc, base, text, folder / f"evaluation-n{wanted}.kld", ctx, wanted,
                           threads, log_file)
    if long.labels[:held_out.chunks] != held_out.labels or long.chunks <= held_out.chunks:
        raise QuantbotError(
            f"the evaluation text gives {long.chunks} windows of {ctx} tokens, and the mix search "
            f"measures on {TUNING_WINDOWS} beyond the {held_out.chunks} the cards use",
            "lower --chunks or --ctx, or drop `mixes` from the request")
    out = folder / f"tuning-n{long.chunks - held_out.chunks}.kld"
    if not out.exists():
        write_windows([long.logits], [(0, w) for w in range(held_out.chunks, long.chunks)], out)
    return Reference(out, long.labels[held_out.chunks:], long.quality, long.n_ctx)


@dataclass(frozen=True)
class SearchTools:
    """What the search runs and how: ``llama-quantize`` from ``quantize`` (the CPU build) with
    ``quantize_threads``; ``llama-perplexity`` from ``measure`` (the CUDA build on a GPU runner),
    ``workers`` probes at once with ``measure_threads`` each; the search's own files (the
    gap files and the probes) in a folder under ``ram`` when it has room for them, else in
    the work folder (:func:`scratch_folder`)."""

    quantize: Toolchain
    measure: Toolchain
    quantize_threads: int
    measure_threads: int
    workers: int = 1
    ram: Path | None = Path("/dev/shm")
    log_file: Path | None = None


#: Probes measured at once on a GPU, each its own llama-perplexity: a probe's start, model load
#: and KLD arithmetic (on the CPU) leave the card idle most of the time.
GPU_PROBE_WORKERS = 6
#: What a measuring process holds on the GPU besides the file: context, logits, buffers.
GPU_PROBE_OVERHEAD = 2 * 10**9


def probe_workers(backend: str, probe_bytes: int, gpu_bytes: int | None) -> int:
    """Probes measured at once (pure): one on the CPU, where each takes every core; on a GPU up
    to :data:`GPU_PROBE_WORKERS`, as many as fit in 80 % of its memory."""
    if backend != "cuda" or not gpu_bytes:
        return 1
    each = probe_bytes * 1.25 + GPU_PROBE_OVERHEAD
    return max(1, min(GPU_PROBE_WORKERS, int(0.8 * gpu_bytes // each)))


def scratch_folder(folder: Path, need_bytes: int, ram: Path | None) -> Path:
    """Where the search writes its own files: a folder on the RAM file system ``ram`` when it
    has room for ``need_bytes`` and a quarter more, else ``folder/scratch``. A probe is written,
    measured once and deleted, so on disk its bytes are only write-back traffic (hundreds of GB
    for an 8B search); the gap files go once the search is done."""
    try:
        roomy = ram is not None and ram.is_dir() and shutil.disk_usage(ram).free > need_bytes * 1.25
    except OSError:
        roomy = False
    if roomy and ram is not None:
        tag = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
        out = ram / f"quantbot-search-{tag}"  # the same for a rerun of this work folder
        out.mkdir(mode=0o700, exist_ok=True)
        # a shared RAM folder: use only a real folder of ours, never one planted there
        if not out.is_symlink() and out.stat().st_uid == os.getuid():
            return out
        log.warning("mixes: %s is not this user's own folder; searching on disk", out)
    out = folder / "scratch"
    out.mkdir(parents=True, exist_ok=True)
    return out


def gap_bytes(tensors: Iterable[TensorInfo], type_name: str, names: Iterable[str]) -> int:
    """About the size of the gap file for ``type_name`` (pure): ``names`` at that type, every
    other matrix at Q8_0 (a gap file's main type), vectors as they are."""
    wanted = set(names)
    return sum(t.n_bytes if len(t.shape) < 2 else
               type_bytes(type_name if t.name in wanted else "Q8_0", t.n_elements)
               for t in tensors)


def _kld(tc: Toolchain, model: Path, reference: Reference, threads: int,
         log_file: Path | None) -> tuple[Quality, ToolRun]:
    """``model``'s KLD on ``reference``'s tokens, and the tool's run (its output and time)."""
    run = llama_tools.perplexity_kld(tc, model, reference.logits, threads, log_file)
    return llama_tools.parse_kld(run.output), run


def tensor_sources(headers: Mapping[Path, GgufHeader]) -> dict[tuple[str, str], Path]:
    """``(tensor, type)`` → a file that holds the tensor at that type (pure over the headers).
    ``llama-quantize`` quantizes each tensor from the same 16-bit weights and importance matrix
    whatever the file's other types, so every stock file of the run is a source of its tensors
    at their types (a test checks the bytes), and only the rest needs a file of its own."""
    out: dict[tuple[str, str], Path] = {}
    for path, header in headers.items():
        for t in header.tensors:
            out.setdefault((t.name, t.type_name), path)
    return out


def missing_tensors(probes: Iterable[tuple[Group, str]],
                    sources: Mapping[tuple[str, str], Path]) -> dict[str, list[str]]:
    """Type → the tensors some probe needs at that type that no file holds (pure), types in
    first-needed order: each type gets a gap file of just those tensors (:func:`_gap_file`)."""
    out: dict[str, dict[str, None]] = {}
    for g, t in probes:
        for name in g.tensors:
            if (name, t) not in sources:
                out.setdefault(t, {})[name] = None
    return {t: list(names) for t, names in out.items()}


def _gap_file(tools: SearchTools, f16: Path, type_name: str, names: list[str], folder: Path,
              imatrix: Path | None) -> Path:
    """``names`` at ``type_name``, the rest at Q8_0: where splices take the tensors no stock file
    holds. A tensor's bytes at a type depend only on its 16-bit weights and the importance
    matrix, so they are those of a file with every tensor at that type (a test compares), and
    only the gaps pay for the type's quantization, not every tensor of the model at each of
    the six or so types a search needs."""
    key = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
    out = folder / f"gaps-{type_name}-{key}.gguf"
    if not out.exists():
        tmp = folder / f".gaps-{type_name}-{key}.partial"
        llama_tools.quantize(tools.quantize, f16, tmp, "Q8_0", tools.quantize_threads, imatrix,
                             tools.log_file,
                             tuple(tensor_type_args(dict.fromkeys(names, type_name))))
        tmp.rename(out)
    return out


@dataclass(frozen=True)
class ProbeTimes:
    """Where one probe's time went: what to shorten to make the search cheaper."""

    parts_s: float  # its parts: written on first use, or waited for while a gap file was made
    load_s: float | None  # llama-perplexity's start to its first window (None: no log stamps)
    tool_s: float  # llama-perplexity's whole run: load, windows, KLD on the CPU, exit


def _probe_kld(tools: SearchTools, store: PartStore, base_file: Path,
               base_types: Mapping[str, str], changes: Mapping[str, str],
               tuning: Reference, deadline: float | None = None,
               ) -> tuple[Quality, ProbeTimes] | None:
    """The tuning KLD of ``base_file`` with each group in ``changes`` at that type (a folder of
    links to shared parts, measured, deleted), and where the time went; None when ``deadline``
    passed while its parts were waited for."""
    start = time.perf_counter()
    probe = store.probe(base_file, base_types, changes, deadline)
    if probe is None:
        return None
    assembled = time.perf_counter() - start
    try:
        quality, run = _kld(tools.measure, probe, tuning, tools.measure_threads, tools.log_file)
    finally:
        shutil.rmtree(probe.parent, ignore_errors=True)
    load = llama_tools.parse_load_seconds(run.output)
    return quality, ProbeTimes(
        round(assembled, 3), None if load is None else round(load, 3), round(run.seconds, 3))


def _make_gap_files(tools: SearchTools, f16: Path, missing: Mapping[str, list[str]],
                    store: PartStore, scratch: Path, imatrix: Path | None,
                    record: SearchRecord, stop: threading.Event) -> None:
    """Each gap file in turn, handed to the parts as it is made (the probes that need it wait,
    the rest are measured meanwhile). After ``stop`` (the sweeps are over: done, out of time or
    failed) none starts and one being made is dropped; a failure before it stops every probe
    still waiting, one after it is only logged (no probe needs the file)."""
    try:
        for type_name, names in missing.items():
            if stop.is_set():
                break
            gaps = _gap_file(tools, f16, type_name, names, scratch, imatrix)
            if stop.is_set():
                gaps.unlink(missing_ok=True)
                break
            record.gap_files.append({"file": gaps.name, "type": type_name,
                                     "tensors": len(names)})
            store.provide(gaps, type_name, names)
    except Exception as exc:
        store.fail(exc)
        if not stop.is_set():
            raise
        log.warning("mixes: a gap file no probe needed any more failed: %s", exc)
        return
    store.fail(QuantbotError("the search stopped before this gap file was made",
                             "see the lines above"))


def search_bytes(headers: Mapping[Path, GgufHeader], wanted: Iterable[tuple[Group, str]],
                 missing: Mapping[str, list[str]]) -> int:
    """About the RAM the search's files take at most (pure): every stock file's groups as parts,
    every probed group at every type it is probed at, and the largest gap file (one at a
    time: its tensors become parts and it goes)."""
    tensors = next(iter(headers.values())).tensors
    elements = {t.name: t.n_elements for t in tensors}
    probed = sum(group_bytes(g, elements, t) for g, t in set(wanted))
    gap = max((gap_bytes(tensors, t, names) for t, names in missing.items()), default=0)
    return sum(sum(t.n_bytes for t in h.tensors) for h in headers.values()) + probed + gap


def run_search(tools: SearchTools, f16: Path, stock_files: dict[str, Path], sizes: list[str],
               imatrix: Path | None, tuning: Reference, folder: Path,
               minutes: float | None = None, out_of: Mapping[str, Path] | None = None,
               ) -> tuple[list[MixPlan], SearchRecord]:
    """The mix at the size of each stock type in ``sizes`` (none where no candidate changes a
    group), each searched around that stock file's own types, and the search's record.
    ``minutes`` caps the sweeps' time: groups not reached keep their stock types, and a size
    reached with no measurement gets no mix. Each mix's file is written to ``out_of[size]`` by
    splicing its planned tensors into the stock file: the bytes its recipe makes with plain
    ``llama-quantize`` (a test), in seconds rather than a quantization's minute."""
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    record = SearchRecord(tuning_windows=tuning.chunks,
                          tuning_tokens=tuning.chunks * scored(tuning.n_ctx))
    headers = {path: read_header(path) for path in stock_files.values()}
    tensors = headers[stock_files[sizes[0]]].tensors
    groups = searched_groups(tensors)
    sources = tensor_sources(headers)
    wanted = [(g, t) for size in sizes for g in groups
              for t in probe_types(g, _types(headers[stock_files[size]]))]
    # the smallest gap files first: each one made lets the probes that wait for it go
    missing = dict(sorted(missing_tensors(wanted, sources).items(), key=lambda kv: len(kv[1])))
    scratch = scratch_folder(folder, search_bytes(headers, wanted, missing), tools.ram)
    in_ram = tools.ram is not None and scratch.is_relative_to(tools.ram)
    log.info("mixes: %d probe(s) at once; gap files for %s; search files in %s",
             tools.workers, ", ".join(f"{t} ({len(n)} tensors)" for t, n in missing.items())
             or "no type", scratch)
    for stale in scratch.iterdir():  # another run's parts may hold other tensors under a name
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    store = PartStore(scratch, groups, len(tensors), sources, missing)
    deadline = None if minutes is None else start + 60 * minutes
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(max_workers=1) as gap_maker:
            gaps = gap_maker.submit(_make_gap_files, tools, f16, missing, store, scratch,
                                    imatrix, record, stop)
            try:
                plans = _search_sizes(tools, store, stock_files, sizes, headers, missing,
                                      tuning, folder, record, deadline, stop)
            finally:
                stop.set()  # a gap file being made is finished; no other starts
            gaps.result()
        for plan in plans:
            if out_of is not None:
                splice(stock_files[plan.stock], store.sources_of(plan.types), out_of[plan.stock])
    except BaseException:
        if in_ram:  # RAM is not kept for a rerun; the work folder is
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    shutil.rmtree(scratch, ignore_errors=True)  # done: its parts served their turn
    record.seconds = round(time.perf_counter() - start, 1)
    return plans, record


def searched_groups(stock_tensors: Iterable[TensorInfo]) -> list[Group]:
    """The groups of a stock file's tensors that the search may change (pure): not the matrices
    ``llama-quantize`` left unquantized (MoE routers, some ``ssm_*`` …), which it keeps so at
    every type asked, so no probe could change them."""
    return groups_of(t for t in stock_tensors if t.type_name not in UNQUANTIZED)


def _types(header: GgufHeader) -> dict[str, str]:
    return {t.name: t.type_name for t in header.tensors}


def _ladder_places(group: Group, base_types: Mapping[str, str]) -> list[int]:
    """Where the group's tensors sit on its ladder in the base file (types off it left out)."""
    return [group.ladder.index(base_types[n]) for n in group.tensors
            if base_types[n] in group.ladder]


def probe_types(group: Group, base_types: dict[str, str], reach: int = PROBE_REACH) -> list[str]:
    """The types a group is tried at (pure): its ladder within ``reach`` steps of the types its
    tensors have in the base file, less a type all of them already have."""
    ladder = group.ladder
    held = _ladder_places(group, base_types)
    low, high = (min(held) - reach, max(held) + reach) if held else (0, len(ladder))
    return [t for i, t in enumerate(ladder) if low <= i <= high
            and any(base_types[n] != t for n in group.tensors)]


def probe_order(group: Group, type_name: str, missing: Mapping[str, list[str]]) -> int:
    """When a probe can start (pure): 0 if every tensor it needs is held already, else one
    more than the place of its type's gap file in the order they are made."""
    for rank, (t, names) in enumerate(missing.items(), start=1):
        if t == type_name and not set(group.tensors).isdisjoint(names):
            return rank
    return 0


def probe_step(group: Group, base_types: Mapping[str, str], type_name: str) -> int:
    """How many ladder steps ``type_name`` lies outside the group's own types (pure; at least
    1): the sweep measures every group one step away before any two steps away."""
    held = _ladder_places(group, base_types)
    i = group.ladder.index(type_name)
    if not held:
        return 1
    return max(1, min(held) - i, i - max(held))


def nearer_type(group: Group, base_types: Mapping[str, str], type_name: str) -> str:
    """The type one ladder step closer to the group's own types than ``type_name`` (pure)."""
    i = group.ladder.index(type_name)
    return group.ladder[i + 1 if i < min(_ladder_places(group, base_types)) else i - 1]


def promise(kld_delta: float, bytes_delta: int) -> float:
    """How good a measured change is for the knapsack (pure; larger is better): bytes saved per
    unit of KLD added for a step down, KLD saved per byte for a step up. A further step is
    worth measuring first where the nearer one was most worth it."""
    if bytes_delta < 0:
        return math.inf if kld_delta <= 0 else -bytes_delta / kld_delta
    return -kld_delta / max(bytes_delta, 1)


def by_promise(probes: list[tuple[int, Group, str]], scores: Mapping[tuple[int, str, str], float],
               downward: Mapping[tuple[int, str, str], bool]) -> list[tuple[int, Group, str]]:
    """``probes`` (size index, group, type) in order of their nearer probe's :func:`promise`,
    ranked within each direction (steps down and steps up are not on one scale) and the two
    rankings interleaved; probes whose nearer one is unmeasured last (pure)."""
    ranked: dict[tuple[int, str, str], float] = {}
    for down in (True, False):
        mine = [(i, g.key, t) for i, g, t in probes if downward[(i, g.key, t)] is down]
        order = sorted((k for k in mine if k in scores), key=lambda k: -scores[k])
        for place, key in enumerate(order):
            ranked[key] = (place + 0.5) / len(order)
        ranked.update((k, 2.0) for k in mine if k not in scores)
    return sorted(probes, key=lambda p: ranked[(p[0], p[1].key, p[2])])


def _search_sizes(tools: SearchTools, store: PartStore, stock_files: dict[str, Path],
                  sizes: list[str], headers: Mapping[Path, GgufHeader],
                  missing: Mapping[str, list[str]], tuning: Reference, folder: Path,
                  record: SearchRecord, deadline: float | None,
                  stop: threading.Event) -> list[MixPlan]:
    """Every size's sweep in one pool (``tools.workers`` probes at once), one ladder step at a
    time: every group one step from its types (those that need no gap file first), then two
    steps where one step was most worth it (:func:`promise`), so a deadline cuts the probes
    least likely to change a mix; then every size's candidates (``stop`` set between: no gap
    file is needed past the sweeps). The plan of each size's best candidate."""
    groups = store.groups
    base_types = {s: _types(headers[stock_files[s]]) for s in sizes}
    elements = {t.name: t.n_elements for t in next(iter(headers.values())).tensors}
    with ThreadPoolExecutor(max_workers=max(1, tools.workers)) as pool:
        base_q = dict(zip(sizes, pool.map(
            lambda s: _kld(tools.measure, stock_files[s], tuning, tools.measure_threads,
                           tools.log_file)[0], sizes), strict=True))
        done = [json.loads(p.read_text()) if p.exists() else {}
                for p in (_sweep_cache(folder, stock_files[s], tuning) for s in sizes)]
        probes = [(i, g, t) for i, s in enumerate(sizes) for g in groups
                  for t in probe_types(g, base_types[s])]
        steps = {(i, g.key, t): probe_step(g, base_types[sizes[i]], t) for i, g, t in probes}
        record.planned_probes = len(probes)

        def measured(i: int, g: Group, t: str) -> tuple[int, dict] | None:
            if deadline is not None and time.perf_counter() > deadline:
                return None
            found = _probe_kld(tools, store, stock_files[sizes[i]], base_types[sizes[i]],
                               {g.key: t}, tuning, deadline)
            if found is None:
                return None
            q, times = found
            return i, {"group": g.key, "type": t, "kld": q.kld_mean, "kld_err": q.kld_err,
                       "seconds": asdict(times)}

        started = time.perf_counter()
        fresh: list[dict] = []
        bar = progress(total=len(probes), initial=sum(f"{g.key}={t}" in done[i]
                                                      for i, g, t in probes),
                       desc="mix sweeps", unit="file")
        with bar:
            for step in sorted(set(steps.values())):
                todo = [(i, g, t) for i, g, t in probes if steps[(i, g.key, t)] == step
                        and f"{g.key}={t}" not in done[i]]
                if step == 1:
                    todo.sort(key=lambda p: (probe_order(p[1], p[2], missing), p[0]))
                else:
                    scores, downward = {}, {}
                    for i, g, t in todo:
                        near = nearer_type(g, base_types[sizes[i]], t)
                        item = done[i].get(f"{g.key}={near}")
                        mine = base_types[sizes[i]]
                        downward[(i, g.key, t)] = group_bytes_delta(g, elements, mine, t) < 0
                        if item is not None and item["kld"] is not None:
                            scores[(i, g.key, t)] = promise(
                                item["kld"] - (base_q[sizes[i]].kld_mean or 0.0),
                                group_bytes_delta(g, elements, mine, near))
                    todo = by_promise(todo, scores, downward)
                futures = [pool.submit(measured, *p) for p in todo]
                try:
                    for future in as_completed(futures):
                        found = future.result()
                        if found is None:
                            record.stopped_by_budget = True
                            continue
                        i, item = found
                        done[i][f"{item['group']}={item['type']}"] = item
                        _sweep_cache(folder, stock_files[sizes[i]], tuning).write_text(
                            json.dumps(done[i], indent=1))
                        fresh.append(item)
                        bar.update(1)
                except BaseException as exc:
                    for future in futures:  # a failed probe stops the sweeps, not after the rest
                        future.cancel()
                    stop.set()
                    store.fail(exc)  # and releases the probes waiting for a gap file
                    raise
        stop.set()
        if fresh:
            log.info("mix sweeps: %d probe(s) in %.1f s, %d at once; per probe %s", len(fresh),
                     time.perf_counter() - started, max(1, tools.workers),
                     ", ".join(f"{k.removesuffix('_s')} {v:.2f} s"
                               for k, v in probe_seconds(fresh).items()))
        entries, tried = [], []
        for i, size in enumerate(sizes):
            header = headers[stock_files[size]]
            entry: dict = {"base": size, "base_tuning_kld": base_q[size].kld_mean, "sweep": [],
                           "candidates": []}
            record.sizes.append(entry)
            entries.append(entry)
            choices = _choices(groups, header, base_q[size], done[i], entry)
            tried += [(i, share, a) for share, a in _candidates(
                choices, base_q[size], sum(t.n_bytes for t in header.tensors), size)]
        measured_q = [found[0] for found in pool.map(
            lambda c: _probe_kld(tools, store, stock_files[sizes[c[0]]],
                                 base_types[sizes[c[0]]], c[2].types, tuning), tried)
            if found is not None]
    best: dict[int, MixPlan] = {}
    for (i, share, a), q in zip(tried, measured_q, strict=True):
        size = sizes[i]
        plan = MixPlan(name=mix_name(size), stock=size, base=size, types=a.types,
                       args=recipe_args(assigned_types(base_types[size], a.types, groups),
                                        groups),
                       file_bytes=a.file_bytes, predicted_kld=a.predicted_kld,
                       tuning_kld=q.kld_mean or 0.0, tuning_kld_err=q.kld_err or 0.0)
        entries[i]["candidates"].append({**asdict(plan), "budget_share": share})
        if i not in best or plan.tuning_kld < best[i].tuning_kld:
            best[i] = plan
    return [best[i] for i in sorted(best)]


def _sweep_cache(folder: Path, base_file: Path, tuning: Reference) -> Path:
    """Where a size's sweep is kept, probe by probe, so that a rerun resumes it."""
    return folder / f"sweep-{base_file.stem}-{tuning.logits.stem}.json"


def _choices(groups: list[Group], header: GgufHeader, base_q: Quality,
             done: Mapping[str, dict], entry: dict) -> dict[str, list[Choice]]:
    """The measured probes around one stock file as the knapsack's choices (a group without a
    measurement keeps its stock types), each recorded with its bytes in ``entry``."""
    elements = {t.name: t.n_elements for t in header.tensors}
    base_types = _types(header)
    choices: dict[str, list[Choice]] = {g.key: [] for g in groups}
    for g in groups:
        for t in probe_types(g, base_types):
            item = done.get(f"{g.key}={t}")
            if item is None:
                continue
            delta = group_bytes_delta(g, elements, base_types, t)
            choices[g.key].append(Choice(g.key, t, item["kld"] - (base_q.kld_mean or 0.0),
                                         delta))
            entry["sweep"].append({**item, "bytes_delta": delta})
    return choices


def _candidates(choices: dict[str, list[Choice]], base_q: Quality, stock_bytes: int,
                size: str) -> list[tuple[float, Assignment]]:
    """The knapsack's assignments at the stock file's bytes and a little less
    (:data:`CANDIDATE_BUDGETS`), each once, each changing some group."""
    found: list[tuple[float, Assignment]] = []
    seen: set[tuple] = set()
    for share in CANDIDATE_BUDGETS:
        a = search(choices, base_q.kld_mean or 0.0, stock_bytes, int(stock_bytes * share))
        if a is None or not a.types or tuple(sorted(a.types.items())) in seen:
            continue
        seen.add(tuple(sorted(a.types.items())))
        found.append((share, a))
    if not found:
        log.info("mixes: no assignment at %s's size changes a group", size)
    return found


def probe_seconds(sweep: Iterable[dict]) -> dict[str, float]:
    """The mean of each of a sweep's :class:`ProbeTimes` over the probes that have it (pure;
    probes cached by an older run have none)."""
    timed = [p["seconds"] for p in sweep if p.get("seconds")]  # read once: may be a generator
    out: dict[str, float] = {}
    for key in (f.name for f in fields(ProbeTimes)):
        values = [t[key] for t in timed if t.get(key) is not None]
        if values:
            out[key] = sum(values) / len(values)
    return out


def recipe_command(plan: MixPlan, source_name: str, out_name: str,
                   imatrix_name: str | None) -> str:
    """The one command that remakes the mix with the stock tool from the 16-bit file it was made
    from (``source_name``: F16, or BF16 for a bf16 model), for the card."""
    parts = ["llama-quantize"]
    if imatrix_name:
        parts += ["--imatrix", imatrix_name]
    parts += [*plan.args, source_name, out_name, plan.base]
    return shlex.join(parts)


def verdict(mix: Variant, stock: Variant) -> tuple[bool, str]:
    """Whether a mix is published: no larger than the stock file it competes with, its held-out
    KLD interval wholly below the stock file's, and its answer agreement not clearly worse."""
    mq, sq = mix.quality, stock.quality
    if mix.size_bytes > stock.size_bytes:
        return False, f"larger than {stock.name} ({mix.size_bytes} > {stock.size_bytes} bytes)"
    if mq.kld_mean is None or sq.kld_mean is None:
        return False, "not measured"
    if not lies_below(mq.kld_mean, mq.kld_err, sq.kld_mean, sq.kld_err):
        return False, (f"held-out KLD {mq.kld_mean:.4f} ± {ci95(mq.kld_err) or 0:.4f} does not "
                       f"lie below {stock.name}'s {sq.kld_mean:.4f} ± {ci95(sq.kld_err) or 0:.4f}")
    if mix.answers and stock.answers and mix.answers.prefix_high < stock.answers.prefix_low:
        return False, f"answers clearly less like the original's than {stock.name}'s"
    gain = 100 * (1 - mq.kld_mean / sq.kld_mean)
    return True, (f"{gain:.0f} % lower held-out KLD than {stock.name} "
                  f"({mq.kld_mean:.4f} against {sq.kld_mean:.4f}, 95 % intervals apart), "
                  f"{100 * (1 - mix.size_bytes / stock.size_bytes):.1f} % smaller")
