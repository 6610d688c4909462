"""A GGUF file's metadata and tensor table, read without its vocabulary.

``gguf.GGUFReader`` builds a numpy memmap view for every string of every array field: for a
128k-token vocabulary (token list, merges) that is ~400k views, 10-20 s per file on one core,
spent once per quantized type and again in the chat-template check, where quantbot needs a few
scalars and the tensor table. This reader walks the same layout (the ``gguf`` package's own
type enums and block sizes) and skips string arrays by their length prefixes, keeping only
scalars, strings and short numeric arrays (per-layer values).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from runners.errors import QuantbotError

MAGIC = b"GGUF"
#: Numeric arrays up to this length are kept (per-layer values); longer ones are skipped.
MAX_KEPT_ARRAY = 4096
_SCALAR = {GGUFValueType.UINT8: "B", GGUFValueType.INT8: "b", GGUFValueType.UINT16: "H",
           GGUFValueType.INT16: "h", GGUFValueType.UINT32: "I", GGUFValueType.INT32: "i",
           GGUFValueType.FLOAT32: "f", GGUFValueType.BOOL: "?", GGUFValueType.UINT64: "Q",
           GGUFValueType.INT64: "q", GGUFValueType.FLOAT64: "d"}

Value = int | float | bool | str | list[int | float | bool]


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's name, quantization type and size, from the tensor table."""

    name: str
    type_name: str
    n_elements: int
    n_bytes: int
    #: ``ne[0]``, ``ne[1]`` …: the first is a row's length, which a block type must divide.
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class GgufHeader:
    """The metadata fields kept (see the module docstring) and every tensor's entry."""

    fields: dict[str, Value] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def unpack(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        data = self.f.read(size)
        if len(data) != size:
            raise EOFError("truncated GGUF header")
        return struct.unpack("<" + fmt, data)

    def string(self) -> str:
        (n,) = self.unpack("Q")
        return self.f.read(n).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        (n,) = self.unpack("Q")
        self.f.seek(n, 1)

    def value(self, vtype: GGUFValueType) -> Value | None:
        if vtype is GGUFValueType.STRING:
            return self.string()
        if vtype is GGUFValueType.ARRAY:
            item = GGUFValueType(self.unpack("I")[0])
            (n,) = self.unpack("Q")
            if item is GGUFValueType.STRING:
                for _ in range(n):
                    self.skip_string()
                return None
            if item is GGUFValueType.ARRAY:
                raise ValueError("nested GGUF arrays are not used by llama.cpp")
            fmt = _SCALAR[item]
            if n > MAX_KEPT_ARRAY:
                self.f.seek(n * struct.calcsize("<" + fmt), 1)
                return None
            return list(self.unpack(f"{n}{fmt}")) if n else []
        return self.unpack(_SCALAR[vtype])[0]


@dataclass(frozen=True)
class TensorPlace:
    """Where one tensor's entry and data are: what copying it into another file needs."""

    name: str
    shape: tuple[int, ...]
    type_id: int  # a GGMLQuantizationType
    offset: int  # from the start of the data section
    n_bytes: int


@dataclass(frozen=True)
class GgufLayout:
    """The byte layout of a GGUF file: header and metadata end at ``metadata_end``, tensor data
    starts at ``data_start``, each tensor aligned to ``alignment``."""

    metadata_end: int
    data_start: int
    alignment: int
    tensors: list[TensorPlace]


def _walk(path: Path) -> tuple[dict[str, Value], list[TensorPlace], int, int]:
    """The kept metadata fields, every tensor's entry, and where the metadata and the tensor
    table end; :class:`QuantbotError` if ``path`` is not GGUF."""
    with open(path, "rb", buffering=1 << 20) as f:
        r = _Reader(f)
        try:
            if f.read(4) != MAGIC:
                raise ValueError("no GGUF magic")
            _version, n_tensors, n_kv = r.unpack("IQQ")
            fields: dict[str, Value] = {}
            for _ in range(n_kv):
                key = r.string()
                value = r.value(GGUFValueType(r.unpack("I")[0]))
                if value is not None:
                    fields[key] = value
            metadata_end = f.tell()
            places = []
            for _ in range(n_tensors):
                name = r.string()
                (n_dims,) = r.unpack("I")
                shape = tuple(r.unpack(f"{n_dims}Q"))
                (type_id,) = r.unpack("I")
                (offset,) = r.unpack("Q")
                block, type_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
                places.append(TensorPlace(name, shape, type_id, offset,
                                          math.prod(shape) // block * type_bytes))
            end = f.tell()
        except (EOFError, ValueError, KeyError, struct.error) as exc:
            raise QuantbotError(f"{path.name} is not a readable GGUF file ({exc})",
                                "remake the file; it is truncated or not GGUF") from exc
    return fields, places, metadata_end, end


def read_header(path: Path) -> GgufHeader:
    """Read ``path``'s metadata and tensor table; :class:`QuantbotError` if it is not GGUF."""
    fields, places, _, _ = _walk(path)
    return GgufHeader(fields, [
        TensorInfo(p.name, GGMLQuantizationType(p.type_id).name, math.prod(p.shape), p.n_bytes,
                   p.shape) for p in places])


def read_layout(path: Path) -> GgufLayout:
    """``path``'s byte layout (:class:`GgufLayout`), for copying its tensors elsewhere."""
    fields, places, metadata_end, end = _walk(path)
    alignment = fields.get("general.alignment", 32)  # GGUF_DEFAULT_ALIGNMENT
    if not isinstance(alignment, int) or alignment <= 0:
        raise QuantbotError(f"{path.name} has general.alignment {alignment!r}",
                            "remake the file with llama.cpp's tools")
    return GgufLayout(metadata_end, -(-end // alignment) * alignment, alignment, places)
