"""Every published file's size and sha256, written into ``quantbot.json`` by the make step and
checked by the publish step before it uploads anything.

The publish step holds the Hub token, so it must publish exactly what the make step finished and
read nothing else: :func:`checked_record` refuses a folder holding a symbolic link (one to
``/proc/self/environ`` would upload the token), a device or pipe, a file the record does not
list, or a file whose size or sha256 differs from the record. The record's own copies on each
branch must be the record, and the card files (``README.md``, ``quality.png``), which the
report job renders again from the records, must be plain files. Files are opened without
following links and checked to be regular before a byte is read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from bot.cards import CARD_FILES
from runners.errors import QuantbotError
from runners.results import BRANCHES_DIR, RUN_FILE, QuantRun, load_run

#: Where ``quantbot.json`` keeps them: ``provenance.files``, ``{path: {"size", "sha256"}}``.
FILES_KEY = "files"
#: Files every branch carries beside its own that the record cannot hash: itself and the card.
REPOSITORY_FILES = frozenset({RUN_FILE, *CARD_FILES})


def file_digest(path: Path) -> tuple[int, str]:
    """``(size, sha256)`` of a regular file, opened without following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise QuantbotError(f"{path} is not a regular file", "remake the repository folder")
        sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    return info.st_size, sha256


def _entries(folder: Path) -> tuple[list[str], list[str]]:
    """``(regular files, problems)`` under ``folder``, hidden ones included, links not
    followed; paths relative and POSIX."""
    files, problems = [], []
    for root, dirs, names in os.walk(folder):
        for name in [*dirs, *names]:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                problems.append(f"{rel} is a symbolic link")
            elif stat.S_ISREG(mode):
                files.append(rel)
            elif not stat.S_ISDIR(mode):
                problems.append(f"{rel} is not a regular file")
    return sorted(files), problems


def _repository_file(rel: str) -> bool:
    """The record or a card file at the root or at the root of a branch folder."""
    parts = rel.split("/")
    return parts[-1] in REPOSITORY_FILES and (
        len(parts) == 1 or (len(parts) == 3 and parts[0] == BRANCHES_DIR))


def folder_manifest(folder: Path) -> dict[str, dict[str, int | str]]:
    """``{path: {"size", "sha256"}}`` of the files a finished folder publishes (every branch's
    own files), less the record and the card files."""
    files, problems = _entries(Path(folder))
    if problems:
        raise QuantbotError(f"{folder}: {problems[0]}", "remake the repository folder")
    out: dict[str, dict[str, int | str]] = {}
    for rel in files:
        parts = rel.split("/")
        hidden = any(p.startswith(".") for p in parts if p != BRANCHES_DIR)
        if hidden or _repository_file(rel):
            continue
        size, sha = file_digest(Path(folder) / rel)
        out[rel] = {"size": size, "sha256": sha}
    return out


def recorded_files(run: QuantRun) -> dict[str, dict]:
    """The file hashes a record holds (empty for a record made before they were kept)."""
    files = run.provenance.get(FILES_KEY)
    return files if isinstance(files, dict) else {}


def _differences(folder: Path, files: list[str], recorded: dict[str, dict]) -> list[str]:
    """Why the regular ``files`` of ``folder`` are not exactly the ``recorded`` ones (with the
    record and card files); empty when they are."""
    problems = []
    record = (folder / RUN_FILE).read_bytes()
    for rel in files:
        path = folder / rel
        if _repository_file(rel):
            if rel.endswith(RUN_FILE) and path.read_bytes() != record:
                problems.append(f"{rel} differs from the {RUN_FILE} at the root")
            continue
        want = recorded.get(rel)
        if want is None:
            problems.append(f"{rel} is not in {RUN_FILE}")
            continue
        size, sha = file_digest(path)
        if size != want.get("size") or sha != want.get("sha256"):
            problems.append(f"{rel} has changed since {RUN_FILE} recorded it "
                            f"({size} bytes, sha256 {sha[:12]}…; recorded {want.get('size')} "
                            f"bytes, {str(want.get('sha256'))[:12]}…)")
    problems += [f"{rel} is in {RUN_FILE} but missing" for rel in sorted(set(recorded) - set(files))]
    return problems


def checked_record(folder: Path) -> QuantRun:
    """``folder``'s record, once the folder is checked to be exactly what the record lists;
    the tree is checked for links before the record is read (a record linked to a JSON file of
    the runner's would otherwise be quoted in the error)."""
    folder = Path(folder)
    for path in (folder, folder.parent):
        if path.is_symlink():
            raise QuantbotError(f"{path} is a symbolic link, not a folder the make step made",
                                "publish nothing from it; make the repository again")
    files, problems = _entries(folder)
    run = None
    if not problems:
        run = load_run(folder)
        recorded = recorded_files(run)
        if not recorded:
            raise QuantbotError(f"{folder / RUN_FILE} records no file hashes, so its files "
                                "cannot be checked before publishing",
                                "make the repository again with this quantbot (`quantbot "
                                "run-job make`)")
        problems = _differences(folder, files, recorded)
    if problems or run is None:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                           if len(problems) > 5 else "")
        raise QuantbotError(f"{folder} is not what its make step recorded: {shown}",
                            "publish nothing from it; make the repository again on a clean "
                            "runner and find out what changed it")
    return run
