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
import shutil
import struct
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path

from gguf.constants import GGMLQuantizationType, GGUFValueType

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
    each tensor at each type, ``pending`` the tensors gap files will bring, per type.

    Waits take ``until`` (a :func:`time.perf_counter` deadline): past it a probe gives up on a
    gap file and gets None, so a sweep out of time does not wait for files it will not use."""

    def __init__(self, folder: Path, groups: list[Group], n_tensors: int,
                 sources: Mapping[tuple[str, str], Path],
                 pending: Mapping[str, Iterable[str]] | None = None) -> None:
        self.folder = folder
        self.groups = groups
        self.count = 1 + len(groups)
        self.n_tensors = n_tensors
        self._grouped = {name for g in groups for name in g.tensors}
        self._group_of = {name: index for index, g in enumerate(groups) for name in g.tensors}
        self._sources = dict(sources)
        self._pending = {t: set(names) for t, names in (pending or {}).items()}
        self._failed: BaseException | None = None
        self._ready = threading.Condition()
        self._layouts: dict[Path, GgufLayout] = {}
        self._parts: dict[tuple, Future[Path | None]] = {}
        self._lock = threading.Lock()

    # --- where each tensor is -------------------------------------------------------------
    def source(self, name: str, type_name: str, until: float | None = None) -> Path | None:
        """The file holding ``name`` at ``type_name``, once there is one (waits for the gap
        file that will bring it); None if ``until`` passes first; :class:`QuantbotError` if
        none will come."""
        with self._ready:
            while (name, type_name) not in self._sources:
                if name not in self._pending.get(type_name, ()):
                    raise QuantbotError(f"no file holds {name} at {type_name}",
                                        "report this: the search planned a tensor it has not")
                if self._failed is not None:
                    raise QuantbotError(f"the gap file for {type_name} was not made "
                                        f"({self._failed})", "see the error above")
                left = None if until is None else until - time.perf_counter()
                if left is not None and left <= 0:
                    return None
                self._ready.wait(left)
            return self._sources[(name, type_name)]

    def provide(self, gap_file: Path, type_name: str, names: Iterable[str]) -> None:
        """A gap file is made: its tensors ``names`` at ``type_name`` become parts (each group
        that holds one, at that type) and the file itself goes, so RAM holds each byte once.
        A tensor the file holds at another type (``llama-quantize`` keeps some as they are)
        stops the search: its probes would measure the stock file under another name."""
        wanted = GGMLQuantizationType[type_name]
        held = {p.name: p.type_id for p in self._layout(gap_file).tensors}
        wrong = sorted(n for n in names if held.get(n) != wanted)
        if wrong:
            got = (GGMLQuantizationType(held[wrong[0]]).name if wrong[0] in held
                   else "not at all")
            raise QuantbotError(f"llama-quantize made {wrong[0]} {got} where the search asked "
                                f"for {type_name}",
                                "report this with the model: the search planned a type this "
                                "tensor cannot take")
        names = set(names)
        with self._ready:  # probes waiting for these tensors write their parts from it now
            for name in names:
                self._sources[(name, type_name)] = gap_file
            self._ready.notify_all()
        made = {index: self.part(index, (type_name,) * len(self.groups[index].tensors))
                for index in sorted({self._group_of[n] for n in names})}
        with self._ready:
            for index, path in made.items():
                for name in names.intersection(self.groups[index].tensors):
                    self._sources[(name, type_name)] = path
            self._pending.pop(type_name, None)
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
    def _once(self, key: tuple) -> tuple[Future[Path | None], bool]:
        """The future of the part ``key``, and whether this caller is the one to make it."""
        with self._lock:
            future = self._parts.get(key)
            if future is not None:
                return future, False
            future = self._parts[key] = Future()
            return future, True

    def part(self, index: int, types: tuple[str, ...], until: float | None = None) -> Path | None:
        """Group ``index``'s tensors at ``types`` (one per tensor) as part ``index + 1``,
        written by the first caller, waited for by the rest; None if ``until`` passed while
        its tensors were waited for (a later caller tries again)."""
        key = (index, types)
        while True:
            future, mine = self._once(key)
            if mine:
                break
            try:  # another probe is making it: wait for it as long as our time allows
                path = future.result(None if until is None
                                     else max(0.0, until - time.perf_counter()))
            except TimeoutError:
                return None
            if path is not None:
                return path
            if until is not None and time.perf_counter() >= until:
                return None
            # its maker's time ran out before ours: make it ourselves
        try:
            g = self.groups[index]
            places = []
            for name, t in zip(g.tensors, types, strict=True):
                place = self._place(name, t, until)
                if place is None:
                    with self._lock:
                        del self._parts[key]
                    future.set_result(None)
                    return None
                places.append(place)
            tag = hashlib.sha256("\n".join(types).encode()).hexdigest()[:12]
            metadata = (_HEADER.pack(b"GGUF", _VERSION, len(places), 3)
                        + split_fields(index + 1, self.count, self.n_tensors))
            future.set_result(write_gguf(self.folder / f"part-{index + 1:03d}-{tag}.gguf",
                                         metadata, places, self._layouts, 32))
        except BaseException as exc:
            future.set_exception(exc)
            raise
        return future.result()

    def meta(self, base: Path) -> Path:
        """Part 0 for ``base``: its metadata fields (and the split fields), and its tensors
        outside every group (norms …)."""
        future, mine = self._once(("meta", base))
        if mine:
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
        path = future.result()
        assert path is not None  # the metadata part never waits
        return path

    def probe(self, base: Path, base_types: Mapping[str, str], changes: Mapping[str, str],
              until: float | None = None) -> Path | None:
        """A folder of links that llama.cpp loads as ``base`` with each group named in
        ``changes`` at that type; the path of its first part (the caller deletes the folder),
        or None if ``until`` passed while a gap file was waited for."""
        parts = [self.meta(base)]
        for index, g in enumerate(self.groups):
            t = changes.get(g.key)
            part = self.part(index, (t,) * len(g.tensors) if t is not None
                             else tuple(base_types[n] for n in g.tensors), until)
            if part is None:
                return None
            parts.append(part)
        folder = self.folder / f"probe-{uuid.uuid4().hex[:12]}"
        folder.mkdir()
        try:
            for index, target in enumerate(parts):
                part_name(folder, index, self.count).symlink_to(target)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return part_name(folder, 0, self.count)

    def sources_of(self, groups_types: Mapping[str, str]) -> dict[str, Path]:
        """Tensor → a file holding it at its group's type in ``groups_types`` (for a splice;
        every one is there: the plan's types were all measured)."""
        out = {}
        for g in self.groups:
            for name in g.tensors if g.key in groups_types else ():
                path = self.source(name, groups_types[g.key])
                assert path is not None  # no deadline: never None
                out[name] = path
        return out

    # --- helpers ----------------------------------------------------------------------------
    def _layout(self, path: Path) -> GgufLayout:
        with self._lock:
            layout = self._layouts.get(path)
        if layout is None:
            layout = read_layout(path)
            with self._lock:
                self._layouts[path] = layout
        return layout

    def _place(self, name: str, type_name: str,
               until: float | None) -> tuple[Path, TensorPlace] | None:
        src = self.source(name, type_name, until)
        if src is None:
            return None
        found = next((p for p in self._layout(src).tensors if p.name == name), None)
        if found is None or found.type_id != GGMLQuantizationType[type_name]:
            raise QuantbotError(f"{src.name} does not hold {name} at {type_name}",
                                "remake the search's files (delete the work folder's mixes)")
        return src, found
