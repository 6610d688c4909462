"""Quantize a Hugging Face model folder to GPTQ or AWQ with GPTQModel.

GPTQModel (ModelCloud) writes the classic checkpoints transformers loads: ``quant_method: gptq``
(int32-packed ``qweight``/``qzeros``/``scales``/``g_idx``) and ``quant_method: awq`` with
``version: gemm``. The folder it leaves holds ``model.safetensors`` (sharded past
``max_shard_size``), ``config.json`` with ``quantization_config``, ``quantize_config.json``,
the tokenizer files and the generation config.

:func:`quantize` runs in the calling process; the pipeline runs it as
``python -m runners.gptq.quantize REQUEST.json RESULT.json`` (:mod:`runners.hfmodel.pipeline`) so
that each variant starts clean and its peak resident memory is the process's own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from runners.errors import QuantbotError
from runners.gptq import awq_speed
from runners.gptq.types import QuantSpec
from runners.hfmodel.folder import (
    copy_tokenizer_files,
    new_output_folder,
    quantization_config,
    quantize_device,
    require_files,
)
from runners.hfmodel.pipeline import serve_quantizer
from runners.hfmodel.types import CalibrationSet, QuantOutcome

log = logging.getLogger(__name__)

#: GPTQModel's per-module loss log: kept in the work folder, not published.
SIDE_FILES = ("quant_log.csv",)

#: Calibration tokens per forward pass on CUDA when the caller leaves the batch at 1.
#:
#: Why (issue 10, AWQ 241 s against GPTQ 21 s on a 1.24 B model): GPTQModel's AWQ scale search
#: runs, for every scaling group of every layer (Llama: q/k/v, gate/up, down), one reference
#: forward and 20 candidate forwards (``n_grid = 20``, fixed in 7.6) over the whole calibration
#: set, split into micro-batches of ``batch_size`` samples. At batch 1 that is 21 x 128 = 2,688
#: forwards of one 512-token sample per group, about 8,000 per layer, each too small to fill
#: the GPU, each followed by a ``.item()`` synchronisation for its loss: launch- and
#: sync-bound. GPTQ forwards the calibration set through a layer once. Micro-batches of 16k
#: tokens (32 samples of 512) cut AWQ's forwards 32-fold; the activations of one such forward
#: of an 8B (70B) layer are under 2 (4) GB, far inside a GPU runner's memory. Micro-batching
#: changes only the order of float additions, not the search (the loss is a mean over all
#: tokens either way), so quality is unchanged. GPTQ gets the same batch (its Hessian sums the
#: same tokens).
#:
#: Measured with these settings on one H100 (bench/full_set.py, the Llama-3.1-8B-shaped
#: stand-in, 35 x 512 calibration tokens): GPTQ 93.6 s, AWQ 395.6 s, so AWQ was 4.2x GPTQ and
#: the 2x goal not reached. What remained is fixed inside GPTQModel 7.6 (not settable), so
#: quantbot patches GPTQModel's AWQ code on exactly GPTQModel 7.6.0
#: (:mod:`runners.gptq.awq_speed`; any other version runs unpatched with a warning):
#:
#: - ``clip-bmm``: the clip search materialised [256 x 512 x in_features] products for each of
#:   10 grid points per 256 output rows (about 4.5 TB of memory traffic per 8B layer, an
#:   estimate from the code); ours computes the same products as batched matmuls.
#: - ``restore-gpu``: per scaling group and candidate scale, the weights were restored from a
#:   float32 host copy (about 16 GB over PCIe per 8B layer); the copy now stays on the GPU.
#: - ``feat-gpu``: the captured activations are moved to the layer's GPU once, not used from
#:   host memory (a no-op on the CPU).
#: - ``pack-vectorized``: the AWQ layer's packer computed its integer weights one input column
#:   at a time on the CPU (2,121 thread-seconds for the 8B); now in row blocks, bit-identical.
#:
#: With all four, the same H100 run (bench/README.md, third run) gave GPTQ 61.1 s and AWQ
#: 117.0 s (1.92x), both beside the GGUF quantizer, at the second run's KLD.
#:
#: And, on CUDA, ``offload_to_disk=False`` for GPTQ and AWQ when the source's weights fit in
#: :data:`OFFLOAD_OFF_RAM_FRACTION` of the machine's memory (:func:`offload_fits`). GPTQModel's
#: default (True) builds the model as a meta-device shell backed by the checkpoint and writes
#: every finished module to a temporary folder, read back at save; off, it loads the whole
#: model into CPU RAM at once (its loader.py), so a 70B model (141 GB in bf16) keeps the
#: default on a 128 GiB runner and an 8B one (16 GB) does not. The weights are the same either
#: way (bench/awq_probe.py on the CPU: bit-identical checkpoints for GPTQ and for AWQ).
#:
#: On the CPU (bench/awq_probe.py, 2 cores, the pydocs-llama-mini demo model): AWQ 96.7 s
#: unpatched against 33.1 s with offload off and the first three patches, KLD 0.000284 against
#: 0.000281. ``QUANTBOT_GPTQMODEL_DEFAULTS=1`` (:data:`DEFAULTS_ENV`) runs GPTQModel's own
#: settings and code instead, for comparison.
CUDA_TOKENS_PER_FORWARD = 16384
#: Set to 1 to run GPTQModel's own defaults instead (batch as given, chunked AWQ activations,
#: disk offload, no AWQ patches): what ``bench/awq_probe.py`` compares against.
DEFAULTS_ENV = "QUANTBOT_GPTQMODEL_DEFAULTS"
#: GPTQModel keeps the whole model in CPU RAM with ``offload_to_disk=False``: allowed where the
#: source's weight files take at most this share of the machine's memory, leaving the rest for
#: the worker's own use (CUDA context, captured inputs, packing, save) and anything beside it.
OFFLOAD_OFF_RAM_FRACTION = 0.5


def prepare_env(env: dict[str, str] | None = None, cpus: int | None = None) -> dict[str, str]:
    """Environment GPTQModel needs before import (pure: returns the variables to set).

    GPTQModel 7.6 sizes its CPU worker pool as ``(cores + 1) // 2`` but always asks for a
    2-worker model-loader pool inside it, so on 1-3 cores ``quantize()`` dies with "Virtual pool
    'model_loader:cpu' requests 2 workers but parent 'cpu' only has 1". Nothing may reach the
    network (``GPTQMODEL_OFFLINE``). ``GPTQMODEL_DISABLE_GPTQ_CUDA=1`` (set it yourself) skips
    the fused CUDA block update, a JIT-compiled extension (~40 s per fresh process on an H100);
    the PyTorch fallback gives the same weights and is slower (not measured like for like).
    """
    env = dict(os.environ if env is None else env)
    cpus = cpus or os.cpu_count() or 1
    out = {}
    if "GPTQMODEL_CPU_WORKERS" not in env:
        out["GPTQMODEL_CPU_WORKERS"] = str(max(2, (cpus + 1) // 2))
    out.setdefault("GPTQMODEL_OFFLINE", env.get("GPTQMODEL_OFFLINE", "1"))
    return out


def forward_batch(requested: int, on_cuda: bool, seq_len: int) -> int:
    """Calibration samples per forward (pure): ``requested`` unless it is the default 1 on CUDA,
    where :data:`CUDA_TOKENS_PER_FORWARD` decides."""
    if on_cuda and requested <= 1 and seq_len > 0:
        return max(1, CUDA_TOKENS_PER_FORWARD // seq_len)
    return max(1, requested)


def weights_bytes(source: Path) -> int:
    """Bytes of the model's weight files in ``source`` (an upper bound on its bf16 size)."""
    return sum(p.stat().st_size for pattern in ("*.safetensors", "*.bin", "*.pt")
               for p in source.glob(pattern) if p.is_file())


def machine_ram_bytes() -> int | None:
    """This machine's memory as the process may use it: the smaller of the physical memory and
    the cgroup limit; None where neither can be read. An under-count only keeps disk offload."""
    found = []
    with contextlib.suppress(ValueError, OSError, AttributeError):
        found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(ValueError, OSError):
            found.append(int(Path(limit).read_text().strip()))  # "max": no limit, skipped
    found = [n for n in found if n > 0]
    return min(found) if found else None


def offload_fits(weights: int | None, ram: int | None) -> bool:
    """Whether GPTQModel may hold the whole model in RAM (pure): both sizes known and the
    weights within :data:`OFFLOAD_OFF_RAM_FRACTION` of ``ram``."""
    return bool(weights and ram and weights <= OFFLOAD_OFF_RAM_FRACTION * ram)


def quantize_config_kwargs(spec: QuantSpec, on_cuda: bool, tool_defaults: bool = False,
                           weights: int | None = None, ram: int | None = None) -> dict[str, Any]:
    """Arguments for ``gptqmodel.QuantizeConfig`` (pure; enum values as strings).

    ``weights`` and ``ram`` (bytes; :func:`weights_bytes`, :func:`machine_ram_bytes`) decide
    ``offload_to_disk`` on CUDA (:func:`offload_fits`); unknown, GPTQModel's default stays.
    """
    common: dict[str, Any] = {
        "bits": spec.bits,
        "group_size": spec.group_size,
        "sym": spec.sym,
        # CPU: the legacy packer; the default block packer JIT-compiles a C++ extension first
        # (76 s on 2 cores). CUDA: pack on the GPU.
        "pack_impl": "gpu" if on_cuda else "original",
    }
    if on_cuda and not tool_defaults and offload_fits(weights, ram):
        # Same weights, no per-module writes to a temporary folder and back (see the comment
        # above CUDA_TOKENS_PER_FORWARD); the CPU keeps GPTQModel's default.
        common["offload_to_disk"] = False
    if spec.method == "gptq":
        return {**common, "method": "gptq", "format": "gptq", "desc_act": spec.desc_act,
                "damp_percent": spec.damp_percent}
    # AWQ on CUDA: keep the scale search's reference activations on the GPU
    # (scale_search_chunked_activations=False). GPTQModel 7.6's default streams them to host
    # memory after the reference forward and copies every chunk back for each of the 20
    # candidate scales: 20 x 0.5 GB per scaling group of an 8B layer through PCIe, to save
    # 0.5 GB (1 GB at 70B) of GPU memory. On the CPU there is no such copy; the flag stays.
    return {**common, "method": "awq", "format": "gemm",
            **({"scale_search_chunked_activations": False}
               if on_cuda and not tool_defaults else {})}


def scrub_config(config: dict[str, Any]) -> dict[str, Any]:
    """Drop machine-local paths GPTQModel records in ``meta`` (pure)."""
    out = json.loads(json.dumps(config))
    for holder in (out, out.get("quantization_config") or {}):
        meta = holder.get("meta")
        if isinstance(meta, dict):
            meta.pop("offload_to_disk_path", None)
    return out


def verify_folder(folder: Path, spec: QuantSpec) -> list[str]:
    """The published files of a finished folder; :class:`QuantbotError` if one is missing."""
    qc = quantization_config(folder)
    if qc.get("quant_method") != spec.method or qc.get("bits") != spec.bits:
        raise QuantbotError(
            f"{folder}/config.json says quant_method={qc.get('quant_method')!r} "
            f"bits={qc.get('bits')!r}, expected {spec.method!r} {spec.bits}",
            "quantize this variant again into an empty folder")
    if spec.method == "awq" and qc.get("version") != "gemm":
        raise QuantbotError(f"AWQ folder {folder} is not in the GEMM layout",
                            "quantize with format gemm")
    return require_files(folder, {"quantize_config.json": (folder / "quantize_config.json").is_file()})


def _finish_folder(source: Path, out_dir: Path, side_dir: Path) -> None:
    copy_tokenizer_files(source, out_dir)
    for name in SIDE_FILES:
        if (out_dir / name).is_file():
            side_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(out_dir / name, side_dir / f"{out_dir.name}.{name}")
    for name in ("config.json", "quantize_config.json"):
        path = out_dir / name
        if path.is_file():
            path.write_text(json.dumps(scrub_config(json.loads(path.read_text())), indent=2) + "\n")


def quantize(source: Path, spec: QuantSpec, out_dir: Path, calibration: CalibrationSet,
             device: str = "auto", dtype: str = "auto", batch_size: int = 1,
             max_shard_size: str = "4GB", side_dir: Path | None = None) -> QuantOutcome:
    """Quantize ``source`` into ``out_dir`` (created; must not hold a finished variant).

    Side files (GPTQModel's per-module log, region timings) go to ``side_dir``, never into the
    published folder; by default a ``logs`` folder beside ``out_dir``.
    """
    side_dir = side_dir or out_dir.parent / "logs"
    os.environ.update(prepare_env())
    import torch

    try:
        from gptqmodel import GPTQModel, QuantizeConfig
        from gptqmodel import __version__ as gptqmodel_version
        from gptqmodel.utils.backend import BACKEND
    except ImportError as exc:
        raise QuantbotError(f"GPTQModel is not importable ({exc})",
                            "install quantbot's gpu extra: pip install -e '.[gpu]'") from exc

    qdevice = quantize_device(device)
    on_cuda = qdevice != "cpu"
    new_output_folder(out_dir)
    tool_defaults = os.environ.get(DEFAULTS_ENV) == "1"
    kwargs = quantize_config_kwargs(spec, on_cuda, tool_defaults, weights_bytes(source),
                                    machine_ram_bytes())
    config = QuantizeConfig(**kwargs)
    patches = awq_speed.patches_for(spec.method, gptqmodel_version, tool_defaults)
    load_kwargs: dict[str, Any] = {"device": qdevice}
    if dtype != "auto":
        load_kwargs["dtype"] = getattr(torch, dtype)
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    log.info("quantizing %s -> %s (%s) on %s", source, out_dir, spec.name, qdevice)
    start = time.perf_counter()
    model = GPTQModel.load(str(source), config, **load_kwargs)
    # AWQ: validate/pack with the portable torch kernel; the GEMM one JIT-compiles a CUDA
    # extension first. The checkpoint layout (version: gemm) is the same.
    backend = BACKEND.AWQ_TORCH if spec.method == "awq" else BACKEND.AUTO
    seq_len = max((len(b) for b in calibration.blocks), default=0)
    batch = batch_size if tool_defaults else forward_batch(batch_size, on_cuda, seq_len)
    log.info("calibration: %d samples, %d per forward; offload_to_disk %s; patches: %s",
             len(calibration.blocks), batch, kwargs.get("offload_to_disk", "default"),
             ", ".join(patches) or "none")
    with awq_speed.patched(patches):
        model.quantize(calibration.as_samples(), batch_size=batch, backend=backend)
    regions = {}
    timer = getattr(model, "quant_region_timer", None)
    for name, stat in (getattr(timer, "_stats", None) or {}).items():  # best effort: private
        if stat.get("count"):
            regions[name] = round(float(stat["total"]), 3)
    model.save(str(out_dir), max_shard_size=max_shard_size)
    seconds = time.perf_counter() - start
    peak_vram = int(torch.cuda.max_memory_allocated()) if on_cuda else 0
    del model
    _finish_folder(source, out_dir, side_dir)
    files = verify_folder(out_dir, spec)
    side_dir.mkdir(parents=True, exist_ok=True)
    (side_dir / f"{out_dir.name}.regions.json").write_text(json.dumps(regions))
    return QuantOutcome(
        variant=spec.name, params=spec.params(), folder=out_dir, seconds=round(seconds, 3),
        peak_vram_bytes=peak_vram,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        calibration_tokens=calibration.n_tokens, files=files,
        size_bytes=sum((out_dir / f).stat().st_size for f in files),
        tool_version=f"gptqmodel {gptqmodel_version}")


def _make(req: dict[str, Any]) -> QuantOutcome:
    return quantize(Path(req["source"]), QuantSpec(**req["variant"]), Path(req["out_dir"]),
                    CalibrationSet(**req["calibration"]), device=req["device"],
                    dtype=req["dtype"], batch_size=req["batch_size"],
                    side_dir=Path(req["side_dir"]))


def main(argv: list[str] | None = None) -> int:
    return serve_quantizer("runners.gptq.quantize", _make, argv)


if __name__ == "__main__":
    sys.exit(main())
