"""The publisher interface: one finished repository folder in, one published repository out.

A finished folder is laid out by branch (see :mod:`runners.results`): its non-hidden files are
``main``; ``.branches/<branch>/`` holds each other branch's own files, and each branch also gets
the root's repository files (those no ``main`` variant lists in ``quantbot.json``: the card, the
record, the card's plot) unless it holds its own. :func:`branch_trees` reads that layout, so a
publisher publishes branches without knowing any method.

A repository is never overwritten by another model's release: before its first change to an
existing repository, a publisher compares the ``base_model`` of the published card with the
folder's source (:func:`check_same_source`). Colliding releases are named once, here
(:func:`collision_repo_id`): the later one is published as ``<owner>/<source owner>_<name>``,
e.g. ``quantbot/b_Name-GGUF`` for ``b/Name`` when ``quantbot/Name-GGUF`` holds ``a/Name``.

Publishing makes each branch hold exactly the folder's files. A card-only update
(:meth:`Publisher.update_cards`) is the one other change: the card files (:func:`card_set`) go on
every branch the record names of a repository that already holds that very record, and nothing
else is touched; :func:`check_card_update` says when a repository must not get them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

import yaml

from bot.cards import CARD_FILE, CARD_FILES
from runners.errors import QuantbotError
from runners.results import BRANCHES_DIR, MAIN_BRANCH, RUN_FILE, QuantRun, load_run

CARD = CARD_FILE
#: A branch name the Hub and git both accept, and that reads as a variant name.
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class PublishResult:
    """What a publisher did with one repository folder.

    Paths on ``main`` are bare; paths on another branch read ``<branch>:<path>`` (git's notation).
    """

    repo_id: str
    location: str  # a local path or a Hub URL
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # files the folder no longer holds


class Publisher(Protocol):
    """Publishes a complete repository folder all-or-nothing per branch; a rerun resumes."""

    def publish(self, folder: Path, repo_id: str) -> PublishResult: ...

    def update_cards(self, folder: Path, repo_id: str) -> PublishResult:
        """Put ``folder``'s card files (:func:`card_set`) on every branch of the published
        ``repo_id``, one commit a branch where they changed, and touch no other file."""
        ...


@dataclass(frozen=True)
class LocalFile:
    """One file of the folder to publish."""

    path: str  # path in the branch, POSIX
    abs: Path
    size: int


def list_folder(folder: Path) -> list[LocalFile]:
    """Every file under ``folder`` except hidden ones (``.git/``, ``.cache/``, ``.branches/``)."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append(LocalFile(rel.as_posix(), p, p.stat().st_size))
    return out


def shown_path(branch: str, path: str) -> str:
    """How results name a file: bare on ``main``, ``<branch>:<path>`` elsewhere."""
    return path if branch == MAIN_BRANCH else f"{branch}:{path}"


def _repository_files(folder: Path, main: list[LocalFile]) -> list[LocalFile]:
    """The root's files that belong to the repository rather than to a ``main`` variant."""
    if not (folder / RUN_FILE).is_file():
        return [f for f in main if f.path == CARD]
    on_main = {p for v in load_run(folder).variants if v.branch == MAIN_BRANCH for p in v.files}
    return [f for f in main if f.path not in on_main]


def _record(folder: Path) -> QuantRun:
    """The folder's ``quantbot.json``, or the error saying it is no quantbot record."""
    try:
        return load_run(folder)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise QuantbotError(f"{folder / RUN_FILE} is not a quantbot record ({exc})",
                            "publish a folder made by `quantbot quantize`") from exc


def branch_trees(folder: Path) -> dict[str, list[LocalFile]]:
    """Each branch's files as it is to be published, ``main`` first, then by name."""
    folder = Path(folder)
    if not (folder / CARD).is_file():
        raise QuantbotError(f"{folder} has no README.md (model card)",
                            "publish a folder made by `quantbot quantize`")
    main = list_folder(folder)
    trees = {MAIN_BRANCH: main}
    root = folder / BRANCHES_DIR
    if not root.is_dir():
        return trees
    shared = _repository_files(folder, main)
    for sub in sorted(root.iterdir()):
        if not sub.is_dir() or not _BRANCH.fullmatch(sub.name) or sub.name == MAIN_BRANCH \
                or sub.name.endswith(".lock"):
            raise QuantbotError(f"{sub} is not a branch folder",
                                f"{BRANCHES_DIR}/ holds one folder per branch, named like "
                                "gptq-8bit-32g-actorder; remove it")
        own = list_folder(sub)
        if not own:
            raise QuantbotError(f"branch folder {sub} is empty", "quantize this variant again")
        names = {f.path for f in own}
        trees[sub.name] = sorted([*own, *(f for f in shared if f.path not in names)],
                                 key=lambda f: f.path)
    return trees


def card_base_model(text: str) -> str | None:
    """``base_model`` of a card's YAML front matter (the first one when it lists several)."""
    match = re.match(r"---\r?\n(.*?)\r?\n---\r?\n", text, re.DOTALL)
    if not match:
        return None
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    return first_base_model(meta.get("base_model") if isinstance(meta, dict) else None)


def first_base_model(value: object) -> str | None:
    """A card's ``base_model`` (a string or a list) as one repository id."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def folder_source(folder: Path) -> str | None:
    """The source model a finished folder was made from: its record, else its card."""
    folder = Path(folder)
    if (folder / RUN_FILE).is_file():
        return _record(folder).source.repo_id
    card = folder / CARD
    return card_base_model(card.read_text(encoding="utf-8")) if card.is_file() else None


def collision_repo_id(repo_id: str, source: str) -> str:
    """Where a release of ``source`` goes when ``repo_id`` holds another model's: the source's
    owner joins the name (``quantbot/Name-GGUF`` → ``quantbot/b_Name-GGUF`` for ``b/Name``)."""
    owner, _, name = repo_id.partition("/")
    return f"{owner}/{source.split('/')[0]}_{name}"


def check_same_source(repo_id: str, published: str | None, source: str | None,
                      target: str = "hub") -> None:
    """Refuse to change ``repo_id`` (which already holds a release) for another model's files.

    ``published`` is the ``base_model`` of the repository's card, ``source`` the folder's.
    """
    if published == source:
        return
    held = f"a release of {published}" if published else "files whose card names no base_model"
    made = f"a release of {source}" if source else "a folder that names no source model"
    if source:
        other = collision_repo_id(repo_id, source)
        fix = (f"publish it as {other}: `quantbot publish FOLDER --to {target} --repo-id {other}` "
               "(the source's owner joins the name when two models share one)")
    else:
        fix = "publish a folder made by `quantbot quantize`, or choose another --repo-id"
    raise QuantbotError(f"{repo_id} already holds {held}; this is {made}, and a repository is "
                        "never overwritten by another model", fix)


# -- the card-only update -------------------------------------------------------------------------
@dataclass(frozen=True)
class CardSet:
    """What a card-only update puts in a published repository: the card files, on the branches
    the record names (``main`` first), and the record the repository must already hold, so that
    a card never describes files other than those beside it."""

    files: list[LocalFile]  # README.md, and quality.png where the card shows the plot
    record: LocalFile  # quantbot.json
    branches: list[str]


def card_set(folder: Path) -> CardSet:
    """The card files of a folder holding ``quantbot.json`` and its rendered card (a finished
    repository folder, or the record alone with the card rendered again beside it)."""
    folder = Path(folder)
    if not (folder / RUN_FILE).is_file():
        raise QuantbotError(f"{folder} has no {RUN_FILE}",
                            "render the cards from the records of published repositories "
                            "(`quantbot run-job cards`)")
    if not (folder / CARD).is_file():
        raise QuantbotError(f"{folder} has no {CARD} (model card)",
                            f"render it first from {RUN_FILE} (`quantbot card FOLDER`)")
    run = _record(folder)
    files = [LocalFile(name, folder / name, (folder / name).stat().st_size)
             for name in CARD_FILES if (folder / name).is_file()]
    record = folder / RUN_FILE
    others = sorted({v.branch for v in run.variants} - {MAIN_BRANCH})
    return CardSet(files=files, record=LocalFile(RUN_FILE, record, record.stat().st_size),
                   branches=[MAIN_BRANCH, *others])


class Held(Enum):
    """What one branch of a published repository holds in place of the folder's record."""

    NO_BRANCH = "no branch"
    NO_RECORD = "no record"
    OTHER_RECORD = "another record"
    SAME_RECORD = "the same record"


def check_card_update(repo_id: str, exists: bool, held: dict[str, Held], where: str) -> None:
    """Refuse a card-only update, before any change, unless the repository exists and each
    branch to update holds the very record the card was rendered from (so quantbot published
    it, and the card describes the files beside it)."""
    if not exists:
        raise QuantbotError(f"{repo_id} does not exist on {where}, so it has no card to update",
                            "publish the repository first (`quantbot run-job publish` or "
                            "`quantbot publish FOLDER`); it carries its card")
    for branch, state in held.items():
        at = f"{repo_id} (branch {branch})"
        if state is Held.NO_BRANCH:
            raise QuantbotError(f"{at} does not exist, yet the record lists a variant there",
                                "publish the whole repository folder again (`quantbot run-job "
                                "publish`), then update the cards")
        if state is Held.NO_RECORD:
            raise QuantbotError(f"{at} holds no {RUN_FILE}: quantbot did not publish it, and "
                                "a card-only update changes only quantbot's repositories",
                                "publish it with `quantbot publish FOLDER` (which carries its "
                                "card), or choose the repository quantbot published")
        if state is Held.OTHER_RECORD:
            raise QuantbotError(f"{at} holds another {RUN_FILE} than the one this card was "
                                "rendered from, so the card would describe other files",
                                "render the cards from the records that repository holds (the "
                                "report artifacts of the run that published it), or publish "
                                "this run first")
