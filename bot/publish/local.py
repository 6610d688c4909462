"""The local-folder hub: each repository as the Hub would hold it, branches included.

``ROOT/<owner>/<name>/`` holds ``main``'s files, as ``hf download`` gives them, and
``ROOT/<owner>/<name>/.branches/<branch>/`` each other branch's, complete (card and record
included), as ``hf download --revision <branch>`` gives them: ``from_pretrained`` of either folder
loads that variant. That is the finished-folder layout itself (:mod:`runners.results`), so a
local hub's repository folder publishes again as it is (``quantbot publish ROOT/o/n --to hub``,
``run-job publish``).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from bot.publish.base import (
    LocalFile,
    PublishResult,
    branch_trees,
    card_base_model,
    check_same_source,
    folder_source,
    shown_path,
)
from runners.errors import QuantbotError
from runners.results import branch_dir

log = logging.getLogger(__name__)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link (no second copy of multi-GB files) where the file system allows, else copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _swap_in(trees: dict[str, list[LocalFile]], dest: Path) -> None:
    """Make ``dest`` hold exactly ``trees`` in one rename: readers see the old or the new set."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    staging = dest.parent / f".{dest.name}.{tag}.partial"
    old = dest.parent / f".{dest.name}.{tag}.old"
    try:
        staging.mkdir()
        for branch, files in trees.items():
            for f in files:
                _link_or_copy(f.abs, branch_dir(staging, branch) / f.path)
        if dest.exists():
            dest.rename(old)
        staging.rename(dest)
    except BaseException:
        if old.exists() and not dest.exists():
            old.rename(dest)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


class LocalHub:
    """A folder laid out like the Hub. Publishing swaps the whole repository in at once, every
    branch with it (so, unlike the Hub, a branch the new folder lacks goes).

    As :class:`bot.publish.hub.HubPublisher`, it refuses to replace a repository whose card
    names another ``base_model`` than the folder's source, with the fix to publish it as
    ``<owner>/<source owner>_<name>`` (:func:`bot.publish.base.collision_repo_id`).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def repo_path(self, repo_id: str) -> Path:
        owner, _, name = repo_id.partition("/")
        if not owner or not name or "/" in name or name.startswith("."):
            raise QuantbotError(f"bad repository id {repo_id!r}", "use OWNER/NAME")
        return self.root / owner / name

    def _check_owner(self, repo_id: str, source: str | None) -> None:
        main = self.repo_path(repo_id)
        if not (main.is_dir() and any(main.iterdir())):
            return
        card = main / "README.md"
        published = card_base_model(card.read_text(encoding="utf-8")) if card.is_file() else None
        check_same_source(repo_id, published, source, target=str(self.root))

    def publish(self, folder: Path, repo_id: str) -> PublishResult:
        """Copy ``folder``'s branches to ``ROOT/repo_id`` atomically (hard links where possible)."""
        folder = Path(folder)
        dest = self.repo_path(repo_id)
        trees = branch_trees(folder)
        self._check_owner(repo_id, folder_source(folder))
        _swap_in(trees, dest)
        uploaded = [shown_path(b, f.path) for b, files in trees.items() for f in files]
        log.info("published %s to %s (%d branch(es), %d files)", repo_id, dest, len(trees),
                 len(uploaded))
        return PublishResult(repo_id=repo_id, location=str(dest), uploaded=uploaded)
