"""Where GPTQModel 7.6's AWQ time goes, and what each setting or patch buys: one GPU run.

Quantizes one model (a seeded random stand-in from ``bench/standin.py``, by default shaped like
Llama-3.2-1B; or ``--model PATH``) with GPTQ once and AWQ under several variants, all through
quantbot's own :func:`runners.gptq.quantize.quantize` (so load, calibration batching,
``QuantizeConfig``, the AWQ patches and save are exactly the pipeline's). A variant changes one
thing:

- a ``QuantizeConfig`` field, merged over :func:`runners.gptq.quantize.quantize_config_kwargs`
  (``offload_to_disk``, ``scale_search_chunked_activations``, ...);
- an ``AWQProcessor`` attribute GPTQModel hard-codes in its constructor (``apply_clip``,
  ``duo_scaling``, ``max_chunk_memory``) or a keyword default of its clip search
  (``n_grid``, ``max_shrink``, ``n_sample_token``);
- which of quantbot's patches of GPTQModel's AWQ code (:mod:`runners.gptq.awq_speed`, all
  of them by default) apply, to measure what each saves: ``restore-gpu`` (the scale search's
  float32 master copy of the weights stays on the GPU instead of in host memory;
  bit-identical), ``feat-gpu`` (the captured activations are moved to the GPU once per layer,
  so the per-channel means, the in-place scaling and the clip search's inputs stay there
  instead of running on the CPU), ``clip-bmm`` (the clip search computes the same per-group
  products with batched matrix multiplies instead of materialising
  ``[rows x tokens x in_features]`` element-wise products), ``pack-vectorized`` (the AWQ
  layer's integer weights in row blocks instead of one input column at a time; bit-identical).

Everything runs in this one process, one variant after another (the bf16 baseline first, so
CUDA and cuBLAS are warm for all); each variant prints and records:

- ``quantize_s``: the wall time of ``quantize()`` (load + quantize + save, as the pipeline
  times it) and its ratio to GPTQ's;
- ``peak_vram``: ``torch.cuda.max_memory_allocated`` during it;
- quality: mean KL divergence (and PPL, same-top-1 rate) of the saved model, reloaded with
  GPTQModel's torch kernels, against the bf16 model's next-token distributions on the first
  ``--eval-chunks`` windows of the evaluation text (:func:`runners.hfmodel.evaluate.measure`),
  plus a hash of the quantized tensors, so a variant whose checkpoint is bit-identical to an
  earlier one says so (its quality *is* that one's);
- a breakdown of AWQ's time by GPTQModel method (CUDA-synchronised at each method's edges) and
  GPTQModel's own region timer.

**Random weights** (the stand-in) have no outlier channels, so KLD differences between variants
that change the search (``noclip``, clip settings) say less than on a trained model; a
bit-identical checkpoint is the proof that a pure speed change is free. Run it on a real model
with ``--model``.

The JSON file given by ``--out`` is rewritten after every step (a run cut short keeps what
finished); variants that would not finish inside ``--budget-s`` are skipped and say so.

    python bench/awq_probe.py --out /tmp/awq_probe.json                  # GPU, 1B stand-in
    python bench/awq_probe.py --shape 8b --layers 4 --out probe.json     # 8B layers, 4 of them
    python bench/awq_probe.py --cpu-smoke --out /tmp/smoke.json          # code paths, on a CPU
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import platform
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GIB = 2**30

# --------------------------------------------------------------------------------------------
# Variants


@dataclass(frozen=True)
class Variant:
    """One way to run the quantizer; everything not named is quantbot's current setting."""

    name: str
    method: str = "awq"
    #: QuantizeConfig fields merged over quantize_config_kwargs(...)
    config: dict[str, Any] = field(default_factory=dict)
    #: AWQProcessor attributes set after its constructor (apply_clip, duo_scaling, ...)
    processor: dict[str, Any] = field(default_factory=dict)
    #: keyword defaults of AWQProcessor._compute_best_clip (n_grid, max_shrink, n_sample_token)
    clip: dict[str, Any] = field(default_factory=dict)
    #: quantbot's AWQ patches (runners.gptq.awq_speed.PATCHES) to apply; None: quantbot's own
    #: choice (all of them, on GPTQModel 7.6.0)
    patches: tuple[str, ...] | None = None
    #: QUANTBOT_GPTQMODEL_DEFAULTS=1: GPTQModel's own batch (1) and chunked activations
    tool_defaults: bool = False
    #: what the change is expected to do to the checkpoint
    expect: str = "same weights"
    note: str = ""


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("gptq", "gptq", note="quantbot's GPTQ (4-bit, group 128, act-order, damp 0.01)"),
    Variant("awq", expect="equivalent (float rounding order only)",
            note="quantbot's AWQ now: 32 x 512 tokens per forward, "
                 "scale_search_chunked_activations=False, offload_to_disk=False on CUDA where "
                 "the model fits in RAM, all runners.gptq.awq_speed patches"),
    Variant("awq-unpatched", patches=(),
            note="quantbot's AWQ settings without the patches (GPTQModel's AWQ code)"),
    Variant("awq-loop-pack", patches=("clip-bmm", "feat-gpu", "restore-gpu"),
            expect="bit-identical",
            note="every patch but pack-vectorized: GPTQModel's per-column AWQ packer"),
    Variant("awq-restore-gpu", patches=("restore-gpu",), expect="bit-identical",
            note="only restore-gpu: the scale search's float32 weight copy stays on the GPU"),
    Variant("awq-clip-bmm", patches=("clip-bmm",), expect="equivalent (float rounding order only)",
            note="only clip-bmm: clip search with batched matmuls, not [rows x tokens x in]"),
    Variant("awq-feat-gpu", patches=("feat-gpu",), expect="equivalent (float rounding order only)",
            note="only feat-gpu: captured activations moved to the GPU once per layer"),
    Variant("awq-offload-on", config={"offload_to_disk": True}, expect="bit-identical",
            note="QuantizeConfig(offload_to_disk=True), GPTQModel's default: lazy "
                 "checkpoint-backed model, each finished module written to a temp folder"),
    Variant("gptq-offload-on", "gptq", config={"offload_to_disk": True},
            expect="bit-identical", note="GPTQ with offload_to_disk=True (ratio of like to like)"),
    Variant("awq-noclip", processor={"apply_clip": False}, expect="different search (quality)",
            note="AWQProcessor.apply_clip=False: no clip search at all"),
    # Not run unless named:
    Variant("awq-offload-off", config={"offload_to_disk": False}, expect="bit-identical",
            note="offload_to_disk=False whatever the model's size (the CPU too)"),
    Variant("gptq-offload-off", "gptq", config={"offload_to_disk": False},
            expect="bit-identical", note="GPTQ with offload_to_disk=False whatever the size"),
    Variant("awq-clip256", clip={"n_sample_token": 256}, expect="different search (quality)",
            note="clip search on 256 sampled tokens instead of 512"),
    Variant("awq-noduo", processor={"duo_scaling": False}, expect="different search (quality)",
            note="AWQProcessor.duo_scaling=False: scales from activations only (no time effect)"),
    Variant("awq-chunk4g", processor={"max_chunk_memory": 4 * GIB},
            expect="equivalent (float rounding order only)",
            note="max_chunk_memory 4 GiB (fewer loss chunks and .item() syncs)"),
    Variant("awq-chunked", config={"scale_search_chunked_activations": True},
            expect="equivalent (float rounding order only)",
            note="GPTQModel's default chunked scale-search activations, our batch"),
    Variant("awq-gptqmodel-defaults", tool_defaults=True,
            expect="equivalent (float rounding order only)",
            note="GPTQModel's defaults and code: batch 1, chunked activations, disk offload, "
                 "no patches (slow: minutes at 1B)"),
)}
#: In priority order: when --budget-s runs out, the last ones are skipped.
DEFAULT_VARIANTS = ("gptq", "awq", "awq-loop-pack", "awq-unpatched", "awq-clip-bmm",
                    "awq-restore-gpu",
                    "awq-feat-gpu", "awq-offload-on", "gptq-offload-on", "awq-noclip")


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


# --------------------------------------------------------------------------------------------
# Timing of AWQProcessor's methods

#: method -> (label, synchronise CUDA at its edges)
TIMED = {
    "_record_input_feature": ("capture hook (activation -> host)", True),
    "_layer_input_features": ("concat captured activations", True),
    "_quantize_layer": ("layer total (scale + clip + quant)", True),
    "_search_best_scale": ("scale search (x mean, reference fwd, grid)", True),
    "_compute_best_scale": ("  scale grid (20 x quantize, fwd, loss, restore)", True),
    "_search_best_clip": ("clip search", True),
    "apply_quant": ("apply_quant (pseudo-quantize, stage scales)", True),
    "pack_module": ("pack (finalizer threads, overlaps)", False),
}


class Timers:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def wrap(self, method: str, fn: Callable, sync: bool) -> Callable:
        def timed(*args, **kwargs):
            if sync:
                _sync()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if sync:
                    _sync()
                elapsed = time.perf_counter() - start
                with self.lock:
                    self.total[method] = self.total.get(method, 0.0) + elapsed
                    self.count[method] = self.count.get(method, 0) + 1

        return timed

    def summary(self) -> dict[str, dict[str, Any]]:
        return {m: {"label": TIMED[m][0], "s": round(self.total[m], 3), "calls": self.count[m]}
                for m in TIMED if m in self.total}



@contextlib.contextmanager
def applied(variant: Variant, timers: Timers | None) -> Iterator[dict[str, Any]]:
    """The variant's overrides, patch choice and timers in place; all undone on exit.

    Yields a dict that receives ``quantize_config``: the ``QuantizeConfig`` arguments the run
    used. quantbot's patches are installed by ``quantize()`` itself, on ``AWQProcessor``'s
    class, inside this context; so the processor overrides, clip defaults and timers go on each
    ``AWQProcessor`` instance, resolving the class's (patched or not) method at call time.
    """
    from gptqmodel.looper.awq_processor import AWQProcessor

    from runners.gptq import awq_speed
    from runners.gptq import quantize as rq

    swaps = awq_speed.AttributeSwaps()
    put = swaps.put
    used: dict[str, Any] = {}

    def late(self: Any, method: str) -> Callable:
        return lambda *a, **k: getattr(type(self), method)(self, *a, **k)

    env_saved = os.environ.get(rq.DEFAULTS_ENV)
    try:
        base_kwargs = rq.quantize_config_kwargs

        def quantize_config_kwargs(*args, **kwargs):
            used["quantize_config"] = {**base_kwargs(*args, **kwargs), **variant.config}
            return used["quantize_config"]

        put(rq, "quantize_config_kwargs", quantize_config_kwargs)
        if variant.patches is not None:
            put(awq_speed, "PATCHES", {n: awq_speed.PATCHES[n] for n in variant.patches})
        timed = timers is not None and variant.method == "awq"
        if variant.processor or variant.clip or timed:
            base_init = AWQProcessor.__init__

            def __init__(self, *args, **kwargs):
                base_init(self, *args, **kwargs)
                for key, value in variant.processor.items():
                    setattr(self, key, value)
                if variant.clip:
                    clip = late(self, "_compute_best_clip")
                    self._compute_best_clip = lambda w, feat, **kw: clip(w, feat,
                                                                         **{**variant.clip, **kw})
                if timed:
                    for method, (_label, sync) in TIMED.items():
                        inner = getattr(self, method) if method in vars(self) else late(self, method)
                        setattr(self, method, timers.wrap(method, inner, sync))

            put(AWQProcessor, "__init__", __init__)
        if variant.tool_defaults:
            os.environ[rq.DEFAULTS_ENV] = "1"
        else:
            os.environ.pop(rq.DEFAULTS_ENV, None)
        yield used
    finally:
        swaps.restore()
        if env_saved is None:
            os.environ.pop(rq.DEFAULTS_ENV, None)
        else:
            os.environ[rq.DEFAULTS_ENV] = env_saved

# --------------------------------------------------------------------------------------------
# The model


def _shape_config(shape: str) -> tuple[str, dict[str, Any], str]:
    from bench import standin

    base = standin.LLAMA_3_1_8B
    if shape == "8b":
        return "llama-3.1-8b", dict(base), "meta-llama/Llama-3.1-8B-Instruct"
    if shape == "1b":
        return "llama-3.2-1b", {
            **base, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
            "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
            "tie_word_embeddings": True,
            "rope_scaling": {**base["rope_scaling"], "factor": 32.0}}, "meta-llama/Llama-3.2-1B"
    if shape == "tiny":  # group 128 needs in_features >= 128: wider than standin's llama-tiny
        return "llama-tiny256", {
            **base, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
            "max_position_embeddings": 4096, "tie_word_embeddings": True,
            "rope_scaling": {**base["rope_scaling"], "original_max_position_embeddings": 512}}, \
            "Llama 3 (tiny, for smoke runs)"
    raise ValueError(f"unknown shape {shape!r}")


def stand_in(shape: str, layers: int | None, work: Path, device: str) -> tuple[Path, dict]:
    """A stand-in folder under ``work`` (reused when already written), and its description."""
    from bench import standin

    name, config, like = _shape_config(shape)
    if layers:
        config = {**config, "num_hidden_layers": layers}
        name = f"{name}-{layers}l"
    folder = work / f"standin-{name}"
    if (folder / "standin.json").is_file():
        return folder, json.loads((folder / "standin.json").read_text())
    base = standin.SPECS["llama-3.1-8b"]
    standin.SPECS[name] = standin.StandinSpec(
        name, base.model_type, base.vocab_file, base.template_file, config, like,
        f"awq_probe stand-in ({config['num_hidden_layers']} layers)", base.generation,
        base.add_bos)
    tree = standin.llama_cpp_tree()
    if not (tree / "models" / base.vocab_file).is_file():
        # Only the pinned llama.cpp source is needed (its vocab GGUFs), not a build.
        from runners import llamacpp

        tc = llamacpp.toolchain()
        llamacpp._ensure_source(tc, llamacpp._root(tc.version), tc.version)
        tree = tc.src_dir
    shutil.rmtree(folder, ignore_errors=True)
    info = standin.write_standin(name, folder, device=device, tree=tree,
                                 workers=8 if device.startswith("cuda") else 2)
    return folder, info

# --------------------------------------------------------------------------------------------
# Measurement


def weights_digest(folder: Path) -> str:
    """SHA-256 over the quantized layers' tensors (names and bytes, sorted by name)."""
    import torch
    from safetensors import safe_open

    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as fh:
            for key in sorted(k for k in fh.keys() if ".layers." in k):  # noqa: SIM118
                tensor = fh.get_tensor(key).contiguous()
                digest.update(key.encode())
                digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def measure_quantized(folder: Path, method: str, blocks: list[list[int]], baseline: Path,
                      key: str, device: str) -> dict[str, Any]:
    """KLD/PPL of a saved GPTQ/AWQ folder, loaded with GPTQModel's torch kernels (no JIT)."""
    import torch
    from gptqmodel import GPTQModel
    from gptqmodel.utils.backend import BACKEND

    from runners.hfmodel import evaluate

    backend = BACKEND.AWQ_TORCH if method == "awq" else BACKEND.GPTQ_TORCH
    start = time.perf_counter()
    gm = GPTQModel.load(str(folder), device=device, backend=backend)
    try:
        m = evaluate.measure(gm.model, blocks, baseline, key)
    finally:
        del gm
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {**{k: v for k, v in asdict(m.quality).items() if v is not None},
            "scored_tokens": m.n_scored, "dtype": m.dtype,
            "eval_s": round(time.perf_counter() - start, 1)}


def measure_baseline(model: Path, blocks: list[list[int]], baseline: Path, key: str,
                     device: str) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from runners.hfmodel import evaluate

    start = time.perf_counter()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    hf = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, device_map=device)
    hf.eval()
    try:
        m = evaluate.measure(hf, blocks, baseline, key, write_baseline=True)
    finally:
        del hf
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {"ppl": m.quality.ppl, "scored_tokens": m.n_scored, "dtype": m.dtype,
            "eval_s": round(time.perf_counter() - start, 1)}


def prewarm_gptq_cuda() -> dict[str, Any]:
    """Build/load GPTQModel's fused GPTQ CUDA block update outside the timed runs (it is
    JIT-compiled once per machine, ~40 s on an H100, then loaded from the extension cache)."""
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA"}
    if os.environ.get("GPTQMODEL_DISABLE_GPTQ_CUDA", "") not in ("", "0"):
        return {"skipped": "GPTQMODEL_DISABLE_GPTQ_CUDA is set"}
    start = time.perf_counter()
    try:
        from gptqmodel.quantization.gptq_cuda import block_update_available

        ok = bool(block_update_available())
    except Exception as exc:  # the probe still runs; GPTQ then uses the torch path
        return {"error": f"{type(exc).__name__}: {exc}"[:300],
                "s": round(time.perf_counter() - start, 1)}
    return {"available": ok, "s": round(time.perf_counter() - start, 1)}


def run_variant(variant: Variant, model: Path, calibration: Any, work: Path,
                device: str) -> tuple[dict[str, Any], Path]:
    import torch

    from runners.gptq import awq_speed
    from runners.gptq import quantize as rq
    from runners.gptq.types import QuantSpec

    out_dir = work / f"q-{variant.name}"
    side = work / "logs"
    shutil.rmtree(out_dir, ignore_errors=True)
    spec = QuantSpec.gptq() if variant.method == "gptq" else QuantSpec.awq()
    timers = Timers()
    awq_speed.STATS.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    with applied(variant, timers) as used:
        start = time.perf_counter()
        outcome = rq.quantize(model, spec, out_dir, calibration, device=device, batch_size=1,
                              side_dir=side)
        wall = time.perf_counter() - start
    regions_file = side / f"{out_dir.name}.regions.json"
    regions = json.loads(regions_file.read_text()) if regions_file.is_file() else {}
    result = {
        "method": variant.method, "quantize_s": outcome.seconds, "wall_s": round(wall, 2),
        "peak_vram": outcome.peak_vram_bytes, "peak_vram_gib": round(outcome.peak_vram_bytes / GIB, 2),
        "peak_rss_gib": round(outcome.peak_rss_bytes / GIB, 2), "bytes": outcome.size_bytes,
        "weights": weights_digest(out_dir), "breakdown": timers.summary(),
        "patch_stats": dict(awq_speed.STATS),
        "offload_to_disk": used.get("quantize_config", {}).get("offload_to_disk", True),
        "regions_s": regions, "expect": variant.expect, "note": variant.note,
        "config": variant.config, "processor": variant.processor, "clip": variant.clip,
        "patches": "quantbot's" if variant.patches is None else list(variant.patches),
        "tool_defaults": variant.tool_defaults,
    }
    return result, out_dir  # the caller measures, then deletes it unless --keep

# --------------------------------------------------------------------------------------------
# Report


def _ratio_base(name: str, results: dict[str, dict[str, Any]]) -> str | None:
    """The GPTQ run an AWQ variant is compared with: like for like on the offload_to_disk the
    runs used (quantbot's choice or the variant's), else plain ``gptq``."""
    offload = results[name].get("offload_to_disk")
    like = [n for n, r in results.items() if r.get("method") == "gptq" and "quantize_s" in r
            and r.get("offload_to_disk") == offload]
    return like[0] if like else ("gptq" if "quantize_s" in results.get("gptq", {}) else None)


def summarize(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    first_of: dict[str, str] = {}
    for name, r in results.items():
        if "quantize_s" not in r:
            rows.append({"variant": name, **{k: r[k] for k in ("error", "skipped") if k in r}})
            continue
        base = _ratio_base(name, results)
        row = {"variant": name, "quantize_s": r["quantize_s"],
               "peak_vram_gib": r["peak_vram_gib"], "kld_mean": r.get("quality", {}).get("kld_mean"),
               "same_top_p": r.get("quality", {}).get("same_top_p")}
        if base and r["method"] == "awq":
            row["vs_gptq"] = round(r["quantize_s"] / results[base]["quantize_s"], 2)
            row["gptq_run"] = base
        if r["method"] == "awq" and "quantize_s" in results.get("awq", {}) and name != "awq":
            row["saved_vs_awq_s"] = round(results["awq"]["quantize_s"] - r["quantize_s"], 1)
        key = f"{r['method']}:{r['weights']}"
        if key in first_of:
            row["identical_to"] = first_of[key]
        else:
            first_of[key] = name
        rows.append(row)
    return rows


def print_row(name: str, r: dict[str, Any], results: dict[str, dict[str, Any]]) -> None:
    if "quantize_s" not in r:
        print(f"{name:24} {r.get('error') or r.get('skipped')}", flush=True)
        return
    base = _ratio_base(name, results)
    ratio = (f"{r['quantize_s'] / results[base]['quantize_s']:5.2f}x {base}"
             if base and r["method"] == "awq" else "")
    q = r.get("quality", {})
    kld = f"KLD {q['kld_mean']:.5f}" if "kld_mean" in q else q.get("skipped", "")
    print(f"{name:24} {r['quantize_s']:8.1f} s {ratio:20} VRAM {r['peak_vram_gib']:6.2f} GiB  "
          f"{kld}  weights {r['weights']}", flush=True)
    for info in r.get("breakdown", {}).values():
        print(f"    {info['label']:52} {info['s']:8.2f} s  ({info['calls']} calls)", flush=True)
    if r.get("patch_stats"):
        print(f"    patches: {r['patch_stats']}", flush=True)
    if r.get("regions_s"):
        print("    GPTQModel regions: " + ", ".join(f"{k} {v:.1f}" for k, v in r["regions_s"].items()),
              flush=True)


def write(out: Path, report: dict[str, Any]) -> None:
    report["summary"] = summarize(report["variants"])
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(json.dumps(report, indent=1, default=str) + "\n")
    tmp.replace(out)

# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="variants:\n" + "\n".join(
                                     f"  {v.name:24} {v.note}" for v in VARIANTS.values()))
    ap.add_argument("--out", type=Path, required=True, help="JSON results (rewritten per step)")
    ap.add_argument("--model", type=Path, help="a Hugging Face model folder (default: stand-in)")
    ap.add_argument("--shape", choices=("1b", "8b", "tiny"), default="1b",
                    help="stand-in shape: Llama-3.2-1B, Llama-3.1-8B, or tiny (smoke)")
    ap.add_argument("--layers", type=int, default=None, help="cut the stand-in to this many layers")
    ap.add_argument("--work", type=Path, default=Path("/tmp/awq-probe"))
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help="comma-separated, run in this order (see the list below)")
    ap.add_argument("--calib-len", type=int, default=512)
    ap.add_argument("--calib-samples", type=int, default=128)
    ap.add_argument("--eval-ctx", type=int, default=512)
    ap.add_argument("--eval-chunks", type=int, default=8,
                    help="evaluation windows (each scores ctx/2 tokens)")
    ap.add_argument("--budget-s", type=float, default=450.0,
                    help="skip variants that would end after this many seconds of the run")
    ap.add_argument("--device", default="auto", help="auto, cuda:0 or cpu")
    ap.add_argument("--no-quality", action="store_true", help="skip the KLD measurements")
    ap.add_argument("--no-prewarm", action="store_true",
                    help="leave the GPTQ CUDA extension's first build inside GPTQ's timing")
    ap.add_argument("--keep", action="store_true", help="keep the quantized folders")
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="CPU, tiny stand-in, tiny calibration and evaluation: the code paths only")
    args = ap.parse_args(argv)
    if args.cpu_smoke:
        args.device = "cpu"
        args.shape = "tiny" if args.model is None else args.shape
        args.calib_len, args.calib_samples = 128, 4
        args.eval_ctx, args.eval_chunks = 128, 2
        args.budget_s = max(args.budget_s, 3600.0)
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")

    t0 = time.perf_counter()
    from runners.gptq.quantize import prepare_env

    os.environ.update(prepare_env())
    import torch

    if args.device == "auto":
        args.device = "cuda:0" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("no CUDA device here; use --cpu-smoke or --device cpu")
    import gptqmodel
    from transformers import AutoTokenizer

    from runners.hfmodel import evaluate
    from runners.hfmodel.calibration import calibration_set, evaluation_blocks

    args.work.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cuda = args.device.startswith("cuda")
    report: dict[str, Any] = {
        "probe": "bench/awq_probe.py", "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "gptqmodel": gptqmodel.__version__, "torch": torch.__version__,
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if cuda else None, "device": args.device,
        "env": {k: os.environ.get(k) for k in (
            "GPTQMODEL_DISABLE_GPTQ_CUDA", "GPTQMODEL_CPU_WORKERS", "PYTORCH_ALLOC_CONF",
            "GPTQMODEL_OFFLINE", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")},
        "argv": sys.argv[1:], "variants": {}, "notes": [
            "quantize_s: runners.gptq.quantize.quantize() wall time (GPTQModel load + quantize + "
            "save), in this one process, variants one after another",
            "breakdown: AWQProcessor methods, CUDA-synchronised at their edges; nested rows "
            "(indented) are inside the row above; pack runs in finalizer threads and overlaps",
            "identical_to: the quantized tensors are bit-identical to that variant's",
        ]}

    if args.model:
        model = args.model.resolve()
        report["model"] = {"path": str(model), "standin": False}
    else:
        s = time.perf_counter()
        model, info = stand_in(args.shape, args.layers, args.work, "cuda" if cuda else "cpu")
        report["model"] = {"path": str(model), "standin": True, "shape": args.shape,
                           "n_params": info.get("n_params"), "write_s": round(time.perf_counter() - s, 1),
                           "warning": "random weights: KLD compares variants with each other only"}
        report["notes"].append("stand-in: random weights, so KLD differences between variants "
                               "that change the search say less than on a trained model")
    cfg = json.loads((model / "config.json").read_text())
    report["model"].update({k: cfg.get(k) for k in (
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "vocab_size", "tie_word_embeddings")})
    print(f"model: {model} ({cfg.get('num_hidden_layers')} layers, hidden {cfg.get('hidden_size')})",
          flush=True)

    tokenizer = AutoTokenizer.from_pretrained(model)
    calibration = calibration_set(tokenizer, args.calib_len, args.calib_samples)
    report["calibration"] = {"samples": len(calibration.blocks), "len": args.calib_len,
                             "tokens": calibration.n_tokens}
    blocks, _labels, eval_text = evaluation_blocks(tokenizer, args.eval_ctx, args.eval_chunks)
    baseline_dir = args.work / "baseline"
    key = evaluate.baseline_key(blocks, f"{model}:{cfg.get('num_hidden_layers')}")
    report["evaluation"] = {"windows": len(blocks), "ctx": args.eval_ctx, "text": eval_text.name}
    if not args.no_quality:
        report["evaluation"]["baseline"] = measure_baseline(model, blocks, baseline_dir, key,
                                                            args.device)
    if not args.no_prewarm and "gptq" in {VARIANTS[n].method for n in names}:
        report["gptq_cuda_prewarm"] = prewarm_gptq_cuda()
    report["setup_s"] = round(time.perf_counter() - t0, 1)
    write(args.out, report)
    print(f"setup {report['setup_s']} s; calibration {len(calibration.blocks)} x "
          f"{args.calib_len} tokens; {len(blocks)} evaluation windows", flush=True)

    results = report["variants"]
    seen: dict[str, str] = {}  # method:weights -> first variant (its quality is shared)
    eval_s = 0.0
    for name in names:
        variant = VARIANTS[name]
        elapsed = time.perf_counter() - t0
        same_method = [r["quantize_s"] for r in results.values()
                       if r.get("method") == variant.method and "quantize_s" in r]
        estimate = (max(same_method) if same_method else 0.0) + eval_s
        if elapsed + estimate > args.budget_s:
            results[name] = {"method": variant.method,
                             "skipped": f"budget: {elapsed:.0f} s gone, ~{estimate:.0f} s "
                                        f"needed, --budget-s {args.budget_s:.0f}"}
            print_row(name, results[name], results)
            write(args.out, report)
            continue
        print(f"--- {name}: {variant.note}", flush=True)
        out_dir = args.work / f"q-{name}"
        try:
            result, out_dir = run_variant(variant, model, calibration, args.work, args.device)
            results[name] = result
            tag = f"{variant.method}:{result['weights']}"
            if args.no_quality:
                result["quality"] = {"skipped": "--no-quality"}
            elif tag in seen and "kld_mean" in results[seen[tag]].get("quality", {}):
                result["quality"] = {**results[seen[tag]]["quality"], "from": seen[tag]}
            else:
                result["quality"] = measure_quantized(out_dir, variant.method, blocks,
                                                      baseline_dir, key, args.device)
                eval_s = max(eval_s, result["quality"]["eval_s"])
            seen.setdefault(tag, name)
        except Exception as exc:
            results[name] = {"method": variant.method,
                             "error": f"{type(exc).__name__}: {exc}"[:2000],
                             "traceback": traceback.format_exc()[-4000:]}
        finally:
            if not args.keep:
                shutil.rmtree(out_dir, ignore_errors=True)
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        print_row(name, results[name], results)
        report["elapsed_s"] = round(time.perf_counter() - t0, 1)
        write(args.out, report)

    report["elapsed_s"] = round(time.perf_counter() - t0, 1)
    write(args.out, report)
    print(f"\n{'variant':24} {'quant s':>8} {'vs GPTQ':>8} {'VRAM GiB':>9} {'KLD':>10} same as",
          flush=True)
    for row in report["summary"]:
        if "quantize_s" not in row:
            print(f"{row['variant']:24} {row.get('error') or row.get('skipped')}")
            continue
        kld = f"{row['kld_mean']:.5f}" if row.get("kld_mean") is not None else "-"
        print(f"{row['variant']:24} {row['quantize_s']:8.1f} {row.get('vs_gptq', ''):>8} "
              f"{row['peak_vram_gib']:9.2f} {kld:>10} {row.get('identical_to', '')}")
    print(f"\nresults: {args.out} ({report['elapsed_s']} s)")
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
