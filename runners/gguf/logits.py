"""The first windows of a llama-perplexity reference-logits file, as a file of its own.

``llama-perplexity --kl-divergence`` scores every window the ``--kl-divergence-base`` file holds
(it ignores ``--chunks``), so measuring a file on its first k windows needs a file of the first k
windows: the same header with ``n_chunk = k``, the first ``k * n_ctx`` tokens and the first k
windows' log-probabilities, laid out as llama.cpp's ``tools/perplexity/perplexity.cpp`` writes
them: ``_logits_``, ``uint32 n_ctx``, ``int32 n_vocab``, ``int32 n_chunk``, ``int32
tokens[n_ctx * n_chunk]``, then per window ``(n_ctx - 1 - n_ctx / 2)`` rows of ``nv = 2 * ((n_vocab
+ 1) / 2) + 4`` uint16 values.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runners.errors import QuantbotError

MAGIC = b"_logits_"
_HEADER = struct.Struct("<8sIii")


@dataclass(frozen=True)
class LogitsHeader:
    n_ctx: int
    n_vocab: int
    n_chunk: int

    @property
    def tokens_bytes(self) -> int:
        return 4 * self.n_ctx * self.n_chunk

    @property
    def window_bytes(self) -> int:
        nv = 2 * ((self.n_vocab + 1) // 2) + 4
        return (self.n_ctx - 1 - self.n_ctx // 2) * nv * 2

    def file_bytes(self) -> int:
        return _HEADER.size + self.tokens_bytes + self.n_chunk * self.window_bytes


def read_header(path: Path) -> LogitsHeader:
    with path.open("rb") as fh:
        raw = fh.read(_HEADER.size)
    if len(raw) < _HEADER.size:
        raise QuantbotError(f"{path.name} is too short for a logits file",
                            "delete it so the reference logits are computed again")
    magic, n_ctx, n_vocab, n_chunk = _HEADER.unpack(raw)
    header = LogitsHeader(n_ctx, n_vocab, n_chunk)
    if magic != MAGIC or path.stat().st_size != header.file_bytes():
        raise QuantbotError(f"{path.name} is not a whole llama-perplexity logits file",
                            "delete it so the reference logits are computed again")
    return header


def write_prefix(src: Path, dst: Path, chunks: int) -> Path:
    """``dst``: ``src``'s first ``chunks`` windows (``src`` itself is never changed)."""
    header = read_header(src)
    if not 1 <= chunks <= header.n_chunk:
        raise ValueError(f"{chunks} windows asked of a file of {header.n_chunk}")
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.partial")  # workers may race
    with src.open("rb") as fin, tmp.open("wb") as fout:
        fin.seek(_HEADER.size)
        fout.write(_HEADER.pack(MAGIC, header.n_ctx, header.n_vocab, chunks))
        fout.write(fin.read(4 * header.n_ctx * chunks))
        fin.seek(_HEADER.size + header.tokens_bytes)
        remaining = chunks * header.window_bytes
        while remaining:
            block = fin.read(min(remaining, 1 << 24))
            if not block:
                raise QuantbotError(f"{src.name} ended early", "delete it and measure again")
            fout.write(block)
            remaining -= len(block)
    tmp.rename(dst)
    return dst


def write_windows(sources: Sequence[Path], order: Sequence[tuple[int, int]], dst: Path) -> Path:
    """``dst``: the windows ``order`` names, ``(source, window)`` each, from logits files of one
    window size and vocabulary, in that order (how each domain's reference, computed on its own
    text, becomes one interleaved reference; and how one domain's windows are measured alone)."""
    headers = [read_header(src) for src in sources]
    if len({(h.n_ctx, h.n_vocab) for h in headers}) != 1:
        raise QuantbotError("reference logits of different window sizes or vocabularies",
                            "delete the work folder's reference files and measure again")
    first = headers[0]
    for source, window in order:
        if not 0 <= window < headers[source].n_chunk:
            raise ValueError(f"window {window} asked of a file of {headers[source].n_chunk}")
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.partial")  # workers may race
    files = [src.open("rb") for src in sources]
    try:
        with tmp.open("wb") as fout:
            fout.write(_HEADER.pack(MAGIC, first.n_ctx, first.n_vocab, len(order)))
            for source, window in order:
                files[source].seek(_HEADER.size + 4 * first.n_ctx * window)
                fout.write(files[source].read(4 * first.n_ctx))
            for source, window in order:
                files[source].seek(_HEADER.size + headers[source].tokens_bytes
                                   + window * first.window_bytes)
                block = files[source].read(first.window_bytes)
                if len(block) != first.window_bytes:
                    raise QuantbotError(f"{sources[source].name} ended early",
                                        "delete it and measure again")
                fout.write(block)
    finally:
        for fh in files:
            fh.close()
    tmp.rename(dst)
    return dst


def windows_of(src: Path, windows: Sequence[int], name: str) -> Path:
    """The file of ``src``'s ``windows`` beside it, named ``<src stem>.first<name>`` so that
    :func:`remove_prefixes` removes it too; made once."""
    dst = src.with_name(f"{src.stem}.first{name}{src.suffix}")
    if not dst.exists():
        write_windows([src], [(0, w) for w in windows], dst)
    return dst


def prefix_of(src: Path, chunks: int) -> Path:
    """The file of ``src``'s first ``chunks`` windows beside it, made once (``src`` itself when
    it holds exactly that many)."""
    if read_header(src).n_chunk == chunks:
        return src
    dst = src.with_name(f"{src.stem}.first{chunks}{src.suffix}")
    if not dst.exists():
        write_prefix(src, dst, chunks)
    return dst


def remove_prefixes(src: Path) -> None:
    """Delete the prefix files made beside ``src`` (they are caches of its bytes)."""
    for path in src.parent.glob(f"{src.stem}.first*"):
        path.unlink(missing_ok=True)
