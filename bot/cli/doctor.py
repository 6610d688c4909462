"""``quantbot doctor``: what is installed and where; fails clearly when a runner lacks something."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from dataclasses import dataclass

import click

from bot.methods import METHODS, Method, method
from runners import sandbox
from runners.llamacpp import ensure_toolchain, toolchain
from runners.paths import cache_dir
from runners.support.registry import default_registry


@dataclass(frozen=True)
class Finding:
    """One line of the report; ``problem`` set when it blocks a required capability."""

    name: str
    value: str
    problem: str | None = None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _packages(names: tuple[str, ...], needed_for: str, required: bool) -> list[Finding]:
    findings = []
    for dist in names:
        version = _version(dist)
        problem = None
        if version is None and required:
            problem = f"{dist} is missing; fix: pip install -e '.{f'[{needed_for}]' if needed_for else ''}'"
        findings.append(Finding(dist, version or "not installed", problem))
    return findings


def _gpu(required: bool) -> Finding:
    try:
        import torch
    except ImportError:
        return Finding("gpu", "torch not installed",
                       "torch is missing; fix: pip install torch" if required else None)
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        free, total = torch.cuda.mem_get_info(0)
        return Finding("gpu", f"{name}, {free / 2**30:.0f} of {total / 2**30:.0f} GiB free")
    return Finding("gpu", "none (CUDA not available)",
                   "no CUDA GPU visible; fix: run GPU jobs on a [self-hosted, gpu] runner"
                   if required else None)


def _method(m: Method, required: bool) -> Finding:
    missing = m.missing()
    known = support_counts().get(m.support, [])
    value = (f"ready ({len(known)} architectures or model types in the {m.support} registry)"
             if not missing
             else f"needs {', '.join(missing)}")
    return Finding(f"method {m.name}", value,
                   f"{m.label} needs {', '.join(missing)}; fix: pip install -e '.[{m.extra}]'"
                   if missing and required else None)


def support_counts() -> dict[str, list[str]]:
    """Architectures each tool's registry takes (the snapshot in runners/support/)."""
    registry = default_registry()
    return {"converter": sorted(registry.text_architectures),
            "gptqmodel": sorted(registry.gptqmodel_types),
            "transformers": sorted(registry.causal_lm) + sorted(registry.image_text_to_text),
            "mlx": sorted(registry.mlx_types)}


def _sandbox(required: bool) -> Finding:
    """Whether the make step's sandbox (:mod:`runners.sandbox`) runs on this machine."""
    value, problem = sandbox.describe()
    return Finding("sandbox", value, problem if required else None)


def collect(require: tuple[str, ...], min_free_gb: float, build: bool,
            isolation: str = "none") -> list[Finding]:
    """Everything ``doctor`` reports, with problems for what the ``require``d methods and the
    ``isolation`` need."""
    wanted = [method(name) for name in require]
    need_gguf = any(m.support == "converter" for m in wanted)
    need_gpu = any(m.runner == "gpu" for m in wanted)
    findings = [Finding("python", sys.version.split()[0]), Finding("cache", str(cache_dir()))]
    findings += _packages(("quantbot", "huggingface-hub", "PyGithub"), "", True)
    findings += _packages(("torch", "transformers", "gguf", "llama-cpp-python", "gptqmodel",
                           "bitsandbytes", "compressed-tensors", "mlx", "mlx-lm"), "", False)
    findings += [_method(m, m in wanted) for m in METHODS.values()]
    tc = ensure_toolchain() if build else toolchain()
    missing = tc.missing()
    findings.append(Finding(
        "llama.cpp", f"{tc.version} at {tc.bin_dir}" if not missing else "not built",
        "llama.cpp tools not built; fix: quantbot doctor --build (needs cmake, g++)"
        if missing and need_gguf else None))
    for tool in ("cmake", "c++"):
        path = shutil.which(tool)
        findings.append(Finding(tool, path or "not found",
                                f"{tool} not found; fix: apt-get install cmake g++"
                                if path is None and need_gguf and missing else None))
    findings.append(_gpu(need_gpu))
    findings.append(_sandbox(isolation == sandbox.BWRAP))
    free_gb = shutil.disk_usage(cache_dir()).free / 1e9
    findings.append(Finding("disk free", f"{free_gb:.1f} GB in the cache's file system",
                            f"only {free_gb:.1f} GB free, {min_free_gb:g} GB required; fix: free "
                            "space or set QUANTBOT_CACHE to a larger disk"
                            if free_gb < min_free_gb else None))
    return findings


@click.command("doctor")
@click.option("--method", "require", type=click.Choice(list(METHODS)), multiple=True,
              help="Fail unless this method's needs (packages, tools, GPU) are met (repeatable).")
@click.option("--min-free-gb", type=float, default=0.0, show_default=True,
              help="Fail with less free disk than this in the cache's file system.")
@click.option("--build", is_flag=True, help="Build the llama.cpp tools now if they are missing.")
@click.option("--isolation", type=click.Choice(sandbox.ISOLATIONS), default="none",
              show_default=True,
              help="bwrap: fail unless the make step's sandbox runs here (self-hosted runners).")
def command(require: tuple[str, ...], min_free_gb: float, build: bool, isolation: str) -> None:
    """Say what is installed and where; exit 1 if a required tool, GPU, disk space or the
    sandbox is missing."""
    findings = collect(require, min_free_gb, build, isolation)
    width = max(len(f.name) for f in findings)
    for f in findings:
        click.echo(f"{f.name:<{width}}  {f.value}")
    problems = [f.problem for f in findings if f.problem]
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        raise SystemExit(1)
