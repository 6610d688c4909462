"""Where quantbot keeps what it builds and downloads (the user's cache directory)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import platformdirs
from filelock import FileLock


def cache_dir() -> Path:
    """Root of quantbot's cache: ``$QUANTBOT_CACHE`` or the platform's user cache directory."""
    root = os.environ.get("QUANTBOT_CACHE") or platformdirs.user_cache_dir("quantbot")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_once(dest: Path, make: Callable[[Path], None],
               ready: Callable[[Path], bool] = Path.is_dir) -> Path:
    """``dest``, made by ``make(tmp)`` into a fresh sibling folder and renamed into place, once:
    a file lock makes other processes wait for it, and a failed build leaves nothing behind."""
    if ready(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest.parent / f".{dest.name}.lock")):
        if ready(dest):
            return dest
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.partial"
        tmp.mkdir()
        try:
            make(tmp)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
