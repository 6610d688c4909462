"""The local-folder hub: ``ROOT/<owner>/<repo>/``, exactly the files that would be pushed."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from bot.publish.base import PublishResult
from runners.errors import QuantbotError

log = logging.getLogger(__name__)


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link (no second copy of multi-GB files) where the file system allows, else copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class LocalHub:
    """A folder laid out like the Hub. Publishing swaps the whole repository folder in at once."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def repo_path(self, repo_id: str) -> Path:
        owner, _, name = repo_id.partition("/")
        if not owner or not name or "/" in name or name.startswith("."):
            raise QuantbotError(f"bad repository id {repo_id!r}", "use OWNER/NAME")
        return self.root / owner / name

    def publish(self, folder: Path, repo_id: str) -> PublishResult:
        """Copy ``folder`` to ``ROOT/repo_id`` atomically: readers see the old or the new set."""
        folder = Path(folder)
        if not (folder / "README.md").is_file():
            raise QuantbotError(f"{folder} has no README.md (model card)",
                                "publish a folder made by `quantbot quantize`")
        dest = self.repo_path(repo_id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:8]
        staging = dest.parent / f".{dest.name}.{tag}.partial"
        old = dest.parent / f".{dest.name}.{tag}.old"
        try:
            shutil.copytree(folder, staging, copy_function=_link_or_copy)
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
        files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
        log.info("published %s to %s (%d files)", repo_id, dest, len(files))
        return PublishResult(repo_id=repo_id, location=str(dest), uploaded=files)
