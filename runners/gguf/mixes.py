"""The mix search: measure how much each group of tensors costs in KL divergence at each type,
find the assignment of least predicted KLD at the size of each requested stock type, measure the
best candidates for real, and make the winner with plain ``llama-quantize`` from its recipe.

Everything here is measured on the *tuning split*: evaluation windows after the ones the cards
report (the held-out split, never seen by the search). The pipeline then measures each mix on
the held-out windows like any other file and publishes it only where it wins there
(:func:`verdict`).

Steps, each cached in the work folder so a rerun resumes:

1. the tuning reference: the unquantized model's logits on the windows after ``--chunks``;
2. one file per ladder type with every tensor at that type (``--tensor-type '.*=T'``), so that
   any assignment is a splice of existing tensors (:mod:`runners.gguf.splice`);
3. per requested size, the sweep around that stock file: the file with one group changed to one
   type, for every group and each type within two ladder steps of its own
   (:func:`probe_types`), each measured on the tuning windows (the change of mean KLD against
   the stock file's, on the same tokens);
4. the knapsack (:func:`runners.gguf.mix_plan.search`) over those changes at the stock file's
   bytes and at 1 % and 2 % less, each candidate spliced and measured; the best one is made by
   ``llama-quantize`` with its recipe and its tensor types checked against the plan.

Each size is searched around its own stock file because llama.cpp's stock types differ in more
than one group: a sweep around Q4_K_M predicts the Q5_K_M-sized mixes badly (measured on
SmolLM2: its best Q5_K_M-sized candidate only matched Q5_K_M).
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runners.errors import QuantbotError
from runners.evaluation_mix import EvaluationText
from runners.gguf import llama_tools
from runners.gguf.header import GgufHeader, read_header
from runners.gguf.logits import write_windows
from runners.gguf.mix_plan import (
    Choice,
    Group,
    assigned_types,
    group_bytes,
    groups_of,
    mix_name,
    recipe_args,
    search,
    type_bytes,
)
from runners.gguf.reference import Reference, build_reference, scored
from runners.gguf.splice import splice
from runners.llamacpp import Toolchain
from runners.progress import progress
from runners.results import Quality, Variant
from runners.stats import ci95, lies_below

log = logging.getLogger(__name__)

#: Evaluation windows after ``--chunks`` that the search measures on.
TUNING_WINDOWS = 8
#: Candidates measured per size: the knapsack at the stock file's bytes and at these shares.
CANDIDATE_BUDGETS = (1.0, 0.99, 0.98)
#: A group is tried at the types of its ladder up to this many steps from the ones it has.
PROBE_REACH = 2


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


def _kld(tc: Toolchain, model: Path, reference: Reference, threads: int,
         log_file: Path | None) -> Quality:
    return llama_tools.parse_kld(llama_tools.perplexity_kld(tc, model, reference.logits, threads,
                                                            log_file).output)


def _uniform(tc: Toolchain, f16: Path, type_name: str, folder: Path, imatrix: Path | None,
             threads: int, log_file: Path | None) -> Path:
    """The model with every quantizable tensor at ``type_name``: where splices take it from."""
    out = folder / f"uniform-{type_name}.gguf"
    if not out.exists():
        tmp = folder / f".uniform-{type_name}.partial"
        llama_tools.quantize(tc, f16, tmp, "Q8_0", threads, imatrix, log_file,
                             ("--tensor-type", f".*={type_name.lower()}"))
        tmp.rename(out)
    return out


def _spliced(base_file: Path, uniform: dict[str, Path], groups: list[Group],
             types: dict[str, str], out: Path) -> Path:
    sources = {name: uniform[types[g.key]] for g in groups if g.key in types
               for name in g.tensors}
    return splice(base_file, sources, out)


def run_search(tc: Toolchain, eval_tc: Toolchain, f16: Path, stock_files: dict[str, Path],
               sizes: list[str], imatrix: Path | None, tuning: Reference, folder: Path,
               threads: int, log_file: Path | None,
               minutes: float | None = None) -> tuple[list[MixPlan], SearchRecord]:
    """The mix at the size of each stock type in ``sizes`` (none where no candidate changes a
    group), each searched around that stock file's own types, and the search's record.
    ``minutes`` caps the sweeps' time: groups not reached keep their stock types, and a size
    reached with no measurement gets no mix."""
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    record = SearchRecord(tuning_windows=tuning.chunks,
                          tuning_tokens=tuning.chunks * scored(tuning.n_ctx))
    groups = groups_of(read_header(stock_files[sizes[0]]).tensors)
    uniform = {t: _uniform(tc, f16, t, folder, imatrix, threads, log_file)
               for t in dict.fromkeys(t for g in groups for t in g.ladder)}
    plans = []
    for size in sizes:
        base_file = stock_files[size]
        header = read_header(base_file)
        base_q = _kld(eval_tc, base_file, tuning, threads, log_file)
        entry: dict = {"base": size, "base_tuning_kld": base_q.kld_mean, "sweep": [],
                       "candidates": []}
        record.sizes.append(entry)
        deadline = None if minutes is None else start + 60 * minutes
        choices, finished = _sweep(eval_tc, base_file, base_q, uniform, groups, header, tuning,
                                   folder, threads, log_file, entry, deadline)
        record.stopped_by_budget |= not finished
        plan = _best_candidate(eval_tc, base_file, size, sum(t.n_bytes for t in header.tensors),
                               base_q, choices, uniform, groups, header, tuning, folder, threads,
                               log_file, entry)
        if plan is not None:
            plans.append(plan)
    record.seconds = round(time.perf_counter() - start, 1)
    return plans, record


def probe_types(group: Group, base_types: dict[str, str], reach: int = PROBE_REACH) -> list[str]:
    """The types a group is tried at (pure): its ladder within ``reach`` steps of the types its
    tensors have in the base file, less a type all of them already have."""
    ladder = group.ladder
    held = [ladder.index(base_types[n]) for n in group.tensors if base_types[n] in ladder]
    low, high = (min(held) - reach, max(held) + reach) if held else (0, len(ladder))
    return [t for i, t in enumerate(ladder) if low <= i <= high
            and any(base_types[n] != t for n in group.tensors)]


def _sweep(eval_tc: Toolchain, base_file: Path, base_q: Quality, uniform: dict[str, Path],
           groups: list[Group], header: GgufHeader, tuning: Reference, folder: Path,
           threads: int, log_file: Path | None, entry: dict,
           deadline: float | None) -> tuple[dict[str, list[Choice]], bool]:
    """Each group at each of its probe types, measured on the tuning windows (cached), and
    whether every probe was: past the deadline the rest are not measured, and their groups keep
    the stock file's types (the search only changes a group it has a measurement of)."""
    cache = folder / f"sweep-{base_file.stem}-{tuning.logits.stem}.json"
    done: dict[str, dict] = json.loads(cache.read_text()) if cache.exists() else {}
    elements = {t.name: t.n_elements for t in header.tensors}
    base_types = {t.name: t.type_name for t in header.tensors}
    probes = [(g, t) for g in groups for t in probe_types(g, base_types)]
    bar = progress(total=len(probes), desc=f"mix sweep around {base_file.stem}", unit="file")
    choices: dict[str, list[Choice]] = {g.key: [] for g in groups}
    try:
        for g, t in probes:
            key = f"{g.key}={t}"
            if key not in done:
                if deadline is not None and time.perf_counter() > deadline:
                    return choices, False
                probe = _spliced(base_file, uniform, [g], {g.key: t}, folder / "probe.gguf")
                q = _kld(eval_tc, probe, tuning, threads, log_file)
                done[key] = {"group": g.key, "type": t, "kld": q.kld_mean,
                             "kld_err": q.kld_err}
                cache.write_text(json.dumps(done, indent=1))
            item = done[key]
            delta = (group_bytes(g, elements, t)
                     - sum(type_bytes(base_types[n], elements[n]) for n in g.tensors))
            choices[g.key].append(Choice(g.key, t, item["kld"] - (base_q.kld_mean or 0.0),
                                         delta))
            entry["sweep"].append({**item, "bytes_delta": delta})
            bar.update(1)
    finally:
        bar.close()
        (folder / "probe.gguf").unlink(missing_ok=True)
    return choices, True


def _best_candidate(eval_tc: Toolchain, base_file: Path, size: str, stock_bytes: int,
                    base_q: Quality, choices: dict[str, list[Choice]], uniform: dict[str, Path],
                    groups: list[Group], header: GgufHeader, tuning: Reference, folder: Path,
                    threads: int, log_file: Path | None, entry: dict) -> MixPlan | None:
    """The knapsack's candidates at the stock file's bytes and a little less, spliced and
    measured; the plan of the one measured closest to the original."""
    base_types = {t.name: t.type_name for t in header.tensors}
    found: list[MixPlan] = []
    seen: set[tuple] = set()
    for share in CANDIDATE_BUDGETS:
        a = search(choices, base_q.kld_mean or 0.0, stock_bytes, int(stock_bytes * share))
        if a is None or not a.types or tuple(sorted(a.types.items())) in seen:
            continue
        seen.add(tuple(sorted(a.types.items())))
        probe = _spliced(base_file, uniform, groups, a.types, folder / "candidate.gguf")
        q = _kld(eval_tc, probe, tuning, threads, log_file)
        probe.unlink()
        plan = MixPlan(name=mix_name(size), stock=size, base=size, types=a.types,
                       args=recipe_args(assigned_types(base_types, a.types, groups), groups),
                       file_bytes=a.file_bytes, predicted_kld=a.predicted_kld,
                       tuning_kld=q.kld_mean or 0.0, tuning_kld_err=q.kld_err or 0.0)
        entry["candidates"].append({**asdict(plan), "budget_share": share})
        found.append(plan)
    if not found:
        log.info("mixes: no assignment at %s's size changes a group", size)
        return None
    return min(found, key=lambda p: p.tuning_kld)


def make_mix(tc: Toolchain, f16: Path, plan: MixPlan, groups_from: Path, out: Path,
             imatrix: Path | None, threads: int, log_file: Path | None) -> Path:
    """The mix, made by ``llama-quantize`` from its recipe alone; its tensor types must be the
    plan's (else the recipe would not say what the file is)."""
    if not out.exists():
        tmp = out.with_name(f".{out.name}.partial")
        llama_tools.quantize(tc, f16, tmp, plan.base, threads, imatrix, log_file,
                             tuple(plan.args))
        header = read_header(groups_from)
        want = assigned_types({t.name: t.type_name for t in header.tensors}, plan.types,
                              groups_of(header.tensors))
        got = {t.name: t.type_name for t in read_header(tmp).tensors}
        wrong = sorted(n for n in want if got.get(n) != want[n])
        if wrong:
            tmp.unlink()
            raise QuantbotError(f"llama-quantize made {wrong[0]} {got.get(wrong[0])}, where the "
                                f"mix {plan.name} plans {want[wrong[0]]}",
                                "report this: the recipe does not reproduce the searched mix")
        tmp.rename(out)
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
