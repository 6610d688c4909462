"""The method registry: one :class:`Method` per quantization method, and nothing else.

Everything that differs between GGUF, GPTQ, AWQ, NF4, FP8 and MLX is said here once, and every other part
iterates over :data:`METHODS`: the command line and the ``/quantize`` grammar (the spec type's
options), the plan and its estimates, the workflows' job matrix (the runner label), the
watcher's own-repo and already-quantized checks (suffix, Hub tags), the cards (template, columns,
tags) and the pipeline (entry point). Adding a method is one package under ``runners/``, one
entry here and one card template.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runners.errors import QuantbotError
from runners.fp8.spec import Fp8Spec
from runners.gguf.spec import GgufSpec
from runners.gptq.spec import AwqSpec, GptqSpec
from runners.mlx.spec import MlxSpec
from runners.nf4.spec import Nf4Spec
from runners.spec import MethodSpec

if TYPE_CHECKING:
    from runners.results import QuantRun
    from runners.settings import RunSettings
    from runners.source import SourceModel


@dataclass(frozen=True)
class Estimate:
    """One planned output and its expected size."""

    method: str
    variant: str
    bytes: int


@dataclass(frozen=True)
class Method:
    """What quantbot knows about one method."""

    name: str  # what users type: gguf, gptq …
    label: str  # how texts show it: GGUF, GPTQ …
    repo_suffix: str  # <name><suffix> is the published repository
    runner: str  # the self-hosted runner label its job needs: cpu or gpu
    spec_type: type[MethodSpec]
    entry: str  # "module:function" that runs it: (source, spec, settings, repo_dir) -> QuantRun
    requires: tuple[str, ...]  # importable modules the entry needs
    extra: str  # quantbot's pip extra that installs them
    card_template: str
    columns: tuple[str, ...]  # the card's files table (bot/cards/columns.py)
    hub_tags: tuple[str, ...]  # tags of its repositories; also how the watcher spots others'
    support: str  # whose registry decides the architectures it takes (runners/support)
    #: Methods with the same group share a work folder per model, so the unquantized baseline
    #: is measured once for all of them.
    work_group: str
    runtimes: tuple[str, ...]  # what users run its files in, for the cross-format table
    library_name: str | None = None  # the Hub's library_name of its repositories
    #: Bytes per weight of the 16-bit intermediate it converts to first (GGUF's f16 file).
    intermediate_bytes_per_weight: float = 0.0
    #: It scores the unquantized baseline on the GPU (transformers family): bounds its GPU memory.
    baseline_on_gpu: bool = False
    #: quantization_config.quant_method of originals released quantized whose weights its tool
    #: reads (llama.cpp's converter dequantizes FP8, MXFP4, compressed-tensors, ModelOpt).
    original_formats: tuple[str, ...] = ()
    #: Another runner label its job can also run on, and gains from: GGUF measures on a GPU
    #: runner's CUDA build (perplexity 25x faster) while its CPU cores quantize. The plan
    #: decides (:func:`bot.capacity.place`).
    also_on: str | None = None
    #: "module:function" that builds what its runs read from quantbot's cache (the llama.cpp
    #: tools): called before the make step's sandbox, which sees that cache read-only.
    tools: str | None = None
    #: What its repositories hold of a multimodal model's vision part beside the quantized text
    #: model: "projector" (separate mmproj files, where llama.cpp's converter has a projector
    #: for the architecture), "tower" (the vision tower kept in 16-bit in the same checkpoint)
    #: or "none" (the text model alone: mlx-lm drops vision weights; mlx-vlm is another tool).
    vision_part: str = "tower"
    #: Made by ``quantbot quantize``/``demo`` when the words name no method: methods whose tools
    #: install and run on any machine (GGUF's llama.cpp; MLX needs macOS or glibc 2.35+).
    cli_default: bool = False

    @property
    def labels(self) -> tuple[str, ...]:
        """Every runner label its job can run on, its own first."""
        return (self.runner, self.also_on) if self.also_on else (self.runner,)

    def repo_name(self, source_name: str) -> str:
        return f"{source_name}{self.repo_suffix}"

    def default_spec(self) -> MethodSpec:
        return self.spec_type()

    def estimate(self, n_params: int, spec: MethodSpec | None = None) -> list[Estimate]:
        """Expected file size of each variant, from the parameter count."""
        spec = spec or self.default_spec()
        return [Estimate(self.name, variant, int(n_params * bpw / 8))
                for variant, bpw in spec.bits_per_weight().items()]

    def missing(self) -> list[str]:
        """Modules this method needs that are not installed."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def run(self, source: SourceModel, spec: MethodSpec, settings: RunSettings,
            repo_dir: Path) -> QuantRun:
        missing = self.missing()
        if missing:
            raise QuantbotError(f"{self.label} needs {', '.join(missing)}",
                                f"install quantbot's {self.extra} extra: pip install -e '.[{self.extra}]'")
        module, _, function = self.entry.partition(":")
        return getattr(importlib.import_module(module), function)(source, spec, settings, repo_dir)

    def build_tools(self) -> None:
        """Build what the method's runs read from the cache, if anything is missing."""
        if self.tools:
            module, _, function = self.tools.partition(":")
            getattr(importlib.import_module(module), function)()


_TRANSFORMERS_COLUMNS = ("size", "peak_memory", "ppl", "kld", "kld_p99", "same_top", "answers",
                         "tokens", "use_case")

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("gguf", "GGUF", "-GGUF", "cpu", GgufSpec, "runners.gguf.pipeline:run",
           ("llama_cpp", "gguf"), "gguf", "card_gguf.md.j2",
           ("files", "quant_method", "bits_per_weight", "size", "ram_estimate", "ppl", "kld",
            "kld_p99", "same_top", "answers", "tokens", "front", "use_case"),
           ("gguf", "llama.cpp"), "converter", "gguf",
           ("llama.cpp", "llama-cpp-python", "LM Studio", "Ollama"),
           original_formats=("fp8", "mxfp4", "compressed-tensors", "modelopt"),
           intermediate_bytes_per_weight=2.0, also_on="gpu", vision_part="projector",
           tools="runners.llamacpp:ensure_tools", cli_default=True),
    Method("gptq", "GPTQ", "-GPTQ", "gpu", GptqSpec, "runners.gptq.pipeline:run",
           ("gptqmodel", "optimum"), "gpu", "card_gptq.md.j2",
           ("variant", "bits", "group_size", "act_order", "damp", *_TRANSFORMERS_COLUMNS),
           ("gptq", "4-bit"), "gptqmodel", "transformers",
           ("transformers", "vLLM", "SGLang", "TGI"), "transformers", baseline_on_gpu=True),
    Method("awq", "AWQ", "-AWQ", "gpu", AwqSpec, "runners.gptq.pipeline:run",
           ("gptqmodel",), "gpu", "card_awq.md.j2",
           ("variant", "bits", "group_size", "zero_point", *_TRANSFORMERS_COLUMNS),
           ("awq", "4-bit"), "gptqmodel", "transformers",
           ("transformers", "vLLM", "SGLang", "TGI"), "transformers", baseline_on_gpu=True),
    Method("nf4", "NF4", "-bnb-4bit", "gpu", Nf4Spec, "runners.nf4.pipeline:run",
           ("bitsandbytes",), "gpu", "card_nf4.md.j2",
           ("variant", "double_quant", *_TRANSFORMERS_COLUMNS),
           ("bitsandbytes", "4-bit", "nf4"), "transformers", "transformers",
           ("transformers", "vLLM"), "transformers", baseline_on_gpu=True),
    Method("fp8", "FP8", "-FP8-dynamic", "gpu", Fp8Spec, "runners.fp8.pipeline:run",
           ("compressed_tensors",), "fp8", "card_fp8.md.j2",
           ("variant", *_TRANSFORMERS_COLUMNS),
           ("compressed-tensors", "fp8"), "transformers", "transformers",
           ("vLLM", "SGLang", "transformers"), "transformers", baseline_on_gpu=True),
    # MLX runs on Apple silicon and on MLX's CPU backend (Linux, glibc 2.35+): a CPU runner
    # quantizes, measures and checks it. The unquantized baseline is transformers' (shared).
    Method("mlx", "MLX", "-MLX", "cpu", MlxSpec, "runners.mlx.pipeline:run",
           ("mlx", "mlx_lm"), "mlx", "card_mlx.md.j2",
           ("variant", "bits", "group_size", "bits_per_weight", *_TRANSFORMERS_COLUMNS),
           ("mlx",), "mlx", "transformers", ("mlx-lm", "LM Studio"), "mlx",
           vision_part="none"),
)}

#: Runner labels, in the order their jobs are listed.
RUNNERS: tuple[str, ...] = tuple(dict.fromkeys(m.runner for m in METHODS.values()))


#: Method name → the tool registry that decides which architectures it takes (runners/support).
SUPPORT_SOURCES: dict[str, str] = {m.name: m.support for m in METHODS.values()}


def method(name: str) -> Method:
    """The registered method ``name``; a clear error naming those there are."""
    try:
        return METHODS[name]
    except KeyError:
        raise QuantbotError(f"unknown method {name!r}",
                            f"use one of {', '.join(METHODS)}") from None


def method_of_repo(repo_name: str) -> Method | None:
    """The method whose repositories are named like ``repo_name`` (longest suffix first)."""
    for m in sorted(METHODS.values(), key=lambda m: -len(m.repo_suffix)):
        if repo_name.endswith(m.repo_suffix):
            return m
    return None


def source_name_of(repo_name: str) -> str:
    """``Llama-3-8B-GGUF`` → ``Llama-3-8B``: the source model's name behind one of our repos."""
    m = method_of_repo(repo_name)
    return repo_name.removesuffix(m.repo_suffix) if m else repo_name
