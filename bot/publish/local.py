"""The local-folder hub: each repository as the Hub would hold it, branches included.

``ROOT/<owner>/<name>/`` holds ``main``'s files, as ``hf download`` gives them, and
``ROOT/<owner>/<name>/.branches/<branch>/`` each other branch's, complete (card and record
included), as ``hf download --revision <branch>`` gives them: ``from_pretrained`` of either folder
loads that variant. That is the finished-folder layout itself (:mod:`runners.results`), so a
local hub's repository folder publishes again as it is (``quantbot publish ROOT/o/n --to hub``,
``run-job publish``).
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
import uuid
from pathlib import Path

from bot.publish.base import (
    CardSet,
    Held,
    LocalFile,
    PublishResult,
    branch_trees,
    card_base_model,
    card_set,
    check_card_update,
    check_same_source,
    folder_source,
    shown_path,
)
from runners.errors import QuantbotError
from runners.results import RUN_FILE, branch_dir

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

    :meth:`update_cards` swaps the repository in the same way with only its card files replaced
    (on ``main`` and in each ``.branches/<branch>/`` the record names), every other file linked
    as it was: one change for all branches, none when the cards are already there.
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

    @staticmethod
    def _held(cards: CardSet, branch: Path) -> Held:
        if not branch.is_dir():
            return Held.NO_BRANCH
        record = branch / RUN_FILE
        if not record.is_file():
            return Held.NO_RECORD
        same = filecmp.cmp(record, cards.record.abs, shallow=False)
        return Held.SAME_RECORD if same else Held.OTHER_RECORD

    def update_cards(self, folder: Path, repo_id: str) -> PublishResult:
        """Replace only the card files of the published ``ROOT/repo_id`` on every branch the
        folder's record names (:func:`bot.publish.base.card_set`); a rerun with the same card
        changes nothing. Refused, before any change, as the Hub publisher refuses."""
        cards = card_set(folder)
        dest = self.repo_path(repo_id)
        check_card_update(repo_id, dest.is_dir(),
                          {b: self._held(cards, branch_dir(dest, b)) for b in cards.branches},
                          where=str(self.root))
        uploaded: list[str] = []
        skipped: list[str] = []
        for branch in cards.branches:
            for f in cards.files:
                held = branch_dir(dest, branch) / f.path
                same = held.is_file() and filecmp.cmp(held, f.abs, shallow=False)
                (skipped if same else uploaded).append(shown_path(branch, f.path))
        if uploaded:
            trees = branch_trees(dest)
            names = {f.path for f in cards.files}
            for branch in cards.branches:
                kept = [f for f in trees[branch] if f.path not in names]
                trees[branch] = sorted([*kept, *cards.files], key=lambda f: f.path)
            _swap_in(trees, dest)
        log.info("%s: card files updated in %s on %d branch(es): %d written, %d unchanged",
                 repo_id, dest, len(cards.branches), len(uploaded), len(skipped))
        return PublishResult(repo_id=repo_id, location=str(dest), uploaded=uploaded,
                             skipped=skipped)
