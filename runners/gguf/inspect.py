"""Reading GGUF files (their headers): tensor types, bits per weight, memory to run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from runners.gguf.header import read_header

#: Context length the RAM estimate assumes (capped by the model's own context length).
RAM_ESTIMATE_CTX = 4096


@dataclass(frozen=True)
class GgufSummary:
    """What a GGUF file (all parts of a split file) holds."""

    architecture: str
    n_params: int
    tensor_bytes: int
    file_bytes: int
    tensor_types: dict[str, int]
    n_layers: int
    n_kv_heads: int
    head_dim: int
    context_length: int

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.tensor_bytes / self.n_params

    def kv_cache_bytes(self, ctx: int) -> int:
        """f16 K and V for ``ctx`` tokens over all layers (llama.cpp's default cache type)."""
        return 2 * self.n_layers * ctx * self.n_kv_heads * self.head_dim * 2

    def ram_estimate(self) -> tuple[int, int]:
        """``(bytes, ctx)``: weights plus the f16 KV cache at ``min(4096, model context)``."""
        ctx = min(RAM_ESTIMATE_CTX, self.context_length or RAM_ESTIMATE_CTX)
        return self.file_bytes + self.kv_cache_bytes(ctx), ctx


def summarize(parts: list[Path]) -> GgufSummary:
    """Summarize a GGUF file given as its list of parts (one path when not split)."""
    types: Counter[str] = Counter()
    n_params = tensor_bytes = 0
    fields: dict[str, object] = {}
    for part in parts:
        header = read_header(part)
        for name, value in header.fields.items():
            fields.setdefault(name, value)
        for tensor in header.tensors:
            types[tensor.type_name] += 1
            n_params += tensor.n_elements
            tensor_bytes += tensor.n_bytes
    arch = str(fields.get("general.architecture", "llama"))

    def num(key: str, default: int = 0) -> int:
        value = fields.get(f"{arch}.{key}", default)
        if isinstance(value, list):  # per-layer values: take the largest
            value = max(value) if value else default
        return int(value)  # type: ignore[arg-type]

    n_heads = num("attention.head_count", 1) or 1
    head_dim = num("attention.key_length") or num("embedding_length") // n_heads
    return GgufSummary(
        architecture=arch, n_params=n_params, tensor_bytes=tensor_bytes,
        file_bytes=sum(p.stat().st_size for p in parts), tensor_types=dict(types),
        n_layers=num("block_count"), n_kv_heads=num("attention.head_count_kv", n_heads),
        head_dim=head_dim, context_length=num("context_length"),
    )
