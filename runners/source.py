"""The source model: a local Hugging Face model folder or a Hub repo id, checked before any work.

Refused unless a maintainer opts in: models whose config needs ``trust_remote_code``
(``auto_map``) and models that ship only pickle weights (``*.bin``/``*.pt``, no safetensors).
"""

from __future__ import annotations

import errno
import json
import logging
import re
import struct
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from runners.errors import QuantbotError
from runners.progress import hub_bars
from runners.results import SourceInfo
from runners.support.registry import is_class_name

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
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def pickle_only(files: Iterable[str]) -> bool:
    """A repository's file names hold pickle weights and no safetensors (pure)."""
    names = list(files)
    return not any(f.endswith(".safetensors") for f in names) and any(
        fnmatch(f, pat) for f in names for pat in _PICKLE_PATTERNS)


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


#: A safetensors header is JSON of at most 100 MB (the ``safetensors`` library's own limit).
_MAX_HEADER = 100_000_000


def safetensors_header(file: Path) -> dict:
    """The JSON header of a ``*.safetensors`` file, checked against the file's size.

    Raises ``ValueError`` naming what is wrong: a truncated or corrupt file (an interrupted
    download, a full disk) must fail here, in a sentence, not inside a tool hours later.
    """
    size = file.stat().st_size
    with file.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ValueError(f"{file.name} is {size} bytes, too short for a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, _MAX_HEADER):
            raise ValueError(f"{file.name} announces a {length}-byte header but is {size} bytes")
        try:
            header = json.loads(fh.read(length))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{file.name} has an unreadable header ({exc})") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{file.name} has a header that is not a JSON object")
    try:
        end = max((int(entry["data_offsets"][1]) for name, entry in header.items()
                   if name != "__metadata__"), default=0)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"{file.name} has a malformed tensor entry ({exc!r})") from exc
    data = size - 8 - length
    if end != data:
        raise ValueError(f"{file.name} holds {data} bytes of tensor data but its header "
                         f"describes {end} (truncated or corrupt)")
    return header


def safetensors_params(folder: Path) -> int:
    """Number of weights in the folder's ``*.safetensors`` files, read from their headers."""
    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        try:
            header = safetensors_header(file)
            for name, entry in header.items():
                if name == "__metadata__":
                    continue
                count = 1
                for dim in entry["shape"]:
                    count *= int(dim)
                total += count
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise QuantbotError(f"{file} is not a usable safetensors file: {exc}",
                                "re-download or re-save the model's weights") from exc
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


def _hub_error(exc: BaseException, repo_id: str, revision: str | None) -> QuantbotError:
    """One sentence for why the Hub did not give us ``repo_id`` (never a traceback)."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f" at revision {revision}" if revision else ""
    endpoint = constants.ENDPOINT
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return QuantbotError(f"out of disk space downloading {repo_id} into "
                             f"{constants.HF_HUB_CACHE}",
                             "free space there or set HF_HOME to a larger disk, then rerun: "
                             "files already downloaded are not fetched again")
    if isinstance(exc, LocalEntryNotFoundError | OfflineModeIsEnabled) and constants.HF_HUB_OFFLINE:
        return QuantbotError(f"{repo_id}{at} is not in the local Hub cache, and HF_HUB_OFFLINE=1 "
                             "forbids downloading it",
                             "unset HF_HUB_OFFLINE (or download it once online), or pass a "
                             "local model folder")
    if isinstance(exc, GatedRepoError):
        return QuantbotError(f"{repo_id} is gated: the Hub wants an accepted licence before "
                             f"downloading it (HTTP {status})",
                             f"accept its terms on {endpoint}/{repo_id} and set HF_TOKEN to a "
                             "token of that account")
    if isinstance(exc, RevisionNotFoundError):
        return QuantbotError(f"{repo_id} has no revision {revision!r}",
                             "pass an existing branch, tag or commit with --revision")
    if isinstance(exc, RepositoryNotFoundError):
        return QuantbotError(f"the Hub refused {repo_id}: no such model, or it is private "
                             f"(HTTP {status})",
                             "check the repo id (OWNER/NAME), and set HF_TOKEN for a private model")
    if isinstance(exc, HfHubHTTPError):
        detail = exc.server_message or str(exc).splitlines()[0]
        if status is not None and (status >= 500 or status in (408, 429)):
            return QuantbotError(f"the Hub failed to serve {repo_id} (HTTP {status})",
                                 "wait and rerun; files already downloaded are not fetched again")
        return QuantbotError(f"the Hub refused {repo_id} (HTTP {status}: {detail:.200})",
                             "check the repo id, and HF_TOKEN for gated or private models")
    if isinstance(exc, httpx2.TransportError | LocalEntryNotFoundError | OfflineModeIsEnabled):
        cause = exc.__cause__ or exc.__context__ or exc
        detail = (str(cause).splitlines() or ["no detail"])[0]
        return QuantbotError(f"cannot reach the Hub at {endpoint} to download {repo_id} "
                             f"({type(cause).__name__}: {detail:.200})",
                             "check the network, DNS and HF_ENDPOINT; or set HF_HUB_OFFLINE=1 to "
                             "use a copy in the Hub cache; or pass a local model folder")
    if isinstance(exc, OSError):  # huggingface_hub's own checks, e.g. a download cut short
        return QuantbotError(f"the download of {repo_id} failed: {str(exc).splitlines()[0]:.200}",
                             "rerun: the download resumes, and a bad copy is fetched again")
    return QuantbotError(f"cannot download {repo_id}: {type(exc).__name__}: {exc!s:.200}",
                         "rerun with -v; check HF_ENDPOINT and the repo id")


def _bad_weights(folder: Path, listed: dict[str, int]) -> dict[str, str]:
    """Downloaded ``*.safetensors`` files that cannot be used, with why: a size that differs
    from the Hub's listing (a truncated or stale cache entry), or a header that does not parse.
    huggingface_hub checks the length of what it downloads, not what its cache already holds."""
    bad = {}
    for file in sorted(folder.rglob("*.safetensors")):
        name = file.relative_to(folder).as_posix()
        size = file.stat().st_size
        if name in listed and size != listed[name]:
            bad[name] = f"{name} is {size} bytes but the Hub lists {listed[name]}"
            continue
        try:
            safetensors_header(file)
        except ValueError as exc:
            bad[name] = str(exc)
    return bad


def _download(repo_id: str, revision: str | None, allow_pickle: bool) -> Path:
    """Download what quantbot reads; pickle weights only when allowed (refused before download).

    Every file comes from one commit: ``revision`` (a pinned plan's SHA) or the commit ``main``
    names when the download starts, so a push to the repository meanwhile changes nothing here.
    Each safetensors file is checked (size against the Hub's listing, header) before use; a bad
    one is downloaded again once.
    """

    import httpx2
    from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
    from huggingface_hub.hf_api import RepoFile

    patterns = _DOWNLOAD_PATTERNS + (_PICKLE_PATTERNS if allow_pickle else [])
    try:
        if constants.HF_HUB_OFFLINE:
            log.info("HF_HUB_OFFLINE is set: reading %s from the Hub cache", repo_id)
            with hub_bars() as bars:
                path = Path(snapshot_download(repo_id, revision=revision,
                                              allow_patterns=patterns, tqdm_class=bars))
            listed: dict[str, int] = {}
        else:
            api = HfApi()
            files = [s.rfilename for s in api.model_info(repo_id, revision=revision).siblings or []]
            if not allow_pickle and pickle_only(files):
                raise _pickle_refusal(repo_id)
            with hub_bars() as bars:
                path = Path(snapshot_download(repo_id, revision=revision,
                                              allow_patterns=patterns, tqdm_class=bars))
            commit = path.name  # the snapshot folder is named by the commit every file came from
            listed = {f.path: f.size for f in api.list_repo_tree(repo_id, revision=commit,
                                                                 recursive=True)
                      if isinstance(f, RepoFile) and f.path.endswith(".safetensors")}
            bad = _bad_weights(path, listed)
            for name, why in bad.items():
                log.warning("%s: %s; downloading it again", repo_id, why)
                hf_hub_download(repo_id, name, revision=commit, force_download=True)
        bad = _bad_weights(path, listed)
    except QuantbotError:
        raise
    except (OSError, httpx2.HTTPError) as exc:  # the Hub, the network or the disk failed
        raise _hub_error(exc, repo_id, revision) from exc
    if bad:
        name, why = next(iter(bad.items()))
        blob = (path / name).resolve()
        raise QuantbotError(f"{repo_id}: {why}",
                            f"delete {blob} and rerun without HF_HUB_OFFLINE"
                            if constants.HF_HUB_OFFLINE else
                            "rerun later: a bad copy is downloaded again; if it persists, the "
                            "file on the Hub is broken: tell the model's owner")
    return path


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
    bad = [a for a in archs if not is_class_name(a)] if isinstance(archs, list) else [archs]
    if bad:
        raise QuantbotError(f"{config_path} names a malformed architecture {str(bad[0])[:80]!a} "
                            "(not a Python class name)",
                            "list the model's transformers class names, e.g. "
                            "\"architectures\": [\"LlamaForCausalLM\"]")
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
