"""Quantize a Hugging Face model folder to a compressed-tensors FP8 dynamic checkpoint.

What llm-compressor's ``QuantizationModifier(scheme="FP8_DYNAMIC")`` writes, made with
compressed-tensors alone (llm-compressor pins an older huggingface_hub and transformers than
quantbot's): the scheme is compressed-tensors' own ``FP8_DYNAMIC`` preset applied to every
``Linear``; each weight gets one scale per output channel from its absolute maximum (the
preset's symmetric min-max, :func:`compressed_tensors.quantization.utils.calculate_qparams`,
as llm-compressor's default observer computes it); activations are scaled per token at run
time, so nothing is calibrated. ``lm_head``, a mixture of experts' router (``mlp.gate``) and a
multimodal model's vision tower and projector stay 16-bit. The model is then compressed to
``float-quantized`` (FP8 E4M3 tensors plus ``weight_scale``) and saved with
``quantization_config.quant_method: compressed-tensors``, which vLLM and transformers load.

Run as ``python -m runners.fp8.quantize REQUEST.json RESULT.json`` (:mod:`runners.hfmodel.pipeline`).
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
from runners.fp8.spec import SCHEME, Fp8Variant
from runners.hfmodel.folder import (
    VISION_MODULES,
    auto_class_name,
    copy_tokenizer_files,
    new_output_folder,
    quantization_config,
    quantize_device,
    require_files,
    sixteen_bit_dtype,
)
from runners.hfmodel.pipeline import serve_quantizer
from runners.hfmodel.types import QuantOutcome

log = logging.getLogger(__name__)

#: compressed-tensors' name for FP8 tensors with a scale (the llm-compressor FP8_DYNAMIC format).
FORMAT = "float-quantized"
#: Routers of mixtures of experts: llm-compressor's FP8 examples keep them 16-bit (tiny, and
#: vLLM's fused MoE kernels expect them unquantized).
ROUTERS = ("re:.*mlp[.]gate$",)


def ignore_list(config: dict[str, Any]) -> list[str]:
    """Modules kept 16-bit, in compressed-tensors' ``ignore`` syntax (pure)."""
    vision = [f"re:.*{name}.*" for name in VISION_MODULES] if config.get("vision_config") else []
    return ["lm_head", *ROUTERS, *vision]


def verify_folder(folder: Path, variant: Fp8Variant) -> list[str]:
    """The published files of a finished folder; :class:`QuantbotError` if it is not FP8 dynamic."""
    qc = quantization_config(folder)
    groups = list((qc.get("config_groups") or {}).values())
    weights = groups[0].get("weights") or {} if len(groups) == 1 else {}
    acts = groups[0].get("input_activations") or {} if len(groups) == 1 else {}
    found = {"quant_method": qc.get("quant_method"), "format": qc.get("format"),
             "groups": len(groups), "weights": (weights.get("num_bits"), weights.get("type"),
                                                 weights.get("strategy"), weights.get("dynamic")),
             "activations": (acts.get("num_bits"), acts.get("type"), acts.get("strategy"),
                             acts.get("dynamic")),
             "lm_head kept": "lm_head" in (qc.get("ignore") or [])}
    wanted = {"quant_method": "compressed-tensors", "format": FORMAT, "groups": 1,
              "weights": (8, "float", "channel", False), "activations": (8, "float", "token", True),
              "lm_head kept": True}
    wrong = {k: v for k, v in found.items() if v != wanted[k]}
    if wrong:
        raise QuantbotError(f"{folder}/config.json's quantization_config has {wrong}, expected "
                            f"{ {k: wanted[k] for k in wrong} } ({SCHEME})",
                            "quantize this variant again into an empty folder")
    return require_files(folder)


def _set_weight_scales(model: Any) -> int:
    """Compute every quantized module's per-channel weight scale; the count of modules."""
    from compressed_tensors.quantization import QuantizationStatus
    from compressed_tensors.quantization.utils import calculate_qparams

    count = 0
    for module in model.modules():
        scheme = getattr(module, "quantization_scheme", None)
        if scheme is None or scheme.weights is None:
            continue
        weight = module.weight.detach()
        scale, zero = calculate_qparams(weight.amin(dim=1, keepdim=True),
                                        weight.amax(dim=1, keepdim=True), scheme.weights)
        module.weight_scale.data.copy_(scale.to(module.weight_scale.dtype))
        module.weight_zero_point.data.copy_(zero.to(module.weight_zero_point.dtype))
        module.quantization_status = QuantizationStatus.FROZEN
        count += 1
    return count


def quantize(source: Path, out_dir: Path, device: str = "auto",
             max_shard_size: str = "4GB") -> QuantOutcome:
    """Quantize ``source`` into ``out_dir`` (created; must be empty)."""
    import compressed_tensors
    import torch
    import transformers
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (
        QuantizationConfig,
        QuantizationStatus,
        apply_quantization_config,
        preset_name_to_scheme,
    )

    target = quantize_device(device)
    on_cuda = target != "cpu"
    new_output_folder(out_dir)
    config = json.loads((source / "config.json").read_text())
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    log.info("quantizing %s -> %s (%s) on %s", source, out_dir, SCHEME, target)
    start = time.perf_counter()
    auto_class = getattr(transformers, auto_class_name(config))
    model = auto_class.from_pretrained(source, device_map=target,
                                       dtype=getattr(torch, sixteen_bit_dtype(config)))
    scheme = preset_name_to_scheme(SCHEME, ["Linear"])
    apply_quantization_config(model, QuantizationConfig(
        config_groups={"group_0": scheme}, ignore=ignore_list(config),
        quantization_status=QuantizationStatus.INITIALIZED), show_progress=False)
    count = _set_weight_scales(model)
    if count == 0:
        raise QuantbotError(f"{SCHEME} matched no Linear module of {source}",
                            "this model's layers are not torch.nn.Linear; use another method")
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=FORMAT)
    compressor.compress_model(model)
    model.save_pretrained(out_dir, max_shard_size=max_shard_size)
    compressor.update_config(str(out_dir))
    seconds = time.perf_counter() - start
    peak_vram = int(torch.cuda.max_memory_allocated()) if on_cuda else 0
    del model
    copy_tokenizer_files(source, out_dir)
    files = verify_folder(out_dir, Fp8Variant())
    log.info("%d Linear modules in FP8 in %.1f s", count, seconds)
    return QuantOutcome(
        variant=Fp8Variant.name, params=Fp8Variant().params(), folder=out_dir,
        seconds=round(seconds, 3), peak_vram_bytes=peak_vram,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        calibration_tokens=0, files=files,
        size_bytes=sum((out_dir / f).stat().st_size for f in files),
        tool_version=f"compressed-tensors {compressed_tensors.__version__}")


def _make(req: dict[str, Any]) -> QuantOutcome:
    Fp8Variant(**req["variant"])  # the request names the one variant there is
    return quantize(Path(req["source"]), Path(req["out_dir"]), device=req["device"])


def main(argv: list[str] | None = None) -> int:
    return serve_quantizer("runners.fp8.quantize", _make, argv)


if __name__ == "__main__":
    sys.exit(main())
