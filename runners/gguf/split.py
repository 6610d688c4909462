"""Splitting a finished GGUF into parts under a size limit, keeping the run record true."""

from __future__ import annotations

import logging
from pathlib import Path

from runners.gguf import llama_tools
from runners.llamacpp import Toolchain
from runners.results import RUN_FILE, load_run

log = logging.getLogger(__name__)


def split_gguf(tc: Toolchain, path: Path, max_bytes: int) -> list[Path]:
    """Split ``path`` with llama-gguf-split into ``<stem>-0000i-of-0000n.gguf`` beside it.

    The original is removed once the parts exist. llama-gguf-split counts in whole decimal
    megabytes, so the limit is rounded down to one (at least 1 MB).
    """
    size = f"{max(1, max_bytes // 10**6)}M"
    parts = llama_tools.split(tc, path, path.with_suffix(""), size)
    if not parts:
        raise RuntimeError(f"llama-gguf-split wrote no parts for {path}")
    path.unlink()
    log.info("split %s into %d parts of at most %s", path.name, len(parts), size)
    return parts


def record_parts(folder: Path, replaced: dict[str, list[str]]) -> bool:
    """Rewrite ``quantbot.json`` so each split file's variant lists its parts.

    Returns False when the folder has no run record (nothing to update).
    """
    if not (folder / RUN_FILE).is_file():
        return False
    run = load_run(folder)
    for variant in run.variants:
        files: list[str] = []
        for name in variant.files:
            files += replaced.get(name, [name])
        variant.files[:] = files
    run.save(folder)
    return True
