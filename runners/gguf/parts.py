"""The mix search's probes as GGUF splits that share their parts: nothing is written per probe.

A probe is a stock file with one group of tensors at another type. Written whole (a splice), an
8B probe is 4-6 GB copied for one measurement, hundreds of times per search. llama.cpp loads a
model split into parts (``<prefix>-00001-of-000NN.gguf`` …) by tensor name, whatever part holds
which tensor, so here every group's tensors are one part, written once per assignment of types
(its stock types, or one type), and a probe is a folder of links: the base file's metadata part
and one part per group. The tensors, their bytes and so the logits are the splice's (a test
measures both).

Parts are made on first use and shared by every probe and candidate that has them. Tensors no
stock file holds at a type arrive later, from gap files quantized meanwhile
(:meth:`PartStore.provide`); a part that needs one waits for it.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path

from gguf.constants import GGUFValueType

from runners.errors import QuantbotError
from runners.gguf.header import GgufLayout, TensorPlace, read_layout
from runners.gguf.mix_plan import Group
from runners.gguf.splice import write_gguf

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sIQQ")  # magic, version, tensors, fields
_VERSION = 3


def _field(key: str, vtype: GGUFValueType, fmt: str, value: int) -> bytes:
    name = key.encode()
    return struct.pack("<Q", len(name)) + name + struct.pack(f"<I{fmt}", vtype, value)


def split_fields(index: int, count: int, n_tensors: int) -> bytes:
    """The fields llama.cpp reads to load part ``index`` of ``count`` (as llama-gguf-split
    writes them): its number, the number of parts, and every part's tensors together."""
    return (_field("split.no", GGUFValueType.UINT16, "H", index)
            + _field("split.count", GGUFValueType.UINT16, "H", count)
            + _field("split.tensors.count", GGUFValueType.INT32, "i", n_tensors))


def part_name(folder: Path, index: int, count: int) -> Path:
    """Part ``index`` (from 0) of a model in ``folder``, named as llama.cpp looks for it."""
    return folder / f"probe-{index + 1:05d}-of-{count:05d}.gguf"


class PartStore:
    """The parts of every probe of a search, in ``folder``; ``sources`` says which file holds
    each tensor at each type, ``pending`` the types whose gap files are still to come."""

    def __init__(self, folder: Path, groups: list[Group], n_tensors: int,
                 sources: Mapping[tuple[str, str], Path], pending: Iterable[str] = ()) -> None:
        self.folder = folder
        self.groups = groups
        self.count = 1 + len(groups)
        self.n_tensors = n_tensors
        self._grouped = {name for g in groups for name in g.tensors}
        self._sources = dict(sources)
        self._pending = set(pending)
        self._failed: BaseException | None = None
        self._ready = threading.Condition()
        self._layouts: dict[Path, GgufLayout] = {}
        self._parts: dict[tuple, Future[Path]] = {}
        self._lock = threading.Lock()

    # --- where each tensor is -------------------------------------------------------------
    def source(self, name: str, type_name: str) -> Path:
        """The file holding ``name`` at ``type_name``, once there is one (waits for a pending
        gap file); :class:`QuantbotError` if none will come."""
        with self._ready:
            while (name, type_name) not in self._sources:
                if self._failed is not None:
                    raise QuantbotError(f"the gap file for {type_name} was not made "
                                        f"({self._failed})", "see the error above")
                if type_name not in self._pending:
                    raise QuantbotError(f"no file holds {name} at {type_name}",
                                        "report this: the search planned a tensor it has not")
                self._ready.wait()
            return self._sources[(name, type_name)]

    def provide(self, gap_file: Path, type_name: str, names: Iterable[str]) -> None:
        """A gap file is made: its tensors ``names`` at ``type_name`` become parts (each group
        that holds one, at that type) and the file itself goes, so RAM holds each byte once."""
        held = set(names)
        with self._ready:  # probes waiting for these tensors write their parts from it now
            for name in held:
                self._sources[(name, type_name)] = gap_file
            self._ready.notify_all()
        made = {index: self.part(index, (type_name,) * len(g.tensors))
                for index, g in enumerate(self.groups) if not held.isdisjoint(g.tensors)}
        with self._ready:
            for index, path in made.items():
                for name in held.intersection(self.groups[index].tensors):
                    self._sources[(name, type_name)] = path
            self._pending.discard(type_name)
            self._ready.notify_all()
        with self._lock:
            self._layouts.pop(gap_file, None)
        gap_file.unlink(missing_ok=True)

    def fail(self, exc: BaseException) -> None:
        """No more gap files will come: every probe still waiting for one stops with ``exc``."""
        with self._ready:
            self._failed = exc
            self._ready.notify_all()

    # --- parts ------------------------------------------------------------------------------
    def part(self, index: int, types: tuple[str, ...]) -> Path:
        """Group ``index``'s tensors at ``types`` (one per tensor) as part ``index + 1``,
        written by the first caller, waited for by the rest."""
        key = (index, types)
        with self._lock:
            future = self._parts.get(key)
            mine = future is None
            if mine:
                future = self._parts[key] = Future()
        if not mine:
            return future.result()
        try:
            g = self.groups[index]
            places = [self._place(name, t) for name, t in zip(g.tensors, types, strict=True)]
            tag = hashlib.sha256("\n".join(types).encode()).hexdigest()[:12]
            out = self.folder / f"part-{index + 1:03d}-{tag}.gguf"
            metadata = (_HEADER.pack(b"GGUF", _VERSION, len(places), 3)
                        + split_fields(index + 1, self.count, self.n_tensors))
            future.set_result(write_gguf(out, metadata, places, self._layouts, 32)
                              if not out.exists() else out)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        return future.result()

    def meta(self, base: Path) -> Path:
        """Part 0 for ``base``: its metadata fields (and the split fields), and its tensors
        outside every group (norms …)."""
        key = ("meta", base)
        with self._lock:
            future = self._parts.get(key)
            mine = future is None
            if mine:
                future = self._parts[key] = Future()
        if not mine:
            return future.result()
        try:
            layout = self._layout(base)
            places = [(base, p) for p in layout.tensors if p.name not in self._grouped]
            with base.open("rb") as fh:
                head = fh.read(layout.metadata_end)
            _, version, _, n_kv = _HEADER.unpack_from(head)
            metadata = (_HEADER.pack(b"GGUF", version, len(places), n_kv + 3)
                        + head[_HEADER.size:]
                        + split_fields(0, self.count, self.n_tensors))
            tag = hashlib.sha256(str(base.resolve()).encode()).hexdigest()[:12]
            future.set_result(write_gguf(self.folder / f"part-000-{tag}.gguf", metadata,
                                         places, self._layouts, layout.alignment))
        except BaseException as exc:
            future.set_exception(exc)
            raise
        return future.result()

    def probe(self, base: Path, base_types: Mapping[str, str],
              changes: Mapping[str, str]) -> Path:
        """A folder of links that llama.cpp loads as ``base`` with each group named in
        ``changes`` at that type; the path of its first part (the caller deletes the folder)."""
        parts = [self.meta(base)]
        for index, g in enumerate(self.groups):
            t = changes.get(g.key)
            parts.append(self.part(index, (t,) * len(g.tensors) if t is not None
                                   else tuple(base_types[n] for n in g.tensors)))
        folder = self.folder / f"probe-{uuid.uuid4().hex[:12]}"
        folder.mkdir()
        for index, target in enumerate(parts):
            part_name(folder, index, self.count).symlink_to(target)
        return part_name(folder, 0, self.count)

    def sources_of(self, groups_types: Mapping[str, str]) -> dict[str, Path]:
        """Tensor → a file holding it at its group's type in ``groups_types`` (for a splice)."""
        return {name: self.source(name, groups_types[g.key]) for g in self.groups
                if g.key in groups_types for name in g.tensors}

    # --- helpers ----------------------------------------------------------------------------
    def _layout(self, path: Path) -> GgufLayout:
        with self._lock:
            layout = self._layouts.get(path)
        if layout is None:
            layout = read_layout(path)
            with self._lock:
                self._layouts[path] = layout
        return layout

    def _place(self, name: str, type_name: str) -> tuple[Path, TensorPlace]:
        src = self.source(name, type_name)
        layout = self._layout(src)
        found = next((p for p in layout.tensors if p.name == name), None)
        if found is None:
            raise QuantbotError(f"{src.name} has no tensor {name}", "remake the search's files")
        return src, found
