"""A saved model folder: the files a transformers user needs beside the weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from runners.errors import QuantbotError

#: Copied from the source folder when the quantizer's save() leaves them out.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                   "special_tokens_map.json", "added_tokens.json", "chat_template.jinja",
                   "chat_template.json", "generation_config.json")


#: The transformers auto class a user loads a model with: vision models through the
#: image-text-to-text class, which keeps the vision tower (the causal-LM class of Qwen3.5, for
#: one, is its text model alone; Mistral 3 has none).
CAUSAL_LM, IMAGE_TEXT_TO_TEXT = "AutoModelForCausalLM", "AutoModelForImageTextToText"

#: Module names of multimodal models' non-language parts, kept in 16-bit as transformers and
#: the usual -bnb-4bit and -FP8-dynamic releases do (quantizing a vision tower costs much quality
#: for little size).
VISION_MODULES = ("vision_tower", "vision_model", "visual", "multi_modal_projector", "mm_projector",
                  "vision_embed_tokens", "image_newline")


def quantize_device(device: str) -> str:
    """Where a quantizer works: ``cuda:0`` for ``auto`` with a GPU, the device asked for, or
    ``cpu``."""
    import torch

    on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return ("cuda:0" if device == "auto" else device) if on_cuda else "cpu"


def new_output_folder(out_dir: Path) -> None:
    """Create ``out_dir`` for a quantizer's checkpoint; one with files in it is refused, so a
    stale checkpoint is never mixed with a new one."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise QuantbotError(f"{out_dir} is not empty", "remove it or choose another folder")
    out_dir.mkdir(parents=True, exist_ok=True)


def auto_class_name(config: dict[str, Any]) -> str:
    """The auto class for a model's ``config.json`` (pure)."""
    return IMAGE_TEXT_TO_TEXT if "vision_config" in config else CAUSAL_LM


def sixteen_bit_dtype(config: dict[str, Any]) -> str:
    """The dtype a checkpoint's unquantized parts are saved in: the source's 16-bit dtype, or
    bfloat16 for a float32 source (pure)."""
    dtype = config.get("dtype") or config.get("torch_dtype")
    return dtype if dtype in ("bfloat16", "float16") else "bfloat16"


def copy_tokenizer_files(source: Path, out_dir: Path) -> None:
    for name in TOKENIZER_FILES:
        if (source / name).is_file() and not (out_dir / name).exists():
            shutil.copy2(source / name, out_dir / name)


def quantization_config(folder: Path) -> dict[str, Any]:
    """``config.json``'s ``quantization_config`` ({} when there is none)."""
    path = folder / "config.json"
    if not path.is_file():
        raise QuantbotError(f"{folder} has no config.json", "quantize this variant again")
    return json.loads(path.read_text()).get("quantization_config") or {}


def require_files(folder: Path, extra: dict[str, bool] | None = None) -> list[str]:
    """The folder's files, if it holds weights, a tokenizer and a generation config."""
    checks = {
        "model.safetensors": any(folder.glob("*.safetensors")),
        "tokenizer": any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer.model")),
        "generation_config.json": (folder / "generation_config.json").is_file(),
        **(extra or {}),
    }
    missing = [name for name, ok in checks.items() if not ok]
    if missing:
        raise QuantbotError(f"{folder} lacks {', '.join(missing)}", "quantize this variant again")
    return sorted(p.name for p in folder.iterdir() if p.is_file())
