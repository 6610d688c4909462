"""The main job: a source model → quantized, measured, checked repository folders → published.

Pure planning lives in the runners and card modules; this module sequences the I/O.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.cards.render import write_card
from bot.publish.base import Publisher, PublishResult
from runners.errors import QuantbotError
from runners.paths import cache_dir
from runners.results import QuantRun
from runners.source import SourceModel, load_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOptions:
    """Options shared by every method, plus each method's own."""

    owner: str = "quantbot"
    work_dir: Path | None = None
    allow_remote_code: bool = False
    allow_pickle: bool = False
    revision: str | None = None
    repo_id: str | None = None  # the source's id when SOURCE is a local folder
    gguf: dict = field(default_factory=dict)
    gptq: dict = field(default_factory=dict)
    awq: dict = field(default_factory=dict)


# A method: (source, options, staging repo folder) → run record. Registered by name.
MethodRunner = Callable[[SourceModel, JobOptions, Path, Path], QuantRun]


def _gguf(source: SourceModel, opts: JobOptions, work: Path, repo_dir: Path) -> QuantRun:
    from runners.gguf.pipeline import GgufOptions, run_gguf
    from runners.gguf.types import parse_types
    from runners.llamacpp import ensure_toolchain

    settings = dict(opts.gguf)
    types = parse_types(settings.pop("types", None))
    return run_gguf(source, GgufOptions(types=types, work_dir=work, **settings),
                    ensure_toolchain(), repo_dir)


def _gpu_specs(method: str, settings: dict) -> list:
    """Variants from ``variants="4,8:32"`` (CLI) or one plan's ``bits``/``group_size``/…"""
    from runners.gptq.types import QuantSpec, parse_specs

    if "variants" in settings:
        return parse_specs(method, settings.pop("variants"))  # type: ignore[arg-type]
    recipe = {k: settings.pop(k) for k in ("bits", "group_size", "act_order", "damp",
                                            "zero_point") if k in settings}
    if not recipe:
        return parse_specs(method, None)  # type: ignore[arg-type]
    return [QuantSpec.gptq(**recipe) if method == "gptq" else QuantSpec.awq(**recipe)]


def _gptq_family(method: str) -> MethodRunner:
    def run(source: SourceModel, opts: JobOptions, work: Path, repo_dir: Path) -> QuantRun:
        missing = [m for m in ("gptqmodel", "optimum") if importlib.util.find_spec(m) is None]
        if missing:
            raise QuantbotError(f"{method.upper()} needs {' and '.join(missing)}",
                                "install quantbot's gpu extra: pip install -e '.[gpu]'")
        from runners.gptq.pipeline import GptqOptions, run_gptq

        settings = dict(getattr(opts, method))
        specs = _gpu_specs(method, settings)
        return run_gptq(source, GptqOptions(specs=specs, work_dir=work, **settings), repo_dir)

    return run


METHODS: dict[str, MethodRunner] = {"gguf": _gguf, "gptq": _gptq_family("gptq"),
                                    "awq": _gptq_family("awq")}


def supported_architectures(method: str) -> frozenset[str] | None:
    """Architectures a method accepts (None: the method checks by itself)."""
    if method == "gguf":
        from runners.gguf.llama_tools import supported_architectures as archs
        from runners.llamacpp import ensure_toolchain

        return archs(ensure_toolchain())
    return None


def parse_methods(spec: str) -> list[str]:
    """``"gguf,gptq"`` / ``"all"`` → method names, checked against those quantbot has."""
    names = list(METHODS) if spec.strip().lower() == "all" else [
        m.strip().lower() for m in spec.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise QuantbotError(f"unknown method {', '.join(unknown) or spec!r}",
                            f"use one or more of {', '.join(METHODS)} or all")
    return names


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "__", text)


def quantize_and_publish(source: str, methods: list[str], opts: JobOptions,
                         publisher: Publisher) -> list[PublishResult]:
    """Run each method on ``source`` and publish each finished repository folder."""
    results = []
    for method in methods:
        model = load_source(source, supported_architectures=supported_architectures(method),
                            repo_id=opts.repo_id, allow_remote_code=opts.allow_remote_code,
                            allow_pickle=opts.allow_pickle, revision=opts.revision)
        # GPTQ and AWQ share a work folder: the unquantized baseline is measured once for both.
        family = "gguf" if method == "gguf" else "transformers"
        work = (opts.work_dir or cache_dir() / "work") / _slug(model.info.repo_id) / family
        repo_id = f"{opts.owner}/{model.info.name}-{method.upper()}"
        staging = work / "repo" / repo_id.split("/")[1]
        for stale in (staging / "README.md", staging / "quantbot.json"):
            stale.unlink(missing_ok=True)
        run = METHODS[method](model, opts, work, staging)
        run.save(staging)
        write_card(run, repo_id, staging)
        results.append(publisher.publish(staging, repo_id))
        log.info("%s: published %s", method, repo_id)
    return results

