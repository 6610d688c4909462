"""Reads what the Hub says of one model at its current commit, for the plan (I/O only).

Two requests through huggingface_hub: ``model_info`` with file metadata (the commit SHA, access,
the reduced config the watcher's screens read, the safetensors parameter counts, every file's
size) and ``config.json`` at that very commit (the MoE fields are only there). The commit is read
once here and pinned in the plan, so every method job downloads the same files whatever is pushed
meanwhile. The token is huggingface_hub's own (``$HF_TOKEN`` if set); public models need none.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi
from huggingface_hub.errors import (
    DisabledRepoError,
    EntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import ModelInfo

from bot.config import HubConfig
from bot.hub.retry import with_retries
from bot.hub.watcher import listed_model
from bot.plan import ModelFacts, is_commit_sha
from runners.errors import QuantbotError
from runners.source import pickle_only

log = logging.getLogger(__name__)

#: A config.json past this is not read: real ones are a few kB, and the text is a stranger's.
MAX_CONFIG_BYTES = 4 * 10**6


class ModelUnavailable(QuantbotError):
    """The Hub does not give us the model: no such repository, private, or disabled."""


def _info(api: HfApi, repo_id: str) -> ModelInfo:
    try:
        return api.model_info(repo_id, files_metadata=True)
    except RepositoryNotFoundError as exc:
        status = getattr(exc.response, "status_code", None)
        raise ModelUnavailable(f"the Hub has no model {repo_id}, or it is private (HTTP {status})",
                               "check the repo id in the issue title; a private model needs "
                               "HF_TOKEN in the plan job") from exc
    except DisabledRepoError as exc:
        raise ModelUnavailable(f"{repo_id} is disabled on the Hub",
                               "nothing can be made of it; close the issue") from exc


def _config(api: HfApi, repo_id: str, revision: str, size: int | None) -> dict[str, Any]:
    """config.json at ``revision`` as a dict; empty when absent, unreadable, too big or gated
    (GatedRepoError is a RepositoryNotFoundError): the plan then claims nothing it needs it for."""
    if size is not None and size > MAX_CONFIG_BYTES:
        log.warning("%s: config.json is %d bytes, not read", repo_id, size)
        return {}
    try:
        path = Path(api.hf_hub_download(repo_id, "config.json", revision=revision))
        if path.stat().st_size > MAX_CONFIG_BYTES:
            log.warning("%s: config.json is %d bytes, not read", repo_id, path.stat().st_size)
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        log.warning("%s: no readable config.json at %s (%s)", repo_id, revision[:12],
                    type(exc).__name__)
        return {}
    except (UnicodeDecodeError, ValueError) as exc:
        log.warning("%s: config.json at %s is not JSON (%s)", repo_id, revision[:12], exc)
        return {}
    return data if isinstance(data, dict) else {}


def read_config(api: HfApi, repo_id: str, revision: str | None, hub: HubConfig) -> dict[str, Any]:
    """config.json of ``repo_id`` (at ``revision``, else ``main``); empty when it cannot be had.
    For the watcher's issue, where a missing MoE line must not stop a poll."""
    try:
        return with_retries(lambda: _config(api, repo_id, revision or "main", None),
                            action=f"read {repo_id}'s config.json", retries=hub.retries,
                            wait_s=hub.retry_wait_s)
    except QuantbotError as exc:
        log.warning("%s: config.json not read: %s", repo_id, exc)
        return {}


def read_model(api: HfApi, repo_id: str, hub: HubConfig) -> ModelFacts:
    """The model at its current commit; :class:`ModelUnavailable` when the Hub has it not for us,
    :class:`QuantbotError` when the Hub cannot be asked (after bounded retries)."""
    info = with_retries(lambda: _info(api, repo_id), action=f"read the model info of {repo_id}",
                        retries=hub.retries, wait_s=hub.retry_wait_s)
    revision = info.sha
    if not isinstance(revision, str) or not is_commit_sha(revision):
        raise QuantbotError(f"the Hub named no commit for {repo_id} (sha {str(revision)[:60]!r})",
                            "comment the command again later; nothing was run")
    try:
        listed = listed_model(info)
    except (ValueError, TypeError) as exc:
        raise QuantbotError(f"the Hub's model info of {repo_id} is malformed ({exc!s:.200})",
                            "comment the command again later; nothing was run") from exc
    siblings = {s.rfilename: s.size for s in info.siblings or []}
    weights = [size for name, size in siblings.items() if name.endswith(".safetensors")]
    weight_bytes = listed.source_bytes
    if weight_bytes is None and weights and all(isinstance(s, int) for s in weights):
        weight_bytes = sum(s for s in weights if s is not None)
    config = {}
    if "config.json" in siblings:
        config = with_retries(lambda: _config(api, repo_id, revision, siblings["config.json"]),
                              action=f"read {repo_id}'s config.json", retries=hub.retries,
                              wait_s=hub.retry_wait_s)
    log.info("%s at %s: %s parameters, %s weight bytes", repo_id, revision[:12], listed.params,
             weight_bytes)
    return ModelFacts(listed=listed, revision=revision, config=config, weight_bytes=weight_bytes,
                      pickle_only=pickle_only(siblings))
