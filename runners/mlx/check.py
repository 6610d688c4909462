"""Load a folder with mlx-lm alone, in a fresh process: generate, measure, answer.

This is how users run an MLX repository (``mlx_lm.load``, ``mlx_lm.generate``), so a variant
that fails here is not published. The same process optionally measures the model (on a CPU
with its weights dequantized, :data:`CPU_DEQUANTIZED`) on the
evaluation windows with MLX's own forward pass, against the unquantized model's log-probs that
:mod:`runners.hfmodel.evaluate` wrote with transformers (same windows, same loop and math:
:func:`~runners.hfmodel.evaluate.score_windows`, with the adaptive rule),
and answers the prompt set greedily, as :mod:`runners.hfmodel.check` does in transformers.

Run as ``python -m runners.mlx.check REQUEST.json RESULT.json``; the request and result are
:func:`runners.hfmodel.check.check_folder`'s (``module=`` this one).
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from runners.answers import PromptSet, strip_stop
from runners.errors import QuantbotError
from runners.hfmodel import evaluate, worker
from runners.hfmodel.types import Measurement
from runners.mlx.quantize import rope_fields

log = logging.getLogger(__name__)

#: On a CPU the variant generates with MLX's quantized kernels (the load check), then is measured
#: and answers with the same weights dequantized by ``mx.dequantize`` (the values the kernels
#: compute with): MLX's CPU quantized matmul is about 20x slower than its dense one (SmolLM2-135M
#: 4-bit: 128 tokens in 263 s against 14 s on 2 busy cores), too slow for the evaluation windows.
#: On Apple silicon (Metal) everything runs on the quantized kernels.
CPU_DEQUANTIZED = ", measured dequantized (mx.dequantize) on the CPU"


def count_quantized(model: Any) -> tuple[int, int]:
    """Quantized and plain ``Linear``/``Embedding`` layers of an MLX model."""
    import mlx.nn as nn

    quantized = plain = 0
    for _, module in _leaves(model):
        if isinstance(module, (nn.QuantizedLinear, nn.QuantizedEmbedding)):
            quantized += 1
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            plain += 1
    return quantized, plain


def _leaves(model: Any) -> list[tuple[str, Any]]:
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    return tree_flatten(model.leaf_modules(), is_leaf=lambda m: isinstance(m, nn.Module))


def _greedy(model: Any, tokenizer: Any, ids: list[int], max_new_tokens: int) -> list[int]:
    """Up to ``max_new_tokens`` argmax tokens after ``ids`` (mlx-lm's default sampler is argmax)."""
    from mlx_lm import stream_generate

    return [r.token for r in stream_generate(model, tokenizer, ids, max_tokens=max_new_tokens)]


def _stop_ids(tokenizer: Any) -> set[int]:
    return {int(t) for t in tokenizer.eos_token_ids}


def measure(model: Any, blocks: list[list[int]], baseline_dir: Path, key: str,
            adaptive: bool = False, labels: list[str] | None = None) -> Measurement:
    """Score ``model`` on ``blocks`` against the transformers baseline's log-probs: the one loop
    of every runtime (:func:`runners.hfmodel.evaluate.score_windows`), adaptive rule included,
    fed with MLX's own logits."""
    import mlx.core as mx
    import numpy as np
    import torch

    def logits_of(block: list[int]) -> torch.Tensor:
        logits = model(mx.array([block]))[0].astype(mx.float32)
        mx.eval(logits)
        return torch.from_numpy(np.array(logits))

    result = evaluate.score_windows(logits_of, blocks, baseline_dir, key, adaptive=adaptive,
                                    labels=labels)
    return replace(result, dtype=_dtype(model))


def _dtype(model: Any) -> str:
    from mlx.utils import tree_flatten

    floats = [str(v.dtype) for _, v in tree_flatten(model.parameters())
              if "float" in str(v.dtype)]
    return max(set(floats), key=floats.count).removeprefix("mlx.core.") if floats else ""


def answer_prompts(model: Any, tokenizer: Any, prompts_file: Path, out: Path) -> None:
    """Answer every prompt of the set greedily; write ``{"tokens", "texts"}`` to ``out``."""
    prompts = PromptSet.read(prompts_file)
    stop = _stop_ids(tokenizer)
    bos = tokenizer.bos_token_id
    answers: list[list[int]] = []
    texts: list[str] = []
    for text in prompts.texts:
        ids = tokenizer.encode(text, add_special_tokens=True)
        if len(ids) > 1 and bos is not None and ids[0] == ids[1] == bos:  # the template's BOS
            ids = ids[1:]
        new = strip_stop(_greedy(model, tokenizer, ids, prompts.max_new_tokens), stop)
        answers.append(new)
        texts.append(tokenizer.decode(new, skip_special_tokens=True))
    out.write_text(json.dumps({"tokens": answers, "texts": texts}, ensure_ascii=False),
                   encoding="utf-8")


def _worker(request: dict[str, Any]) -> dict[str, Any]:
    """The fresh process: mlx-lm loads the folder as a user would."""
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.utils import dequantize_model

    folder = Path(request["folder"])
    start = time.perf_counter()
    config = json.loads((folder / "config.json").read_text())
    if request["quantized"] and "quantization" not in config:
        raise QuantbotError(f"{folder}/config.json has no quantization block",
                            "convert the model with mlx_lm.convert(quantize=True)")
    # The unquantized source (the answers' reference) as mlx-lm reads it once converted.
    model, tokenizer = load(str(folder), model_config=None if request["quantized"]
                            else rope_fields(config))
    quantized, plain = count_quantized(model)
    if request["quantized"] and quantized == 0:
        raise QuantbotError(f"mlx-lm loaded no quantized layer from {folder} ({plain} plain)",
                            "the checkpoint's quantization block did not take effect; check the folder")
    ids = tokenizer.encode(request["prompt"], add_special_tokens=True)
    new = _greedy(model, tokenizer, ids, request["max_new_tokens"])
    if len(new) < request["max_new_tokens"] and not set(new) & _stop_ids(tokenizer):
        raise QuantbotError(f"generation stopped after {len(new)} tokens without EOS",
                            "mlx-lm's generation is broken for this checkpoint")
    text = tokenizer.decode(strip_stop(new, _stop_ids(tokenizer)), skip_special_tokens=True)
    logits = model(mx.array([ids]))
    if not bool(mx.all(mx.isfinite(logits)).item()):
        raise QuantbotError("the model's logits are not finite (NaN/inf)",
                            "this variant is broken; try more bits or a smaller group size")
    kernel = "QuantizedLinear" if quantized else "Linear"
    if quantized and mx.default_device() != mx.gpu:
        model = dequantize_model(model)
        kernel += CPU_DEQUANTIZED
    measurement = None
    ev = request.get("evaluation")
    if ev:
        if ev.get("write_baseline"):
            raise QuantbotError("the MLX check cannot write the baseline",
                                "score the unquantized model with runners.hfmodel.check")
        blocks = json.loads(Path(ev["blocks_file"]).read_text())
        measurement = measure(model, blocks, Path(ev["baseline_dir"]), ev["key"],
                              adaptive=bool(ev.get("adaptive")), labels=ev.get("labels"))
    if request.get("answers"):
        prompts_file, out_file = request["answers"]
        answer_prompts(model, tokenizer, Path(prompts_file), Path(out_file))
    return {
        "folder": str(folder), "text": text, "new_tokens": len(new),
        "quantized_modules": quantized,
        "load_class": kernel,
        "dtype": _dtype(model), "device": "gpu" if mx.default_device() == mx.gpu else "cpu",
        "seconds": round(time.perf_counter() - start, 3), "peak_vram_bytes": 0,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "measurement": asdict(measurement) if measurement else None,
    }


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    result = _worker(request)
    log.info("ok: %d tokens: %r", result["new_tokens"], result["text"])
    return result


def main(argv: list[str] | None = None) -> int:
    return worker.serve("runners.mlx.check", _answer, argv)


if __name__ == "__main__":
    sys.exit(main())
