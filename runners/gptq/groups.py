"""Group sizes that fit the model: every quantized layer's input width must be a multiple.

GPTQ and AWQ scale weights in groups along a layer's input; kernels refuse a width that is not a
whole number of groups (on the CPU: ``_weight_int4pack_mm_cpu: expect K to be divisible by
qGroupSize``; the GPU kernels have the same rule). SmolLM2-135M's hidden size is 576 = 4.5 x 128,
so group 128 quantizes and then cannot be loaded. ``auto`` picks the largest of 128, 64, 32 that
divides every width; an explicit size that does not is refused before any work, with the fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from runners.errors import QuantbotError
from runners.gptq.spec import AwqSpec, GptqSpec
from runners.gptq.types import AUTO_GROUP

Spec = TypeVar("Spec", GptqSpec, AwqSpec)

#: Tried in this order for ``auto``: 128 is TheBloke's and the kernels' common default.
AUTO_ORDER = (128, 64, 32)
_NOT_QUANTIZED = ("vision", "visual", "multi_modal", "mm_projector", "image", "audio")


def quantized_widths(shapes: dict[str, list[int]]) -> set[int]:
    """Input widths of the decoder blocks' 2-D weights (pure): what GPTQ/AWQ quantize."""
    return {shape[1] for name, shape in shapes.items()
            if ".layers." in name and name.endswith(".weight") and len(shape) == 2
            and not any(part in name for part in _NOT_QUANTIZED)}


def auto_group(widths: Iterable[int]) -> int | None:
    """The largest of :data:`AUTO_ORDER` dividing every width, or None."""
    widths = set(widths)
    return next((g for g in AUTO_ORDER if all(w % g == 0 for w in widths)), None)


def resolve(spec: Spec, widths: set[int]) -> Spec:
    """``spec`` with ``auto`` replaced by the model's group size; explicit sizes checked."""
    sizes = []
    for size in spec.group_size:
        if size == AUTO_GROUP:
            chosen = auto_group(widths)
            if chosen is None:
                raise QuantbotError(
                    f"{spec.LABEL}: no group size of {', '.join(map(str, AUTO_ORDER))} divides "
                    f"every quantized layer's input width ({', '.join(map(str, sorted(widths)))})",
                    "quantize this model with another method (gguf, nf4)"
                    + (" or group_size=none" if spec.LABEL == "GPTQ" else ""))
            sizes.append(chosen)
        elif size > 0 and any(w % size for w in widths):
            bad = sorted(w for w in widths if w % size)
            fits = auto_group(widths)
            raise QuantbotError(
                f"{spec.LABEL} group_size={size} does not divide the input width of every "
                f"quantized layer ({', '.join(map(str, bad))}), so no kernel could load it",
                f"use group_size={fits}" if fits else "use another method (gguf, nf4)")
        else:
            sizes.append(size)
    return dataclasses.replace(spec, group_size=tuple(dict.fromkeys(sizes)))


def model_widths(folder: Path) -> set[int]:
    """:func:`quantized_widths` of a model folder, read from its safetensors headers."""
    from runners.source import safetensors_header

    shapes: dict[str, list[int]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        for name, meta in safetensors_header(file).items():
            if isinstance(meta, dict) and "shape" in meta:
                shapes[name] = meta["shape"]
    return quantized_widths(shapes)
