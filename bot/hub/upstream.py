"""Watching the sources of our releases: did a model we published change upstream?

Every card quantbot publishes records, in its metadata, the source commit and the Hub etag of
each watched source file (weights, config, tokenizer, chat template). One poll lists our
repositories with their card data (the listing the watcher already makes), asks the Hub for each
source's current files (one tree listing per source, bounded), and reports the sources whose
watched files changed: their issue gets a comment offering ``/quantize`` again (or a new issue
is opened), once per new commit.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from huggingface_hub import HfApi

from bot.hub.pages import Bounds, Listing, read_listing
from bot.hub.retry import with_retries
from runners.source import is_repo_id

log = logging.getLogger(__name__)

#: Sources checked per poll at most: each costs a model info and a (bounded) tree listing.
MAX_SOURCES = 50
#: Files of one source's tree listing read at most (the Hub serves 1000 per page).
MAX_TREE_FILES = 100_000
#: Source files whose change makes a release stale: weights, config, tokenizer, chat template.
WATCHED_FILES = ("*.safetensors", "config.json", "tokenizer.json", "tokenizer.model",
                 "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                 "chat_template.json")


@dataclass(frozen=True)
class Published:
    """One of our repositories and what its card says it was made from."""

    repo_id: str
    source: str
    revision: str
    files: dict[str, str]  # watched file → etag when it was made


@dataclass(frozen=True)
class UpstreamChange:
    """A source whose watched files changed since our release of it."""

    source: str
    old_revision: str
    new_revision: str
    changed: list[str]  # changed, added or removed watched files
    releases: list[str]  # our repositories made from the old commit

    @property
    def marker(self) -> str:
        return f"<!-- quantbot:upstream={self.new_revision} -->"


def published_from_card(repo_id: str, card: Mapping[str, Any] | None) -> Published | None:
    """What a listed repo's card data says (None: not a quantbot release with a Hub source)."""
    if not isinstance(card, Mapping):
        return None
    ours = card.get("quantbot")
    source = card.get("base_model")
    if not (isinstance(ours, Mapping) and is_repo_id(source)):
        return None
    revision, files = ours.get("source_revision"), ours.get("source_files")
    if not (isinstance(revision, str) and isinstance(files, Mapping)):
        return None
    return Published(repo_id, str(source), revision,
                     {str(k): str(v) for k, v in files.items()})


def watched(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in patterns)


def changed_files(recorded: Mapping[str, str], current: Mapping[str, str],
                  patterns: Iterable[str]) -> list[str]:
    """Watched files whose etag differs, that appeared or that disappeared (pure)."""
    patterns = tuple(patterns)
    names = {p for p in (*recorded, *current) if watched(p, patterns)}
    return sorted(p for p in names if recorded.get(p) != current.get(p))


def _etags(entries: Iterable[Any]) -> dict[str, str]:
    """Path → etag (an LFS file's sha256, else its git blob id) of a tree listing's files."""
    files: dict[str, str] = {}
    for e in entries:
        if not isinstance(e, dict) or e.get("type") != "file" or not isinstance(e.get("path"), str):
            continue
        lfs = e.get("lfs")
        etag = lfs.get("oid") if isinstance(lfs, dict) else e.get("oid")
        if isinstance(etag, str) and etag:
            files[e["path"]] = etag
    return files


def upstream_changes(api: HfApi, releases: list[Published], bounds: Bounds,
                     patterns: Iterable[str] = WATCHED_FILES) -> list[UpstreamChange]:
    """Ask the Hub for each source's current watched files; the sources that changed. Each tree
    listing is read within ``bounds`` (bot/hub/pages.py); a source whose listing stops early is
    left for the next poll, since a partial tree would report files as changed."""
    by_source: dict[tuple[str, str], list[Published]] = {}
    for release in releases:
        by_source.setdefault((release.source, release.revision), []).append(release)
    changes = []
    for (source, revision), ours in list(by_source.items())[:MAX_SOURCES]:
        def current(source: str = source) -> tuple[str, Listing]:
            sha = str(api.model_info(source).sha)
            url = f"{api.endpoint}/api/models/{source}/tree/{quote(sha, safe='')}"
            return sha, read_listing(url, {"recursive": "true"}, api._build_hf_headers(), bounds,
                                     what=f"the files of {source}")

        new_revision, listing = with_retries(current, action=f"read the files of {source}",
                                             retries=0)
        if new_revision == revision:
            continue
        if not listing.complete:
            log.warning("%s: not compared this poll: its file listing stopped early (%s)",
                        source, listing.stopped)
            continue
        files = _etags(listing.entries)
        changed = changed_files(ours[0].files, files, patterns)
        if changed:
            changes.append(UpstreamChange(source, revision, new_revision, changed,
                                          sorted(r.repo_id for r in ours)))
        else:
            log.info("%s moved to %s without touching weights, tokenizer or template", source,
                     new_revision[:12])
    return changes
