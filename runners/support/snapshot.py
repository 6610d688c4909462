"""Regenerate ``runners/support/registry.json`` from the pinned tools: ``python -m runners.support.snapshot``.

Each section comes from the tool itself, never from a hand list:

* ``converter``: the architectures llama.cpp's ``convert_hf_to_gguf.py`` accepts, from the llama.cpp
  tree vendored in the pinned llama-cpp-python sdist (:func:`runners.llamacpp.toolchain`). A child
  process imports the converter's ``conversion`` package, loads every model module and keeps the
  names the converter's own lookup (``conversion.get_model_class``) resolves, separately for text
  models and multimodal projectors (``--mmproj``). ``--print-supported-models`` prints the lookup
  tables instead, which may name a class registered only on the other side (a speech model's
  projector listed as a text model), so the lookup is the truth here.
* ``gptqmodel``: the config ``model_type`` keys of GPTQModel's ``MODEL_MAP`` (its model
  definitions), imported in a child process (importing GPTQModel sets environment variables and
  prints a banner). GPTQModel quantizes AWQ with the same definitions; 7.6.0 excludes no
  ``model_type`` from AWQ.
* ``mlx``: the config ``model_type`` values mlx-lm loads: every module of ``mlx_lm.models``
  that defines ``Model`` and ``ModelArgs`` (mlx-lm imports ``mlx_lm.models.<model_type>``),
  plus the keys of its ``MODEL_REMAPPING`` (``mistral`` → ``llama`` …), imported in a child
  process (importing MLX starts its runtime). A module that needs a package mlx-lm does not
  install (``olmo`` needs ``ai2-olmo``) is listed under ``unavailable`` with its message.
* ``transformers``: ``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`` and
  ``MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES`` (config ``model_type`` → model class), what the
  bitsandbytes NF4 path loads through and how architectures map to ``model_type`` values.

The output is deterministic (sorted keys, ``indent=1``, trailing newline), so regenerating with
unchanged pins gives the same bytes; ``tests/test_support.py`` checks that.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from runners.errors import QuantbotError
from runners.llamacpp import LLAMA_CPP_PYTHON_VERSION, toolchain
from runners.proc import ToolFailed, run_tool

log = logging.getLogger(__name__)

#: The command that regenerates the packaged snapshot (named in error messages and tests).
COMMAND = "python -m runners.support.snapshot"
#: The packaged snapshot this script writes by default.
REGISTRY_PATH = Path(__file__).with_name("registry.json")

_FAILED_MODULE = "Failed to load model module"

#: Run inside the llama.cpp tree; writes {"text": [...], "mmproj": [...], "failed": [...]} to argv[1].
_CONVERTER_PROBE = f"""
import json, logging, sys
import conversion

failed = []

class _Collect(logging.Handler):
    def emit(self, record):
        message = record.getMessage()
        if message.startswith({_FAILED_MODULE!r}):
            failed.append(message)

conversion.logger.addHandler(_Collect())
conversion.load_all_models()


def resolvable(names, mmproj):
    found = []
    for name in sorted(names):
        try:
            conversion.get_model_class(name, mmproj=mmproj)
        except (NotImplementedError, KeyError):
            continue
        found.append(name)
    return found


result = {{
    "text": resolvable(conversion.TEXT_MODEL_MAP, False),
    "mmproj": resolvable(conversion.MMPROJ_MODEL_MAP, True),
    "failed": failed,
}}
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    json.dump(result, fh)
"""

#: Writes {model_type: definition class name} of GPTQModel's MODEL_MAP to argv[1].
_GPTQMODEL_PROBE = """
import json, sys
from gptqmodel.models.auto import MODEL_MAP

with open(sys.argv[1], "w", encoding="utf-8") as fh:
    json.dump({key: cls.__name__ for key, cls in MODEL_MAP.items() if cls is not None}, fh)
"""


#: Writes {"model_types": {model_type: module}, "unavailable": {module: message}} to argv[1].
_MLX_PROBE = """
import contextlib, importlib, io, json, pkgutil, sys
import mlx_lm.models
from mlx_lm.utils import MODEL_REMAPPING

types, unavailable = {}, {}
for info in pkgutil.iter_modules(mlx_lm.models.__path__):
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            module = importlib.import_module("mlx_lm.models." + info.name)
    except (Exception, SystemExit) as exc:  # olmo prints why, then exits
        unavailable[info.name] = said.getvalue().strip() or f"{type(exc).__name__}: {exc}"
        continue
    if hasattr(module, "Model") and hasattr(module, "ModelArgs"):
        types[info.name] = info.name
for alias, target in MODEL_REMAPPING.items():
    if target in types:
        types[alias] = target
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    json.dump({"model_types": types, "unavailable": unavailable}, fh)
"""


class SnapshotError(QuantbotError):
    """The snapshot could not be read from the pinned tools."""


def _probe(code: str, what: str, fix: str, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> Any:
    """Run ``code`` in a child Python; it writes JSON to the path in ``sys.argv[1]``."""
    with tempfile.TemporaryDirectory(prefix="quantbot-support-") as tmp:
        out = Path(tmp) / "probe.json"
        try:
            run_tool([sys.executable, "-c", code, out], env=env, cwd=cwd)
        except ToolFailed as exc:
            raise SnapshotError(f"could not read {what}: {exc.problem}", fix) from exc
        return json.loads(out.read_text(encoding="utf-8"))


def converter_architectures(src_dir: Path | None = None) -> dict[str, list[str]]:
    """``{"text": [...], "mmproj": [...]}``: what the pinned ``convert_hf_to_gguf.py`` converts."""
    tc = toolchain()
    src = Path(src_dir) if src_dir is not None else tc.src_dir
    build_fix = ('build the toolchain first: python -c "from runners.llamacpp import ensure_toolchain; '
                 'ensure_toolchain()"')
    if not (src / "convert_hf_to_gguf.py").is_file() or not (src / "conversion").is_dir():
        raise SnapshotError(f"no llama.cpp converter (convert_hf_to_gguf.py, conversion/) in {src}",
                            build_fix)
    env = tc.converter_env()
    # The converter's own gguf-py first, then the tree itself for its ``conversion`` package.
    env["PYTHONPATH"] = os.pathsep.join([str(src / "gguf-py"), str(src), env.get("PYTHONPATH", "")])
    log.info("reading the converter's architectures from %s", src)
    found = _probe(_CONVERTER_PROBE, f"the converter's architectures in {src}",
                   "install quantbot's gguf extra (pip install -e .[gguf]) and rerun", env=env, cwd=src)
    if found["failed"]:
        raise SnapshotError(
            f"the converter could not load these model modules: {'; '.join(found['failed'])}",
            "install what they import (pip install -e .[gguf]) and rerun, so the snapshot is complete")
    if not found["text"]:
        raise SnapshotError(f"the converter in {src} resolved no text architectures",
                            f"check the tree, then rerun {COMMAND}")
    return {"text": found["text"], "mmproj": found["mmproj"]}


def gptqmodel_model_types() -> dict[str, str]:
    """GPTQModel's ``MODEL_MAP``: config ``model_type`` → model definition class name."""
    log.info("reading GPTQModel's model map")
    types = _probe(_GPTQMODEL_PROBE, "GPTQModel's MODEL_MAP",
                   "install quantbot's gpu extra (pip install -e .[gpu]) and rerun")
    return dict(sorted(types.items()))


def mlx_model_types() -> dict[str, dict[str, str]]:
    """mlx-lm's model registry: ``model_types`` (config ``model_type`` → the ``mlx_lm.models``
    module it loads) and ``unavailable`` (module → why it does not import here)."""
    log.info("reading mlx-lm's model modules")
    found = _probe(_MLX_PROBE, "mlx-lm's model modules",
                   "install quantbot's mlx extra (pip install -e .[mlx]) and rerun")
    if not found["model_types"]:
        raise SnapshotError("mlx-lm defines no model module",
                            f"check the installed mlx-lm, then rerun {COMMAND}")
    return {"model_types": dict(sorted(found["model_types"].items())),
            "unavailable": dict(sorted(found["unavailable"].items()))}


def transformers_maps() -> dict[str, dict[str, str]]:
    """transformers' causal-LM and image-text-to-text auto maps (``model_type`` → class name)."""
    from transformers.models.auto import modeling_auto

    maps = {"causal_lm": modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
            "image_text_to_text": modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES}
    out: dict[str, dict[str, str]] = {}
    for name, mapping in maps.items():
        bad = {k: v for k, v in mapping.items() if not isinstance(v, str)}
        if bad:
            raise SnapshotError(f"transformers' {name} map has non-class entries {bad}",
                                "teach runners/support/snapshot.py this transformers release's map format")
        out[name] = dict(sorted(mapping.items()))
    return out


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError as exc:
        raise SnapshotError(f"{dist} is not installed", "pip install -e .[gguf,gpu,mlx] and rerun") from exc


def collect(src_dir: Path | None = None) -> dict[str, Any]:
    """The whole snapshot, read from the installed, pinned tools."""
    return {
        "generated_by": COMMAND,
        "versions": {
            "llama-cpp-python": LLAMA_CPP_PYTHON_VERSION,
            "gptqmodel": _version("gptqmodel"),
            "mlx-lm": _version("mlx-lm"),
            "transformers": _version("transformers"),
        },
        "converter": converter_architectures(src_dir),
        "gptqmodel": {"model_types": gptqmodel_model_types()},
        "mlx": mlx_model_types(),
        "transformers": transformers_maps(),
    }


def render(snapshot: dict[str, Any]) -> str:
    """The snapshot as the bytes ``registry.json`` holds: sorted, ``indent=1``, trailing newline."""
    return json.dumps(snapshot, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write(path: Path = REGISTRY_PATH, src_dir: Path | None = None) -> dict[str, Any]:
    """Collect the snapshot and write it to ``path``; return it."""
    snapshot = collect(src_dir)
    path.write_text(render(snapshot), encoding="utf-8")
    log.info("wrote %s", path)
    return snapshot


def summary(snapshot: dict[str, Any]) -> str:
    """One line: the counts per section and the versions they came from."""
    versions = ", ".join(f"{k} {v}" for k, v in sorted(snapshot["versions"].items()))
    conv, tf = snapshot["converter"], snapshot["transformers"]
    return (f"{len(conv['text'])} converter text architectures, {len(conv['mmproj'])} mmproj, "
            f"{len(snapshot['gptqmodel']['model_types'])} GPTQModel model types, "
            f"{len(snapshot['mlx']['model_types'])} mlx-lm model types, "
            f"{len(tf['causal_lm'])} transformers causal-LM and "
            f"{len(tf['image_text_to_text'])} image-text-to-text model types ({versions})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REGISTRY_PATH,
                        help="where to write the snapshot (default: the packaged registry.json)")
    parser.add_argument("--src-dir", type=Path, default=None,
                        help="llama.cpp tree to read the converter from (default: the pinned toolchain's)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        snapshot = write(args.output, args.src_dir)
    except SnapshotError as exc:
        log.error("%s", exc)
        return 1
    print(f"{args.output}: {summary(snapshot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
