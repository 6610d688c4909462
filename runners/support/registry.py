"""Which quantization methods support an architecture, answered from the packaged tool snapshot.

Pure: reads ``registry.json`` (written by ``python -m runners.support.snapshot`` from the pinned
tools) through :mod:`importlib.resources` and imports none of the tools. Each method is checked
against the tool that does its work (:data:`METHOD_SOURCES`):

* ``converter`` (``gguf``): llama.cpp's ``convert_hf_to_gguf.py`` picks its converter by the
  config's architecture (``architectures[0]``, or ``text_config.architectures[0]`` when the config
  has one). Multimodal models convert their text weights that way; the vision/audio part needs
  a separate multimodal-projector (mmproj) converter, which the verdict's reason mentions.
* ``gptqmodel`` (``gptq``, ``awq``): GPTQModel picks its model definition by the config's
  ``model_type`` (lower-cased) in its ``MODEL_MAP``; AWQ uses the same definitions.
* ``transformers`` (``nf4``): bitsandbytes NF4 loads through transformers' auto classes, which
  pick the model class by ``model_type`` (causal-LM or image-text-to-text map).

Both transformers-based sections also check the architecture by name: it must be a class
transformers has, and the one it builds for that ``model_type``; a config may not say one model
and load another. :meth:`Registry.support_all` asks for every architecture a config declares.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

#: The snapshot sections a method can be checked against.
SOURCES = ("converter", "gptqmodel", "transformers")

#: quantbot's method names → the snapshot section whose tool does the work. Callers may pass
#: their own table (same shape) to :func:`support_for` and friends.
METHOD_SOURCES: Mapping[str, str] = MappingProxyType(
    {"gguf": "converter", "gptq": "gptqmodel", "awq": "gptqmodel", "nf4": "transformers"})

_REGENERATE = "python -m runners.support.snapshot"
#: What transformers, llama.cpp and GPTQModel name an architecture by: a Python class name.
_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def is_class_name(name: object) -> bool:
    """Whether a config's architecture entry is a name any tool could register (a string that
    is a Python identifier in ASCII); anything else is a malformed config, refused by name."""
    return isinstance(name, str) and _CLASS_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Verdict:
    """Whether one method supports the model, and why (names the tool and its version)."""

    supported: bool
    reason: str


@dataclass(frozen=True)
class Support:
    """One architecture's verdict per method, and whether it is multimodal."""

    architecture: str
    model_type: str | None
    #: transformers maps it to an image-text-to-text class, or the converter has an mmproj for it.
    multimodal: bool
    #: The converter registers a multimodal projector (``--mmproj``) for this architecture.
    mmproj: bool
    verdicts: Mapping[str, Verdict]

    def __getitem__(self, method: str) -> Verdict:
        return self.verdicts[method]

    @property
    def methods(self) -> list[str]:
        """The supported methods, in the order they were asked for."""
        return [m for m, v in self.verdicts.items() if v.supported]


class Registry:
    """Questions answered from one snapshot (``registry.json``'s content)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        try:
            self.versions: dict[str, str] = dict(data["versions"])
            self.text_architectures = frozenset(data["converter"]["text"])
            self.mmproj_architectures = frozenset(data["converter"]["mmproj"])
            self.gptqmodel_types: dict[str, str] = dict(data["gptqmodel"]["model_types"])
            self.causal_lm: dict[str, str] = dict(data["transformers"]["causal_lm"])
            self.image_text_to_text: dict[str, str] = dict(data["transformers"]["image_text_to_text"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed support snapshot (missing {exc}); regenerate it with "
                             f"{_REGENERATE}") from exc
        self._image_text_classes = frozenset(self.image_text_to_text.values())
        self._types_by_class: dict[str, list[str]] = {}
        for mapping in (self.causal_lm, self.image_text_to_text):
            for model_type, cls in mapping.items():
                types = self._types_by_class.setdefault(cls, [])
                if model_type not in types:
                    types.append(model_type)
        for types in self._types_by_class.values():
            types.sort()

    @classmethod
    def from_json(cls, text: str) -> Registry:
        return cls(json.loads(text))

    # ---- where each section's facts came from -------------------------------------------------

    @property
    def _llama_cpp(self) -> str:
        return f"llama.cpp in llama-cpp-python {self.versions['llama-cpp-python']}"

    @property
    def _gptqmodel(self) -> str:
        return f"GPTQModel {self.versions['gptqmodel']}"

    @property
    def _transformers(self) -> str:
        return f"transformers {self.versions['transformers']}"

    # ---- architecture ↔ model_type -------------------------------------------------------------

    def model_types_for(self, architecture: str) -> list[str]:
        """The config ``model_type`` values transformers maps to ``architecture`` (sorted)."""
        return list(self._types_by_class.get(architecture, ()))

    def architecture_for(self, model_type: str) -> str | None:
        """transformers' class for ``model_type``: the causal-LM one, else image-text-to-text."""
        return self.causal_lm.get(model_type) or self.image_text_to_text.get(model_type)

    def is_multimodal(self, architecture: str, model_type: str | None = None) -> bool:
        return (architecture in self.mmproj_architectures
                or architecture in self._image_text_classes
                or (model_type is not None and model_type in self.image_text_to_text))

    # ---- verdicts ------------------------------------------------------------------------------

    def support(self, architecture: str, model_type: str | None = None,
                methods: Mapping[str, str] = METHOD_SOURCES, *,
                text_architecture: str | None = None) -> Support:
        """Verdicts for ``methods`` (method name → snapshot section, see :data:`METHOD_SOURCES`).

        ``architecture`` is the config's ``architectures[0]``, ``model_type`` its ``model_type``
        (``None``: inferred from transformers' maps where needed) and ``text_architecture`` its
        ``text_config.architectures[0]`` if it has one (the converter converts the text model by it).
        """
        unknown = {m: s for m, s in methods.items() if s not in SOURCES}
        if unknown:
            raise ValueError(f"unknown support sources {unknown}; expected one of {SOURCES}")
        checks = {"converter": self._converter, "gptqmodel": self._gptqmodel_verdict,
                  "transformers": self._transformers_verdict}
        verdicts = {m: checks[s](architecture, model_type, text_architecture)
                    for m, s in methods.items()}
        return Support(architecture=architecture, model_type=model_type,
                       multimodal=self.is_multimodal(architecture, model_type),
                       mmproj=architecture in self.mmproj_architectures,
                       verdicts=MappingProxyType(verdicts))

    def support_all(self, architectures: Sequence[str], model_type: str | None = None,
                    methods: Mapping[str, str] = METHOD_SOURCES, *,
                    text_architecture: str | None = None) -> Support:
        """:meth:`support` for a config's whole ``architectures`` list: a method takes the model
        only if it takes every declared architecture (a tool may load any of them), and a refusal
        names the architecture it is about. ``multimodal``/``mmproj`` hold if they hold for one."""
        names = list(dict.fromkeys(architectures))
        if not names:
            raise ValueError("no architectures to check; config.json must name at least one")
        each = [self.support(a, model_type, methods, text_architecture=text_architecture)
                for a in names]
        verdicts: dict[str, Verdict] = {}
        for method in methods:
            refused = next((s for s in each if not s[method].supported), None)
            if refused is None:
                verdicts[method] = each[0][method]
            elif len(each) == 1:
                verdicts[method] = refused[method]
            else:
                verdicts[method] = Verdict(False, f"{refused.architecture} (one of "
                                                  f"{len(each)} architectures declared): "
                                                  f"{refused[method].reason}")
        return Support(architecture=names[0], model_type=model_type,
                       multimodal=any(s.multimodal for s in each),
                       mmproj=any(s.mmproj for s in each), verdicts=MappingProxyType(verdicts))

    def _converter(self, architecture: str, model_type: str | None,
                   text_architecture: str | None) -> Verdict:
        tool = f"convert_hf_to_gguf.py of {self._llama_cpp}"
        names = list(dict.fromkeys(n for n in (text_architecture, architecture) if n))
        registered = [n for n in names if n in self.text_architectures]
        if not registered:
            reason = f"{' / '.join(names)} not registered by {tool}"
            if architecture in self.mmproj_architectures:
                reason += " (only its multimodal projector is, via --mmproj)"
            return Verdict(False, reason)
        reason = f"{registered[0]} registered by {tool}"
        if architecture in self.mmproj_architectures:
            reason += "; its multimodal projector converts too (--mmproj)"
        elif self.is_multimodal(architecture, model_type):
            reason += "; text weights only: the converter registers no multimodal projector for it"
        return Verdict(True, reason)

    def _candidate_types(self, architecture: str, model_type: str | None) -> tuple[list[str], str]:
        """The ``model_type`` values to check, and how they were found (for the reason)."""
        if model_type:
            return [model_type], f"model_type {model_type!r}"
        inferred = self.model_types_for(architecture)
        if not inferred:
            return [], f"model_type not given and {self._transformers} maps none to {architecture}"
        return inferred, (f"model_type not given, {self._transformers} maps {architecture} to "
                          + ", ".join(repr(t) for t in inferred))

    def _class_mismatch(self, architecture: str, model_type: str | None,
                        via: str = "") -> Verdict | None:
        """A refusal when transformers would not build ``architecture`` for ``model_type``.

        GPTQModel and bitsandbytes load through transformers, which picks the class by
        ``model_type``; an architecture name transformers does not have, or not for that
        ``model_type``, is a config that says one model and loads another (or a made-up name).
        ``via`` names the tool that loads through transformers, for the reason.
        """
        if architecture not in self._types_by_class:
            return Verdict(False, f"{via}{architecture} is no causal-LM or image-text-to-text "
                                  f"class in {self._transformers}")
        if model_type is None:
            return None
        classes = [c for c in (self.causal_lm.get(model_type),
                               self.image_text_to_text.get(model_type)) if c]
        if classes and architecture not in classes:
            return Verdict(False, f"{via}architecture {architecture} is not what {self._transformers} "
                                  f"builds for model_type {model_type!r} "
                                  f"({' or '.join(dict.fromkeys(classes))})")
        return None

    def _gptqmodel_verdict(self, architecture: str, model_type: str | None,
                           text_architecture: str | None) -> Verdict:
        mismatch = self._class_mismatch(architecture, model_type,
                                        via=f"{self._gptqmodel} loads through transformers: ")
        if mismatch is not None:
            return mismatch
        types, how = self._candidate_types(architecture, model_type)
        for t in types:
            # GPTQModel looks up config.model_type.lower() (models/auto.py).
            definition = self.gptqmodel_types.get(t.lower())
            if definition is not None:
                return Verdict(True, f"{how}: {self._gptqmodel} defines {t.lower()!r} ({definition})")
        return Verdict(False, f"{how}: not in {self._gptqmodel}'s model map (MODEL_MAP)")

    def _transformers_verdict(self, architecture: str, model_type: str | None,
                              text_architecture: str | None) -> Verdict:
        mismatch = self._class_mismatch(architecture, model_type)
        if mismatch is not None:
            return mismatch
        if model_type:
            for auto, mapping in (("AutoModelForCausalLM", self.causal_lm),
                                  ("AutoModelForImageTextToText", self.image_text_to_text)):
                if model_type in mapping:
                    return Verdict(True, f"{self._transformers} {auto} loads model_type "
                                         f"{model_type!r} as {mapping[model_type]}")
            return Verdict(False, f"model_type {model_type!r} has no causal-LM or image-text-to-text "
                                  f"class in {self._transformers}")
        types = self.model_types_for(architecture)  # a known class: _class_mismatch said so
        return Verdict(True, f"model_type not given; {self._transformers} has {architecture} "
                             f"(model_type {', '.join(repr(t) for t in types)})")


@functools.cache
def default_registry() -> Registry:
    """The snapshot packaged with quantbot (``runners/support/registry.json``)."""
    text = resources.files("runners.support").joinpath("registry.json").read_text(encoding="utf-8")
    return Registry.from_json(text)


def support(architecture: str, model_type: str | None = None,
            methods: Mapping[str, str] = METHOD_SOURCES, *, text_architecture: str | None = None) -> Support:
    """:meth:`Registry.support` on the packaged snapshot."""
    return default_registry().support(architecture, model_type, methods,
                                      text_architecture=text_architecture)


def support_all(architectures: Sequence[str], model_type: str | None = None,
                methods: Mapping[str, str] = METHOD_SOURCES, *,
                text_architecture: str | None = None) -> Support:
    """:meth:`Registry.support_all` on the packaged snapshot."""
    return default_registry().support_all(architectures, model_type, methods,
                                          text_architecture=text_architecture)


def support_for(architecture: str, model_type: str | None = None,
                methods: Mapping[str, str] = METHOD_SOURCES, *,
                text_architecture: str | None = None) -> dict[str, Verdict]:
    """Method name → :class:`Verdict` for this architecture / ``model_type``."""
    return dict(support(architecture, model_type, methods, text_architecture=text_architecture).verdicts)


def methods_for(architecture: str, model_type: str | None = None,
                methods: Mapping[str, str] = METHOD_SOURCES, *,
                text_architecture: str | None = None) -> list[str]:
    """The methods (from ``methods``, in its order) that support this architecture."""
    return support(architecture, model_type, methods, text_architecture=text_architecture).methods


def snapshot_versions() -> dict[str, str]:
    """The tool versions the packaged snapshot was generated from."""
    return dict(default_registry().versions)


def model_types_for(architecture: str) -> list[str]:
    """:meth:`Registry.model_types_for` on the packaged snapshot."""
    return default_registry().model_types_for(architecture)


def architecture_for(model_type: str) -> str | None:
    """:meth:`Registry.architecture_for` on the packaged snapshot."""
    return default_registry().architecture_for(model_type)
