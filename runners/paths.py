"""Where quantbot keeps what it builds and downloads (the user's cache directory)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """Root of quantbot's cache: ``$QUANTBOT_CACHE`` or the platform's user cache directory."""
    root = os.environ.get("QUANTBOT_CACHE") or platformdirs.user_cache_dir("quantbot")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
