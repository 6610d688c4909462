"""Per-tensor GGUF mixes: tensor groups, the types each may take, their bytes, the search for the
assignment of least predicted KL divergence at a size, and the ``llama-quantize`` arguments that
make it (pure).

A *group* is one kind of weight (``attn_q``, ``ffn_down``, ``ffn_up_exps``, ``ssm_out`` …) in
one band of layers (the first, middle and last third), or a tensor outside the blocks
(``token_embd``, ``output``). A group takes one type from its *ladder*: the k-quants Q2_K … Q6_K
and Q8_0 where every row's length is a multiple of 256, else the 32-blocks IQ4_NL, Q5_0, Q5_1 and
Q8_0, so no type ever falls back to another inside ``llama-quantize`` and a recipe's bytes are
known before it is made. The search (:func:`search`) is a multiple-choice knapsack over the
groups: the measured KLD change of each group at each type (:mod:`runners.gguf.mixes`), summed,
minimised under the byte budget of the stock file it competes with, exactly by dynamic
programming over bytes rounded up to a small unit (never over the budget).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from runners.gguf.header import TensorInfo

#: Types of a group whose rows are multiples of 256, and of one whose rows are only of 32.
LADDER_256: tuple[str, ...] = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_0")
LADDER_32: tuple[str, ...] = ("IQ4_NL", "Q5_0", "Q5_1", "Q8_0")
#: Bands of layers a kind of weight is split into.
BANDS = 3
#: The variant-name prefix of a quantbot mix, as unsloth's ``UD-`` marks theirs: the Hub's
#: ``repo:TAG`` finds ``<model>.QB-Q4_K_M.gguf`` by ``QB-Q4_K_M`` and the stock file by ``Q4_K_M``.
MIX_PREFIX = "QB-"
#: The knapsack's byte unit is the file's bytes over this (rounded up per choice).
BYTE_STEPS = 4000

_BLOCK = re.compile(r"^blk\.(\d+)\.(.+)\.weight$")
_OUTSIDE = re.compile(r"^([a-z_]+)\.weight$")


def type_bytes(type_name: str, n_elements: int) -> int:
    """Bytes of ``n_elements`` weights of ``type_name``."""
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
    return n_elements // block * size


@dataclass(frozen=True)
class Group:
    """Tensors that take one type together, and the ``--tensor-type`` pattern naming them."""

    key: str  # "attn_q.0-9", "token_embd"
    tensors: tuple[str, ...]
    pattern: str
    ladder: tuple[str, ...]


def groups_of(tensors: Iterable[TensorInfo], bands: int = BANDS) -> list[Group]:
    """The groups of a model's quantizable weights (matrices whose rows a 32-block divides),
    kinds in first-seen order, each kind's bands in layer order."""
    by_kind: dict[str, dict[int, list[TensorInfo]]] = {}
    outside: list[TensorInfo] = []
    for t in tensors:
        if len(t.shape) < 2 or t.shape[0] % 32 or "norm" in t.name:
            continue
        m = _BLOCK.match(t.name)
        if m:
            by_kind.setdefault(m.group(2), {}).setdefault(int(m.group(1)), []).append(t)
        elif _OUTSIDE.match(t.name):
            outside.append(t)
    n_layers = 1 + max((layer for kinds in by_kind.values() for layer in kinds), default=0)
    groups = [Group(t.name.removesuffix(".weight"), (t.name,),
                    f"^{re.escape(t.name)}$", _ladder([t])) for t in outside]
    for kind, layers in by_kind.items():
        for band in range(bands):
            mine = sorted(layer for layer in layers if layer * bands // n_layers == band)
            if not mine:
                continue
            members = [t for layer in mine for t in layers[layer]]
            numbers = "|".join(str(layer) for layer in mine)
            groups.append(Group(f"{kind}.{mine[0]}-{mine[-1]}", tuple(t.name for t in members),
                                rf"^blk\.({numbers})\.{re.escape(kind)}\.weight$",
                                _ladder(members)))
    return groups


def _ladder(tensors: list[TensorInfo]) -> tuple[str, ...]:
    return LADDER_256 if all(t.shape[0] % 256 == 0 for t in tensors) else LADDER_32


@dataclass(frozen=True)
class Choice:
    """One group at one type: its predicted KLD change against the base and its bytes."""

    group: str
    type_name: str | None  # None: as the base file has it
    kld_delta: float
    bytes_delta: int


@dataclass(frozen=True)
class Assignment:
    """A type per changed group, what the search predicts of it, and its exact bytes."""

    types: dict[str, str]  # group key -> type; groups not named keep the base's types
    predicted_kld: float
    file_bytes: int


def group_bytes(group: Group, sizes: Mapping[str, int], type_name: str) -> int:
    """The group's bytes at ``type_name`` (``sizes``: each tensor's element count)."""
    return sum(type_bytes(type_name, sizes[name]) for name in group.tensors)


def group_bytes_delta(group: Group, elements: Mapping[str, int], base_types: Mapping[str, str],
                      type_name: str) -> int:
    """How many bytes the group gains (or, negative, saves) at ``type_name`` (pure)."""
    return (group_bytes(group, elements, type_name)
            - sum(type_bytes(base_types[n], elements[n]) for n in group.tensors))


def search(choices: Mapping[str, list[Choice]], base_kld: float, base_bytes: int,
           budget_bytes: int) -> Assignment | None:
    """The assignment of least predicted KLD whose bytes are at most ``budget_bytes``: one
    choice per group (the base's own, change 0, is always there), exact on bytes rounded up to
    ``base_bytes / BYTE_STEPS``; None when even the smallest choices exceed the budget."""
    unit = max(1, base_bytes // BYTE_STEPS)
    room = (budget_bytes - base_bytes) // unit  # may be negative: the search must save bytes
    options = [[Choice(g, None, 0.0, 0), *[c for c in cs if c.type_name is not None]]
               for g, cs in choices.items()]
    floor = sum(min(math.ceil(c.bytes_delta / unit) for c in opts) for opts in options)
    if floor > room:
        return None
    # best[b]: least KLD change using (b + floor) units; one table per group, for the way back.
    width = room - floor + 1
    best = [0.0] + [math.inf] * (width - 1)
    tables = []
    for opts in options:
        low = min(math.ceil(c.bytes_delta / unit) for c in opts)
        nxt = [math.inf] * width
        pick = [-1] * width
        for b, value in enumerate(best):
            if value == math.inf:
                continue
            for i, c in enumerate(opts):
                at = b + math.ceil(c.bytes_delta / unit) - low
                if at < width and value + c.kld_delta < nxt[at]:
                    nxt[at], pick[at] = value + c.kld_delta, i
        tables.append((low, pick))
        best = nxt
    at = min(range(width), key=lambda b: best[b])
    total = best[at]
    chosen: dict[str, str] = {}
    delta_bytes = 0
    for (low, pick), opts in zip(reversed(tables), reversed(options), strict=True):
        c = opts[pick[at]]
        if c.type_name is not None:
            chosen[c.group] = c.type_name
        delta_bytes += c.bytes_delta
        at -= math.ceil(c.bytes_delta / unit) - low
    return Assignment(dict(sorted(chosen.items())), base_kld + total, base_bytes + delta_bytes)


def recipe_args(tensor_types: Mapping[str, str], groups: Iterable[Group]) -> list[str]:
    """``llama-quantize`` options that give every grouped tensor its type in ``tensor_types``:
    one ``--tensor-type PATTERN=type`` per kind of weight and type (its layers listed), in the
    groups' order.

    Every grouped tensor is named, changed or not: ``llama-quantize``'s own rules count the
    ``attn_v`` and ``ffn_down`` tensors they have seen to decide which layers get more bits, and
    a tensor an option names skips that count, so a recipe naming only the changed layers would
    shift the stock choices of the layers after them (seen on SmolLM2's ``ffn_down``). Named
    explicitly, the file is the plan whatever those rules do.
    """
    return tensor_type_args({name: tensor_types[name] for g in groups for name in g.tensors})


def tensor_type_args(tensor_types: Mapping[str, str]) -> list[str]:
    """``--tensor-type PATTERN=type`` options naming exactly the tensors of ``tensor_types``
    (pure): one per kind of weight and type, its layers listed, in the mapping's order."""
    by_kind: dict[tuple[str, str], list[str]] = {}
    for name, type_name in tensor_types.items():
        m = _BLOCK.match(name)
        kind, layer = (m.group(2), m.group(1)) if m else (name, "")
        by_kind.setdefault((kind, type_name), []).append(layer)
    args = []
    for (kind, type_name), layers in by_kind.items():
        pattern = (rf"^blk\.({'|'.join(layers)})\.{re.escape(kind)}\.weight$" if layers[0]
                   else f"^{re.escape(kind)}$")
        args += ["--tensor-type", f"{pattern}={type_name.lower()}"]
    return args


def assigned_types(base_types: Mapping[str, str], assignment_types: Mapping[str, str],
                   groups: Iterable[Group]) -> dict[str, str]:
    """Every tensor's type under the assignment: the base file's, but in changed groups."""
    out = dict(base_types)
    for g in groups:
        if g.key in assignment_types:
            out.update(dict.fromkeys(g.tensors, assignment_types[g.key]))
    return out


def mix_name(stock: str) -> str:
    """The published name of the mix that competes with stock type ``stock``."""
    return f"{MIX_PREFIX}{stock}"


#: Measured rates the estimate scales (bench/README.md, 8B stand-in on an H100 machine):
#: KLD of a Q4_K_M file per 512-token window with 16 CPU threads, and on the GPU.
CPU_WINDOW_SECONDS_8B_16_CORES = 4.31
GPU_WINDOW_SECONDS_8B = 0.25
#: Groups of a dense Llama-class model (7 kinds x 3 bands + embeddings + output) times the
#: types each is tried at (the ladder less its own).
TYPICAL_PROBES = 23 * 5


def estimate_sweep_seconds(n_params: int, cores: int, on_gpu: bool, windows: int = 8,
                           probes: int = TYPICAL_PROBES) -> float:
    """About how long the mix search's sweep takes (pure): each probe (links to parts written
    once, :mod:`runners.gguf.parts`) measures ``windows`` tuning windows, scaled from the 8B
    rates by parameters (and cores on a CPU), plus a tool's start."""
    scale = n_params / 8.03e9
    window = (GPU_WINDOW_SECONDS_8B * scale if on_gpu
              else CPU_WINDOW_SECONDS_8B_16_CORES * scale * 16 / max(cores, 1))
    return probes * (windows * window + 1.0)
