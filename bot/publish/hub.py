"""Publishing a repository folder to the Hugging Face Hub: one commit per repo, resumable."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, get_token

from bot.hub.client import hub_api
from bot.hub.retry import with_retries
from bot.methods import source_name_of
from bot.publish.base import PublishResult
from runners.errors import QuantbotError
from runners.settings import HUB_MAX_FILE_BYTES
from runners.units import human_bytes

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LocalFile:
    """One file of the folder to publish."""

    path: str  # path in the repo, POSIX
    abs: Path
    size: int


@dataclass(frozen=True)
class RemoteFile:
    """One file already in the repo: its LFS sha256, or its git blob id for regular files."""

    size: int
    sha256: str | None
    blob_id: str | None


def list_folder(folder: Path) -> list[LocalFile]:
    """Every file under ``folder`` except hidden ones (``.git/``, ``.cache/``, editor files)."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append(LocalFile(rel.as_posix(), p, p.stat().st_size))
    return out


def _hashes(path: Path, size: int) -> tuple[str, str]:
    """(sha256, git blob sha1) in one read."""
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha256.update(chunk)
            sha1.update(chunk)
    return sha256.hexdigest(), sha1.hexdigest()


def unchanged(local: LocalFile, remote: RemoteFile | None) -> bool:
    """True when the repo already holds exactly this content at this path."""
    if remote is None or remote.size != local.size:
        return False
    sha256, blob = _hashes(local.abs, local.size)
    return sha256 == remote.sha256 if remote.sha256 else blob == remote.blob_id


class HubPublisher:
    """Publishes a repository folder to ``<endpoint>/<repo_id>`` as one commit.

    Requests per repo: ``POST /api/repos/create`` (409 = exists), ``GET /api/models/R/tree/main``
    (recursive, paged), then, if anything changed, one commit: ``POST /api/validate-yaml`` (when
    README.md changes), ``POST …/preupload/main``, ``POST R.git/info/lfs/objects/batch`` + one
    ``PUT`` per new LFS object (+ verify), ``POST /api/models/R/commit/main``. Optional collection:
    ``POST /api/collections`` and ``POST /api/collections/SLUG/items``.
    """

    def __init__(self, api: HfApi | None = None, *, private: bool = False,
                 max_file_bytes: int = HUB_MAX_FILE_BYTES, collection: bool = False,
                 retries: int = 4, retry_wait_s: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.api = api or hub_api()
        self.private = private
        self.max_file_bytes = max_file_bytes
        self.collection = collection
        self.retries = retries
        self.retry_wait_s = retry_wait_s
        self.sleep = sleep

    # -- before any request: the folder must be publishable as a whole -----------------------
    def prepare(self, folder: Path) -> list[LocalFile]:
        """The files to publish; every one must already be under the per-file limit.

        Splitting is the quantizer's job (GGUF files are split where they are made, and the card
        lists the parts); a publisher publishes what a finished folder holds and nothing else.
        """
        if not (folder / "README.md").is_file():
            raise QuantbotError(f"{folder} has no README.md (model card)",
                                "publish a folder made by `quantbot quantize`")
        files = list_folder(folder)
        oversized = [f for f in files if f.size > self.max_file_bytes]
        if oversized:
            f = oversized[0]
            raise QuantbotError(
                f"{f.path} is {human_bytes(f.size)}, over the Hub's per-file limit of "
                f"{human_bytes(self.max_file_bytes)}",
                "quantize again with --split-size under the limit (GGUF files are split with "
                "llama-gguf-split where they are made, and the card lists the parts)")
        return files

    # -- requests ------------------------------------------------------------------------------
    def _remote(self, repo_id: str) -> dict[str, RemoteFile]:
        remote: dict[str, RemoteFile] = {}
        for entry in self.api.list_repo_tree(repo_id, recursive=True):
            size = getattr(entry, "size", None)
            if size is None:  # a folder
                continue
            lfs = entry.lfs  # type: ignore[union-attr]
            remote[entry.path] = RemoteFile(size=int(size), sha256=lfs.sha256 if lfs else None,
                                            blob_id=entry.blob_id)  # type: ignore[union-attr]
        return remote

    def _publish_once(self, files: list[LocalFile], repo_id: str) -> PublishResult:
        self.api.create_repo(repo_id, private=self.private, exist_ok=True)
        remote = self._remote(repo_id)
        todo = [f for f in files if not unchanged(f, remote.get(f.path))]
        done = sorted(f.path for f in files if f not in todo)
        location = f"{self.api.endpoint}/{repo_id}"
        if todo:
            ops = [CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=str(f.abs))
                   for f in todo]
            verb = "Upload" if len(todo) == len(files) else "Update"
            self.api.create_commit(repo_id, operations=ops,
                                   commit_message=f"{verb} {len(todo)} file(s) with quantbot")
        return PublishResult(repo_id=repo_id, location=location,
                             uploaded=sorted(f.path for f in todo), skipped=done)

    def _add_to_collection(self, repo_id: str) -> None:
        owner, name = repo_id.split("/", 1)
        title = f"{source_name_of(name)} quantized"[:60]

        def run() -> None:
            coll = self.api.create_collection(title, namespace=owner, private=self.private,
                                              exists_ok=True)
            self.api.add_collection_item(coll.slug, repo_id, "model", exists_ok=True)

        with_retries(run, action=f"add {repo_id} to collection {title!r}", retries=self.retries,
                     wait_s=self.retry_wait_s, sleep=self.sleep)
        log.info("%s is in collection %r", repo_id, title)

    def publish(self, folder: Path, repo_id: str) -> PublishResult:
        """Create the repo if missing and commit what it lacks, all files in one commit.

        A failure leaves the repo as it was (LFS objects already sent are reused by the rerun),
        and a rerun uploads only missing or changed files, reporting the others as skipped.
        """
        folder = Path(folder)
        owner, _, name = repo_id.partition("/")
        if not owner or not name or "/" in name:
            raise QuantbotError(f"bad repository id {repo_id!r}", "use OWNER/NAME")
        files = self.prepare(folder)
        if not (self.api.token or get_token()):
            raise QuantbotError("no Hugging Face token",
                                "set HF_TOKEN or run `hf auth login` with a write token")
        result = with_retries(lambda: self._publish_once(files, repo_id),
                              action=f"publish {repo_id}", retries=self.retries,
                              wait_s=self.retry_wait_s, sleep=self.sleep)
        if self.collection:
            self._add_to_collection(repo_id)
        log.info("published %s: %d uploaded, %d already there", repo_id, len(result.uploaded),
                 len(result.skipped))
        return result
