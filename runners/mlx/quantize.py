"""Quantize a Hugging Face model folder to an MLX checkpoint with mlx-lm.

``mlx_lm.convert`` loads the safetensors (the model's own ``sanitize`` maps the names), casts
to the source's 16-bit dtype (bfloat16 for a float32 source) and quantizes every ``Linear``
and the embeddings with MLX's affine quantization (one scale and one bias per group of
weights), then writes safetensors with a ``quantization`` block in ``config.json``, the
layout mlx-community publishes and ``mlx_lm.load`` reads. Nothing is calibrated.

Run as ``python -m runners.mlx.quantize REQUEST.json RESULT.json`` (:mod:`runners.hfmodel.pipeline`).
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
from runners.hfmodel.folder import copy_tokenizer_files, require_files, sixteen_bit_dtype
from runners.hfmodel.pipeline import serve_quantizer
from runners.hfmodel.types import QuantOutcome
from runners.mlx.spec import MlxVariant

log = logging.getLogger(__name__)

#: mlx-lm's own stub card: quantbot writes the repository's card.
STUB_CARD = "README.md"


def rope_fields(config: dict[str, Any]) -> dict[str, Any]:
    """Top-level ``rope_theta``/``rope_scaling`` for a config that holds them only in
    transformers 5's ``rope_parameters`` (pure; {} when nothing is missing).

    mlx-lm 0.32 reads only the top-level fields: without them it silently uses its default
    theta (10000), a different model (SmolLM2-135M, theta 100000: KLD 0.14 against transformers
    before any quantization).
    """
    params = config.get("rope_parameters") or {}
    if isinstance(params, dict) and set(params) & {"rope_theta", "rope_type"} \
            and not isinstance(next(iter(params.values())), dict):
        out: dict[str, Any] = {}
        if "rope_theta" in params and "rope_theta" not in config:
            out["rope_theta"] = params["rope_theta"]
        if params.get("rope_type", "default") != "default" and not config.get("rope_scaling"):
            out["rope_scaling"] = {k: v for k, v in params.items() if k != "rope_theta"}
        return out
    return {}


def verify_folder(folder: Path, variant: MlxVariant) -> list[str]:
    """The published files of a finished folder; :class:`QuantbotError` if it is not this variant."""
    path = folder / "config.json"
    if not path.is_file():
        raise QuantbotError(f"{folder} has no config.json", "quantize this variant again")
    config = json.loads(path.read_text())
    missing = rope_fields(config)
    if missing:
        raise QuantbotError(f"{path} lacks the top-level {', '.join(missing)} mlx-lm reads",
                            "quantize this variant again (quantbot adds them from rope_parameters)")
    found = config.get("quantization") or {}
    wanted = {"bits": variant.bits, "group_size": variant.group_size, "mode": "affine"}
    got = {"bits": found.get("bits"), "group_size": found.get("group_size"),
           "mode": found.get("mode", "affine")}  # mlx-lm before 0.26 wrote no mode: affine
    wrong = {k: v for k, v in got.items() if v != wanted[k]}
    if wrong:
        raise QuantbotError(f"{path}'s quantization block has {wrong}, expected {wanted}",
                            "quantize this variant again into an empty folder")
    return require_files(folder)


def quantize(source: Path, variant: MlxVariant, out_dir: Path) -> QuantOutcome:
    """Quantize ``source`` into ``out_dir`` (which must not exist: mlx-lm creates it)."""
    import mlx_lm
    from mlx_lm import convert

    if out_dir.exists():
        raise QuantbotError(f"{out_dir} exists", "remove it; mlx_lm.convert writes a new folder")
    log.info("quantizing %s -> %s (%s)", source, out_dir, variant.name)
    start = time.perf_counter()
    dtype = sixteen_bit_dtype(json.loads((source / "config.json").read_text()))
    convert(str(source), mlx_path=str(out_dir), quantize=True, q_bits=variant.bits,
            q_group_size=variant.group_size, q_mode="affine", dtype=dtype)
    seconds = time.perf_counter() - start
    (out_dir / STUB_CARD).unlink(missing_ok=True)
    config_file = out_dir / "config.json"
    config = json.loads(config_file.read_text())
    config.update(rope_fields(config))
    config_file.write_text(json.dumps(config, indent=4) + "\n")
    copy_tokenizer_files(source, out_dir)
    files = verify_folder(out_dir, variant)
    return QuantOutcome(
        variant=variant.name, params=variant.params(), folder=out_dir, seconds=round(seconds, 3),
        peak_vram_bytes=0,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        calibration_tokens=0, files=files,
        size_bytes=sum((out_dir / f).stat().st_size for f in files),
        tool_version=f"mlx-lm {mlx_lm.__version__}")


def _make(req: dict[str, Any]) -> QuantOutcome:
    return quantize(Path(req["source"]), MlxVariant(**req["variant"]), Path(req["out_dir"]))


def main(argv: list[str] | None = None) -> int:
    return serve_quantizer("runners.mlx.quantize", _make, argv)


if __name__ == "__main__":
    sys.exit(main())
