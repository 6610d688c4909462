"""Publishing a repository folder to the Hugging Face Hub: one commit per branch, resumable."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import RepositoryNotFoundError

from bot.hub.client import hub_api
from bot.hub.retry import with_retries
from bot.methods import source_name_of
from bot.publish.base import (
    CardSet,
    Held,
    LocalFile,
    PublishResult,
    branch_trees,
    card_set,
    check_card_update,
    check_same_source,
    first_base_model,
    folder_source,
    list_folder,
    shown_path,
)
from runners.errors import QuantbotError
from runners.progress import hub_bars
from runners.results import MAIN_BRANCH, RUN_FILE
from runners.settings import HUB_MAX_FILE_BYTES
from runners.units import human_bytes

log = logging.getLogger(__name__)

__all__ = ["HubPublisher", "LocalFile", "RemoteFile", "list_folder", "unchanged"]

_CHUNK = 1 << 20
GITATTRIBUTES = ".gitattributes"  # made by the Hub with the repo; never ours to delete


@dataclass(frozen=True)
class RemoteFile:
    """One file already in the repo: its LFS sha256, or its git blob id for regular files."""

    size: int
    sha256: str | None
    blob_id: str | None


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


def _check_repo_id(repo_id: str) -> None:
    owner, _, name = repo_id.partition("/")
    if not owner or not name or "/" in name:
        raise QuantbotError(f"bad repository id {repo_id!r}", "use OWNER/NAME")


class HubPublisher:
    """Publishes a repository folder to ``<endpoint>/<repo_id>``: one commit per branch.

    The folder's layout (:func:`bot.publish.base.branch_trees`) says the branches: its root is
    ``main``, ``.branches/<branch>/`` each other branch (with the card and record). Each commit
    makes its branch hold exactly the folder's files for it (new and changed files added, files
    the folder no longer has deleted, ``.gitattributes`` kept), so a branch never shows half a
    set and a rerun commits nothing where nothing changed. A missing branch starts from the
    repository's initial commit (``.gitattributes`` only), never from ``main``, so it never
    shows another variant's files, even if its commit fails. Branches on the Hub that the folder
    lacks are left as they are.

    Before any commit to a repository that already holds files, the ``base_model`` of its card
    must be the folder's source (``quantbot.json``): a release of ``b/Name`` is refused where
    ``a/Name``'s is, with the fix to publish it as ``<owner>/b_Name-<SUFFIX>``
    (:func:`bot.publish.base.collision_repo_id`).

    Requests: ``POST /api/repos/create`` (409 = exists), ``GET /api/models/R/tree/main``
    (recursive, paged), ``GET /api/models/R`` (card data, only when the repo holds files); per
    branch other than main: ``GET /api/models/R/refs`` (once), ``GET …/commits/main`` (once, when
    a branch is missing) + ``POST …/branch/B``, ``GET …/tree/B``; then, per branch where anything
    changed, one commit: ``POST /api/validate-yaml`` (when README.md changes),
    ``POST …/preupload/B``, ``POST R.git/info/lfs/objects/batch`` + one ``PUT`` per new LFS object
    (+ verify), ``POST /api/models/R/commit/B``. Optional collection: ``POST /api/collections``
    and ``POST /api/collections/SLUG/items``.

    :meth:`update_cards` changes only the card files of a published repository: ``GET …/refs``,
    then per branch ``GET …/tree/B`` (top level) and, where a card file changed, one commit of
    additions only.
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

    def _require_token(self) -> None:
        if not (self.api.token or get_token()):
            raise QuantbotError("no Hugging Face token",
                                "set HF_TOKEN or run `hf auth login` with a write token")

    # -- before any request: the folder must be publishable as a whole -----------------------
    def prepare(self, folder: Path) -> dict[str, list[LocalFile]]:
        """Each branch's files; every one must already be under the per-file limit.

        Splitting is the quantizer's job (GGUF files are split where they are made, and the card
        lists the parts); a publisher publishes what a finished folder holds and nothing else.
        """
        trees = branch_trees(folder)
        for branch, files in trees.items():
            oversized = [f for f in files if f.size > self.max_file_bytes]
            if oversized:
                f = oversized[0]
                raise QuantbotError(
                    f"{shown_path(branch, f.path)} is {human_bytes(f.size)}, over the Hub's "
                    f"per-file limit of {human_bytes(self.max_file_bytes)}",
                    "quantize again with --split-size under the limit (GGUF files are split with "
                    "llama-gguf-split where they are made, and the card lists the parts)")
        return trees

    # -- requests ------------------------------------------------------------------------------
    def _remote(self, repo_id: str, branch: str, recursive: bool = True) -> dict[str, RemoteFile]:
        remote: dict[str, RemoteFile] = {}
        for entry in self.api.list_repo_tree(repo_id, recursive=recursive, revision=branch):
            size = getattr(entry, "size", None)
            if size is None:  # a folder
                continue
            lfs = entry.lfs  # type: ignore[union-attr]
            remote[entry.path] = RemoteFile(size=int(size), sha256=lfs.sha256 if lfs else None,
                                            blob_id=entry.blob_id)  # type: ignore[union-attr]
        return remote

    def _check_owner(self, repo_id: str, main: dict[str, RemoteFile], source: str | None) -> None:
        """A repository holding files must hold a release of the folder's source model."""
        if not set(main) - {GITATTRIBUTES}:
            return
        card = self.api.model_info(repo_id).card_data
        check_same_source(repo_id, first_base_model(getattr(card, "base_model", None)), source)

    def _commit(self, repo_id: str, branch: str, files: list[LocalFile],
                remote: dict[str, RemoteFile]) -> tuple[list[str], list[str], list[str]]:
        """Make ``branch`` hold exactly ``files`` in at most one commit: (uploaded, skipped,
        deleted) paths."""
        todo = [f for f in files if not unchanged(f, remote.get(f.path))]
        done = sorted(f.path for f in files if f not in todo)
        local = {f.path for f in files}
        gone = sorted(p for p in remote if p not in local and p != GITATTRIBUTES)
        if todo or gone:
            ops: list[CommitOperationAdd | CommitOperationDelete] = [
                CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=str(f.abs)) for f in todo]
            ops += [CommitOperationDelete(path_in_repo=p) for p in gone]
            verb = "Upload" if len(todo) == len(files) and not gone else "Update"
            with hub_bars():  # gigabytes of weights: no byte-bar frames in a CI log
                self.api.create_commit(repo_id, operations=ops, revision=branch,
                                       commit_message=f"{verb} {len(todo)} file(s) with quantbot"
                                       + (f", delete {len(gone)}" if gone else ""))
        return sorted(f.path for f in todo), done, gone

    def _branches(self, repo_id: str, wanted: list[str]) -> None:
        """Create the missing ``wanted`` branches from the initial commit."""
        have = {b.name for b in self.api.list_repo_refs(repo_id).branches}
        for other in sorted(have - set(wanted) - {MAIN_BRANCH}):
            log.info("%s: branch %s is not in the folder; left as it is", repo_id, other)
        missing = [b for b in wanted if b not in have]
        if missing:
            initial = self.api.list_repo_commits(repo_id)[-1].commit_id
            for branch in missing:
                self.api.create_branch(repo_id, branch=branch, revision=initial, exist_ok=True)

    def _publish_once(self, trees: dict[str, list[LocalFile]], repo_id: str,
                      source: str | None) -> PublishResult:
        self.api.create_repo(repo_id, private=self.private, exist_ok=True)
        main = self._remote(repo_id, MAIN_BRANCH)
        self._check_owner(repo_id, main, source)
        others = [b for b in trees if b != MAIN_BRANCH]
        if others:
            self._branches(repo_id, others)
        uploaded: list[str] = []
        skipped: list[str] = []
        deleted: list[str] = []
        for branch, files in trees.items():
            remote = main if branch == MAIN_BRANCH else self._remote(repo_id, branch)
            up, done, gone = self._commit(repo_id, branch, files, remote)
            uploaded += (shown_path(branch, p) for p in up)
            skipped += (shown_path(branch, p) for p in done)
            deleted += (shown_path(branch, p) for p in gone)
        return PublishResult(repo_id=repo_id, location=f"{self.api.endpoint}/{repo_id}",
                             uploaded=uploaded, skipped=skipped, deleted=deleted)

    @staticmethod
    def _held(cards: CardSet, remote: dict[str, RemoteFile] | None) -> Held:
        if remote is None:
            return Held.NO_BRANCH
        if RUN_FILE not in remote:
            return Held.NO_RECORD
        return Held.SAME_RECORD if unchanged(cards.record, remote[RUN_FILE]) else Held.OTHER_RECORD

    def _update_cards_once(self, cards: CardSet, repo_id: str) -> PublishResult:
        exists = True
        try:
            have = {b.name for b in self.api.list_repo_refs(repo_id).branches}
        except RepositoryNotFoundError:
            exists, have = False, set()
        # The card files and the record lie at the top level: no need to list whole branches.
        remotes = {b: self._remote(repo_id, b, recursive=False)
                   for b in cards.branches if b in have}
        check_card_update(repo_id, exists,
                          {b: self._held(cards, remotes.get(b)) for b in cards.branches},
                          where="the Hub (or the token cannot see it)")
        uploaded: list[str] = []
        skipped: list[str] = []
        for branch, remote in remotes.items():
            todo = [f for f in cards.files if not unchanged(f, remote.get(f.path))]
            skipped += (shown_path(branch, f.path) for f in cards.files if f not in todo)
            if todo:
                self.api.create_commit(
                    repo_id, revision=branch,
                    operations=[CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=str(f.abs))
                                for f in todo],
                    commit_message=f"Update the model card ({len(todo)} file(s)) with quantbot")
                uploaded += (shown_path(branch, f.path) for f in todo)
        return PublishResult(repo_id=repo_id, location=f"{self.api.endpoint}/{repo_id}",
                             uploaded=uploaded, skipped=skipped)

    def update_cards(self, folder: Path, repo_id: str) -> PublishResult:
        """Put ``folder``'s card files on every branch its record names, in one commit of
        additions per branch where they changed, so that the card of a repository published on
        its own can show every format of its release; model files and other branches are never
        touched, and a rerun with the same card commits nothing.

        Refused before any change where the repository does not exist or a branch does not hold
        the very ``quantbot.json`` the card was rendered from (:func:`check_card_update`).
        """
        _check_repo_id(repo_id)
        cards = card_set(folder)
        self._require_token()
        result = with_retries(lambda: self._update_cards_once(cards, repo_id),
                              action=f"update the card of {repo_id}", retries=self.retries,
                              wait_s=self.retry_wait_s, sleep=self.sleep)
        log.info("%s: card files updated on %d branch(es): %d uploaded, %d unchanged", repo_id,
                 len(cards.branches), len(result.uploaded), len(result.skipped))
        return result

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
        """Create the repo if missing and give each branch what it lacks, one commit a branch.

        A failure leaves each branch as it was or complete (LFS objects already sent are reused
        by the rerun), and a rerun uploads only missing or changed files, reporting the others as
        skipped; ``main`` is committed first.
        """
        folder = Path(folder)
        _check_repo_id(repo_id)
        trees = self.prepare(folder)
        source = folder_source(folder)
        self._require_token()
        result = with_retries(lambda: self._publish_once(trees, repo_id, source),
                              action=f"publish {repo_id}", retries=self.retries,
                              wait_s=self.retry_wait_s, sleep=self.sleep)
        if self.collection:
            self._add_to_collection(repo_id)
        log.info("published %s (%d branch(es)): %d uploaded, %d already there, %d deleted",
                 repo_id, len(trees), len(result.uploaded), len(result.skipped),
                 len(result.deleted))
        return result
