"""A GGUF file whose tensors come from several quantizations of one model, without quantizing.

The mix search (:mod:`runners.gguf.mixes`) measures hundreds of files that differ from a stock
file in one group of tensors. ``llama-quantize`` quantizes each tensor on its own, from the same
16-bit weights and importance matrix whatever the other tensors' types, so a tensor of type T is
the same bytes in every file that holds it at T. Copying each tensor's bytes from a file that
already holds it at the wanted type (the stock file, or one made with every tensor at T) gives
the file ``llama-quantize`` would make for that assignment, in the time it takes to write it: an
8B file is written in seconds, where quantizing it again takes most of a minute. The metadata is
the template's, byte for byte (a test checks that splicing a file from itself gives it back, and
that a mix's splice is the file its recipe makes with plain ``llama-quantize``).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path

from runners.errors import QuantbotError
from runners.gguf.header import GgufLayout, TensorPlace, read_layout

_COPY_BLOCK = 1 << 24


def _pad(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def _entry(place: TensorPlace, offset: int) -> bytes:
    name = place.name.encode()
    return (struct.pack("<Q", len(name)) + name + struct.pack("<I", len(place.shape))
            + struct.pack(f"<{len(place.shape)}Q", *place.shape)
            + struct.pack("<IQ", place.type_id, offset))


def splice(template: Path, sources: Mapping[str, Path], out: Path) -> Path:
    """``out``: ``template``'s metadata and tensor order, each tensor's type and bytes taken from
    ``sources[name]`` (``template`` itself where a name is not there)."""
    base = read_layout(template)
    layouts: dict[Path, GgufLayout] = {template: base}
    places: list[tuple[Path, TensorPlace]] = []
    for place in base.tensors:
        src = sources.get(place.name, template)
        if src not in layouts:
            layouts[src] = read_layout(src)
        places.append((src, held_tensor(src, layouts[src], place.name, place.shape)))
    with template.open("rb") as fh:
        metadata = fh.read(base.metadata_end)
    return write_gguf(out, metadata, places, layouts, base.alignment)


def held_tensor(src: Path, layout: GgufLayout, name: str, shape: tuple[int, ...]) -> TensorPlace:
    """``name``'s entry in ``src``, which must hold it at ``shape``."""
    found = next((t for t in layout.tensors if t.name == name), None)
    if found is None or found.shape != shape:
        raise QuantbotError(f"{src.name} has no tensor {name} of shape {shape}",
                            "splice only quantizations of the same 16-bit file")
    return found


def write_gguf(out: Path, metadata: bytes, places: list[tuple[Path, TensorPlace]],
               layouts: Mapping[Path, GgufLayout], alignment: int) -> Path:
    """A GGUF file: ``metadata`` (its header and fields, their counts already right), then each
    tensor's entry and bytes, copied from its source file; written aside and renamed, so a file
    under ``out``'s name is always whole."""
    offsets, at = [], 0
    for _, place in places:
        offsets.append(at)
        at = _pad(at + place.n_bytes, alignment)
    tmp = out.with_name(f".{out.name}.partial")
    handles = {path: path.open("rb") for path in {src for src, _ in places}}
    try:
        with tmp.open("wb") as fout:
            fout.write(metadata)
            for (_, place), offset in zip(places, offsets, strict=True):
                fout.write(_entry(place, offset))
            fout.write(b"\0" * (_pad(fout.tell(), alignment) - fout.tell()))
            for src, place in places:
                fin = handles[src]
                fin.seek(layouts[src].data_start + place.offset)
                left = place.n_bytes
                while left:
                    block = fin.read(min(left, _COPY_BLOCK))
                    if not block:
                        raise QuantbotError(f"{src.name} ended inside {place.name}",
                                            "remake that file")
                    fout.write(block)
                    left -= len(block)
                fout.write(b"\0" * (_pad(place.n_bytes, alignment) - place.n_bytes))
    finally:
        for fh in handles.values():
            fh.close()
    tmp.rename(out)
    return out
