"""Quantize a Hugging Face model folder to bitsandbytes NF4 and save it as a checkpoint.

transformers quantizes while loading (``BitsAndBytesConfig(load_in_4bit=True, …)``): every
``nn.Linear`` of the decoder becomes a ``bnb.nn.Linear4bit`` holding 4-bit NormalFloat codes in
blocks of 64 with one absmax per block (itself 8-bit quantized with double quantization).
transformers keeps the output embedding (``lm_head``) in 16-bit by default, and
:func:`skip_modules` adds a multimodal model's vision tower and projector.
``save_pretrained`` then writes sharded safetensors and a ``quantization_config`` with
``quant_method: bitsandbytes``, which a plain ``from_pretrained`` loads as it is.

Run as ``python -m runners.nf4.quantize REQUEST.json RESULT.json`` (:mod:`runners.hfmodel.pipeline`).
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

from runners.errors import QuantbotError
from runners.hfmodel.folder import (
    VISION_MODULES,
    auto_class_name,
    copy_tokenizer_files,
    new_output_folder,
    quantization_config,
    quantize_device,
    require_files,
)
from runners.hfmodel.pipeline import serve_quantizer
from runners.hfmodel.types import QuantOutcome
from runners.nf4.spec import Nf4Variant

log = logging.getLogger(__name__)

def skip_modules(config: dict[str, Any]) -> list[str] | None:
    """Modules to keep in 16-bit besides transformers' default (``lm_head``); None: the default."""
    if not config.get("vision_config"):
        return None
    return ["lm_head", *VISION_MODULES]


def bnb_config_kwargs(variant: Nf4Variant, skip: list[str] | None) -> dict[str, Any]:
    """Arguments for ``transformers.BitsAndBytesConfig`` (pure; dtype as its name)."""
    out: dict[str, Any] = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                           "bnb_4bit_use_double_quant": variant.double_quant,
                           "bnb_4bit_compute_dtype": variant.compute_dtype,
                           "bnb_4bit_quant_storage": "uint8"}
    if skip:
        out["llm_int8_skip_modules"] = skip
    return out


def verify_folder(folder: Path, variant: Nf4Variant) -> list[str]:
    """The published files of a finished folder; :class:`QuantbotError` if it is not NF4."""
    qc = quantization_config(folder)
    wanted = {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
              "bnb_4bit_use_double_quant": variant.double_quant,
              "bnb_4bit_compute_dtype": variant.compute_dtype}
    wrong = {k: qc.get(k) for k, v in wanted.items() if qc.get(k) != v}
    if wrong:
        raise QuantbotError(f"{folder}/config.json's quantization_config has {wrong}, "
                            f"expected {wanted}", "quantize this variant again into an empty folder")
    return require_files(folder)


def quantize(source: Path, variant: Nf4Variant, out_dir: Path, device: str = "auto",
             max_shard_size: str = "4GB") -> QuantOutcome:
    """Quantize ``source`` into ``out_dir`` (created; must be empty)."""
    import bitsandbytes
    import torch
    import transformers
    from transformers import BitsAndBytesConfig

    target = quantize_device(device)
    on_cuda = target != "cpu"
    new_output_folder(out_dir)
    config = json.loads((source / "config.json").read_text())
    kwargs = bnb_config_kwargs(variant, skip_modules(config))
    kwargs["bnb_4bit_compute_dtype"] = getattr(torch, variant.compute_dtype)
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    log.info("quantizing %s -> %s (%s) on %s", source, out_dir, variant.name, target)
    start = time.perf_counter()
    auto_class = getattr(transformers, auto_class_name(config))
    model = auto_class.from_pretrained(
        source, quantization_config=BitsAndBytesConfig(**kwargs), device_map=target,
        dtype=getattr(torch, variant.compute_dtype))
    model.save_pretrained(out_dir, max_shard_size=max_shard_size)
    seconds = time.perf_counter() - start
    peak_vram = int(torch.cuda.max_memory_allocated()) if on_cuda else 0
    del model
    copy_tokenizer_files(source, out_dir)
    files = verify_folder(out_dir, variant)
    return QuantOutcome(
        variant=variant.name, params=variant.params(), folder=out_dir, seconds=round(seconds, 3),
        peak_vram_bytes=peak_vram,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        calibration_tokens=0, files=files,
        size_bytes=sum((out_dir / f).stat().st_size for f in files),
        tool_version=f"bitsandbytes {bitsandbytes.__version__}")


def _make(req: dict[str, Any]) -> QuantOutcome:
    return quantize(Path(req["source"]), Nf4Variant(**req["variant"]), Path(req["out_dir"]),
                    device=req["device"])


def main(argv: list[str] | None = None) -> int:
    return serve_quantizer("runners.nf4.quantize", _make, argv)


if __name__ == "__main__":
    sys.exit(main())
