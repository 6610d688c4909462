"""Reload a saved folder with transformers alone, in a fresh process, and generate.

This is how a downstream user loads a GPTQ/AWQ repository (``AutoModelForCausalLM``, or
``AutoModelForImageTextToText`` for a vision model; transformers
itself picks the kernels through gptqmodel/optimum), so a variant that fails here is not
published. The same fresh process optionally measures the model (:mod:`runners.hfmodel.evaluate`),
which keeps its peak memory free of the quantizer's.

Run as ``python -m runners.hfmodel.check REQUEST.json RESULT.json``; :func:`check_folder` does that.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runners.errors import QuantbotError
from runners.hfmodel import worker
from runners.hfmodel.types import CheckOutcome, Measurement
from runners.proc import ToolFailed
from runners.results import Quality

log = logging.getLogger(__name__)

DEFAULT_PROMPT = "The for statement in Python"
#: Kernels the check loads with on CUDA unless told otherwise. GPTQModel 7.6's automatic choice
#: on Hopper is Machete, which first downloads CUTLASS from GitHub and JIT-compiles (minutes; fails
#: offline); on other GPUs Marlin, also JIT-compiled. The Triton kernels need no build step.
CUDA_BACKENDS = {"gptq": "triton", "awq": "gemm_triton"}


def check_folder(folder: Path, work_dir: Path, device: str = "auto", max_new_tokens: int = 16,
                 prompt: str = DEFAULT_PROMPT, quantized: bool = True,
                 evaluation: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                 log_file: Path | None = None, backend: str | None = None,
                 answers: tuple[Path, Path] | None = None, module: str = "runners.hfmodel.check",
                 runtime: str = "transformers") -> CheckOutcome:
    """Load ``folder`` in a new Python process with transformers and generate greedily.

    ``module`` is the worker that loads it (another runtime's, e.g. :mod:`runners.mlx.check`,
    answers the same request with the same result); ``runtime`` names it in errors.

    ``evaluation`` (``blocks_file``, ``baseline_dir``, ``key``, ``write_baseline``) also measures
    perplexity/KLD there. ``answers`` (a :class:`runners.answers.PromptSet` file, an output
    file) has the model answer the prompt set there too, greedily, as users run it.
    ``backend`` names the GPTQModel kernel (``"auto"``: its own choice; ``None``:
    :data:`CUDA_BACKENDS` on CUDA, automatic on CPU). Raises :class:`QuantbotError` naming the
    folder if anything fails.
    """
    tag = Path(folder).name
    try:
        data, run = worker.call(module, f"check-{tag}", {
            "folder": str(folder), "device": device, "max_new_tokens": max_new_tokens,
            "prompt": prompt, "quantized": quantized, "evaluation": evaluation,
            "backend": backend,
            "answers": [str(p) for p in answers] if answers else None}, work_dir,
            {**os.environ, "GPTQMODEL_OFFLINE": "1", **(env or {})},
            log_file)
    except ToolFailed as exc:
        raise QuantbotError(
            f"{tag} does not load and generate with {runtime}: {exc.problem.strip()}",
            "this variant is not published; read the error above (a missing package of the "
            "method's extra, an unsupported kernel or a broken folder)") from exc
    m = data.pop("measurement")
    data["peak_rss_bytes"] = max(data["peak_rss_bytes"], run.peak_rss_bytes)
    return CheckOutcome(**{**data, "folder": Path(data["folder"]),
                           "measurement": _measurement(m)})


def _measurement(data: dict[str, Any] | None) -> Measurement | None:
    if not data:
        return None
    return Measurement(**{**data, "quality": Quality(**data["quality"])})


@dataclass(frozen=True)
class LinearCount:
    """The linear layers of the language model's decoder blocks, as loaded."""

    quantized: int
    plain: int
    kernel: str  # class of the first quantized layer ("" when none is)


def count_quantized(model: Any) -> LinearCount:
    """Count the decoder blocks' linear layers, quantized and plain.

    Only the language model's blocks count: a vision tower (and a projector) stays 16-bit by
    design, in GPTQModel as in transformers' bitsandbytes path.
    """
    import torch

    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    quantized = plain = 0
    kernel = ""
    for name, module in decoder.named_modules():
        if not (name.startswith("layers.") or ".layers." in name) or list(module.children()):
            continue
        if getattr(module, "quantization_scheme", None) is not None:
            quantized += 1  # compressed-tensors keeps nn.Linear and attaches its scheme
            kernel = kernel or f"{type(module).__name__} (compressed-tensors)"
        elif type(module) is torch.nn.Linear:
            plain += 1
        elif hasattr(module, "qweight") or isinstance(module, torch.nn.Linear):
            quantized += 1  # GPTQ/AWQ kernels carry qweight; bitsandbytes' Linear4bit subclasses
            kernel = kernel or type(module).__name__
    return LinearCount(quantized, plain, kernel)


def _pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _worker(request: dict[str, Any]) -> dict[str, Any]:
    """The fresh process: transformers loads the folder as a user would."""
    import resource

    import torch
    import transformers
    from transformers import AutoTokenizer

    from runners.hfmodel import evaluate
    from runners.hfmodel.folder import auto_class_name

    folder = Path(request["folder"])
    device = _pick_device(request["device"])
    start = time.perf_counter()
    config = json.loads((folder / "config.json").read_text())
    if request["quantized"] and "quantization_config" not in config:
        raise QuantbotError(f"{folder}/config.json has no quantization_config",
                            "save the model with the quantizer's save()")
    kwargs: dict[str, Any] = {}
    qc = config.get("quantization_config") or {}
    backend = request.get("backend")
    if backend is None and device.startswith("cuda"):
        backend = CUDA_BACKENDS.get(qc.get("quant_method", ""))
    if qc and backend and backend != "auto":
        from transformers import AwqConfig, GPTQConfig

        cls = AwqConfig if qc.get("quant_method") == "awq" else GPTQConfig
        kwargs["quantization_config"] = cls.from_dict({**qc, "backend": backend})
    auto_class = getattr(transformers, auto_class_name(config))
    model = auto_class.from_pretrained(folder, device_map=device, dtype="auto", **kwargs)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    linears = count_quantized(model)
    if request["quantized"] and (linears.quantized == 0 or linears.plain > 0):
        raise QuantbotError(
            f"transformers loaded {linears.quantized} quantized and {linears.plain} plain linear "
            "layers in the decoder blocks",
            "the checkpoint's quantization_config did not take effect; check the folder")
    inputs = tokenizer(request["prompt"], return_tensors="pt").to(model.device)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=request["max_new_tokens"], do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:]
    text = tokenizer.decode(new, skip_special_tokens=True)
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    if len(new) < request["max_new_tokens"] and not (set(new.tolist()) & eos_ids):
        raise QuantbotError(f"generation stopped after {len(new)} tokens without EOS",
                            "the model's generate() is broken for this checkpoint")
    if not torch.isfinite(model(**inputs).logits).all():
        raise QuantbotError("the model's logits are not finite (NaN/inf)",
                            "this variant is broken; try another group size or more damping")
    measurement = None
    ev = request.get("evaluation")
    if ev:
        blocks = json.loads(Path(ev["blocks_file"]).read_text())
        measurement = evaluate.measure(model, blocks, Path(ev["baseline_dir"]), ev["key"],
                                       write_baseline=ev.get("write_baseline", False),
                                       adaptive=bool(ev.get("adaptive")),
                                       labels=ev.get("labels"))
    if request.get("answers"):
        prompts_file, out_file = request["answers"]
        _answer_prompts(model, tokenizer, Path(prompts_file), Path(out_file))
    cuda = torch.cuda.is_available() and device.startswith("cuda")
    return {
        "folder": str(folder), "text": text, "new_tokens": len(new),
        "quantized_modules": linears.quantized,
        "load_class": linears.kernel or "Linear",
        "dtype": str(model.dtype).removeprefix("torch."), "device": str(model.device),
        "seconds": round(time.perf_counter() - start, 3),
        "peak_vram_bytes": int(torch.cuda.max_memory_allocated()) if cuda else 0,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "measurement": asdict(measurement) if measurement else None,
    }


def _answer_prompts(model: Any, tokenizer: Any, prompts_file: Path, out: Path) -> None:
    """Answer every prompt of the set greedily; write ``{"tokens", "texts"}`` to ``out``."""
    import torch

    from runners.answers import PromptSet, strip_stop

    prompts = PromptSet.read(prompts_file)
    eos = model.generation_config.eos_token_id
    stop = set(eos if isinstance(eos, list) else [eos]) - {None}
    bos = tokenizer.bos_token_id
    answers: list[list[int]] = []
    texts: list[str] = []
    for text in prompts.texts:
        ids = tokenizer(text, add_special_tokens=True).input_ids
        if len(ids) > 1 and bos is not None and ids[0] == ids[1] == bos:  # the template's BOS
            ids = ids[1:]
        inputs = torch.tensor([ids], device=model.device)
        with torch.inference_mode():
            out_ids = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                                     max_new_tokens=prompts.max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id or next(iter(stop), 0))
        new = strip_stop(out_ids[0, len(ids):].tolist(), stop)
        answers.append(new)
        texts.append(tokenizer.decode(new, skip_special_tokens=True))
    out.write_text(json.dumps({"tokens": answers, "texts": texts}, ensure_ascii=False),
                   encoding="utf-8")


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    result = _worker(request)
    log.info("ok: %d tokens: %r", result["new_tokens"], result["text"])
    return result


def main(argv: list[str] | None = None) -> int:
    return worker.serve("runners.hfmodel.check", _answer, argv)


if __name__ == "__main__":
    sys.exit(main())
