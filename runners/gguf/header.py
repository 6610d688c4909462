"""A GGUF file's metadata and tensor table, read without its vocabulary.

``gguf.GGUFReader`` builds a numpy memmap view for every string of every array field: for a
128k-token vocabulary (token list, merges) that is ~400k views, 10-20 s per file on one core,
spent once per quantized type and again in the chat-template check, where quantbot needs a few
scalars and the tensor table. This reader walks the same layout (the ``gguf`` package's own
type enums and block sizes) and skips string arrays by their length prefixes, keeping only
scalars, strings and short numeric arrays (per-layer values).
"""

from __future__ import annotations

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


def read_header(path: Path) -> GgufHeader:
    """Read ``path``'s metadata and tensor table; :class:`QuantbotError` if it is not GGUF."""
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
            tensors = []
            for _ in range(n_tensors):
                name = r.string()
                (n_dims,) = r.unpack("I")
                n_elements = 1
                for dim in r.unpack(f"{n_dims}Q"):
                    n_elements *= dim
                qtype = GGMLQuantizationType(r.unpack("I")[0])
                r.unpack("Q")  # offset in the data section
                block, type_bytes = GGML_QUANT_SIZES[qtype]
                tensors.append(TensorInfo(name, qtype.name, n_elements,
                                          n_elements // block * type_bytes))
        except (EOFError, ValueError, KeyError, struct.error) as exc:
            raise QuantbotError(f"{path.name} is not a readable GGUF file ({exc})",
                                "remake the file; it is truncated or not GGUF") from exc
    return GgufHeader(fields, tensors)
