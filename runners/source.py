"""The source model: a local Hugging Face model folder or a Hub repo id, checked before any work.

Refused unless a maintainer opts in: models whose config needs ``trust_remote_code``
(``auto_map``) and models that ship only pickle weights (``*.bin``/``*.pt``, no safetensors).
"""

from __future__ import annotations

import json
import logging
import re
import struct
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from runners.errors import QuantbotError
from runners.results import SourceInfo

log = logging.getLogger(__name__)

REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


def is_repo_id(text: object) -> bool:
    """A whole Hub repo id ``OWNER/NAME`` (ASCII, the Hub's rules: no ``--`` or ``..``); nothing
    is extracted or repaired, so ``a/b\n`` or ``a/b/c`` is simply not one."""
    return (isinstance(text, str) and REPO_ID.fullmatch(text) is not None
            and "--" not in text and ".." not in text)
_DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "*.txt", "*.md", "*.jinja",
                      "*.tiktoken", "LICENSE*"]
_PICKLE_PATTERNS = ["*.bin", "*.pt", "*.pth"]


@dataclass(frozen=True)
class SourceModel:
    """A model folder on disk with what quantbot read from it."""

    path: Path
    info: SourceInfo
    config: dict


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QuantbotError(f"cannot read {path}: {exc}", "fix or re-download the file") from exc


def safetensors_params(folder: Path) -> int:
    """Number of weights in the folder's ``*.safetensors`` files, read from their headers."""
    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        with file.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in entry["shape"]:
                count *= dim
            total += count
    return total


def _license(folder: Path) -> str | None:
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    from huggingface_hub import ModelCard

    data = ModelCard.load(readme).data
    return data.get("license_name") if data.get("license") == "other" else data.get("license")


def _special_token(folder: Path, key: str) -> str:
    tok_config = folder / "tokenizer_config.json"
    value = _read_json(tok_config).get(key) if tok_config.is_file() else None
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def _chat_template(folder: Path) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    tok_config = folder / "tokenizer_config.json"
    if tok_config.is_file():
        template = _read_json(tok_config).get("chat_template")
        if isinstance(template, str):
            return template
        if isinstance(template, list):  # named templates: take the default one
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            return named.get("default") or next(iter(named.values()), None)
    return None


def _pickle_refusal(repo_id: str) -> QuantbotError:
    return QuantbotError(f"{repo_id} ships only pickle weights (*.bin/*.pt)",
                         "review the model, then pass --allow-pickle")


def _download(repo_id: str, revision: str | None, allow_pickle: bool) -> Path:
    """Download what quantbot reads; pickle weights only when allowed (refused before download)."""
    from fnmatch import fnmatch

    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = _DOWNLOAD_PATTERNS + (_PICKLE_PATTERNS if allow_pickle else [])
    try:
        files = [s.rfilename for s in HfApi().model_info(repo_id, revision=revision).siblings or []]
        if not any(f.endswith(".safetensors") for f in files) and not allow_pickle and any(
                fnmatch(f, pat) for f in files for pat in _PICKLE_PATTERNS):
            raise _pickle_refusal(repo_id)
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except LocalEntryNotFoundError as exc:
        raise QuantbotError(f"cannot download {repo_id} (offline or unreachable Hub)",
                            "pass a local model folder, or go online") from exc
    except HfHubHTTPError as exc:
        raise QuantbotError(f"the Hub refused {repo_id}: {exc}",
                            "check the repo id, and HF_TOKEN for gated models") from exc


def load_source(
    source: str,
    *,
    supported_architectures: Collection[str] | None = None,
    repo_id: str | None = None,
    allow_remote_code: bool = False,
    allow_pickle: bool = False,
    revision: str | None = None,
) -> SourceModel:
    """Resolve ``source`` (folder or Hub id) and check it is a model quantbot may quantize."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = path.resolve()  # tools run in other working directories
        repo_id = repo_id or f"local/{path.name}"
    elif is_repo_id(source) and not path.exists():
        repo_id = repo_id or source
        path = _download(source, revision, allow_pickle)
    else:
        raise QuantbotError(f"model folder {source!r} does not exist",
                            "pass an existing Hugging Face model folder or a Hub id OWNER/NAME")
    if not is_repo_id(repo_id):
        raise QuantbotError(f"{repo_id!r} is not a usable repository id",
                            "pass --repo-id OWNER/NAME (letters, digits, '.', '_', '-')")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise QuantbotError(f"{path} has no config.json, so it is not a Hugging Face model folder",
                            "point at the folder that holds config.json and the weights")
    config = _read_json(config_path)
    archs = config.get("architectures") or []
    if not archs:
        raise QuantbotError(f"{config_path} names no architectures",
                            "add \"architectures\": [\"<Class>ForCausalLM\"] to config.json")
    arch = archs[0]
    if supported_architectures is not None and arch not in supported_architectures:
        raise QuantbotError(f"architecture {arch} is not supported by this quantizer",
                            "choose a model of a supported architecture (`quantbot doctor` lists them)")
    if config.get("auto_map") and not allow_remote_code:
        raise QuantbotError(f"{repo_id} needs trust_remote_code (config.json has auto_map)",
                            "review its code, then pass --allow-remote-code")
    has_safetensors = any(path.glob("*.safetensors"))
    has_pickle = any(p for pat in _PICKLE_PATTERNS for p in path.glob(pat))
    if not has_safetensors and not (has_pickle and allow_pickle):
        if has_pickle:
            raise _pickle_refusal(repo_id)
        raise QuantbotError(f"{path} has no weights (*.safetensors)",
                            "download the model's weight files into the folder")
    text_config = config.get("text_config") or config
    info = SourceInfo(
        repo_id=repo_id,
        architecture=arch,
        license=_license(path),
        n_params=safetensors_params(path),
        context_length=text_config.get("max_position_embeddings"),
        dtype=str(config.get("dtype") or config.get("torch_dtype") or "float32"),
        chat_template=_chat_template(path),
        bos_token=_special_token(path, "bos_token"),
        eos_token=_special_token(path, "eos_token"),
    )
    log.info("source %s: %s, %d params", repo_id, arch, info.n_params)
    return SourceModel(path=path, info=info, config=config)
