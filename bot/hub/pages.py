"""Paged Hub listings read within a bound on requests, entries and time, saying why they stopped.

The Hub pages ``GET /api/models`` through ``Link: <…>; rel="next"`` headers. huggingface_hub's
own pager follows them for as long as they come, so a server whose next link repeats, or that
answers empty pages with a next link, keeps a poll asking until the job's timeout. Here the
decision to read another page is :func:`stop_reason` (pure) over what has been read so far, and
:func:`read_listing` (I/O) only fetches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from huggingface_hub.utils import hf_raise_for_status, http_backoff

log = logging.getLogger(__name__)

#: Entries the Hub serves per page of /api/models at most.
HUB_PAGE_SIZE = 1000
#: Seconds one request may wait for an answer (huggingface_hub's default for listings is none).
REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Bounds:
    """The most one listing may cost."""

    max_entries: int
    max_pages: int
    max_seconds: float


@dataclass(frozen=True)
class Listing:
    """What a listing read, in how many requests, and why it stopped reading."""

    entries: tuple[Any, ...]
    pages: int
    stopped: str
    #: Whether it stopped at the listing's end or its entry limit (not at a bound or a bad link).
    complete: bool


def stop_reason(bounds: Bounds, *, pages: int, entries: int, last_page_size: int,
                next_url: str | None, seen: Sequence[str], elapsed_s: float) -> tuple[str, bool] | None:
    """Why to read no further page (and whether that is a normal end), or ``None`` to go on."""
    if next_url is None:
        return "the listing ended", True
    if entries >= bounds.max_entries:
        return f"reached its limit of {bounds.max_entries} entries", True
    if next_url in seen:
        return "its next link repeats a page already read", False
    if last_page_size == 0:
        return "an empty page pointed to another page", False
    if pages >= bounds.max_pages:
        return f"read {pages} pages, the most one listing may request", False
    if elapsed_s >= bounds.max_seconds:
        return f"took {elapsed_s:.0f} s, the most one listing may take", False
    return None


def read_listing(url: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]],
                 headers: Mapping[str, str], bounds: Bounds, *, what: str,
                 clock: Callable[[], float] = time.monotonic) -> Listing:
    """Follow ``url``'s pages (huggingface_hub's HTTP client and its retries of 429/5xx) until
    :func:`stop_reason` says stop; at most ``max_entries`` entries come back. A page that is not
    a JSON list raises ``ValueError``; HTTP errors raise huggingface_hub's errors."""
    start = clock()
    entries: list[Any] = []
    seen: list[str] = [url]
    pages = 0
    next_url: str | None = url
    query: Any = params
    while True:
        remaining = max(1.0, bounds.max_seconds - (clock() - start))
        response = http_backoff("GET", next_url, params=query, headers=dict(headers),
                                timeout=min(REQUEST_TIMEOUT_S, remaining))
        hf_raise_for_status(response)
        page = response.json()
        if not isinstance(page, list):
            raise ValueError(f"a page of {what} is not a list but {type(page).__name__}")
        pages += 1
        entries.extend(page)
        query = None  # a next link carries its own query
        next_url = response.links.get("next", {}).get("url")
        verdict = stop_reason(bounds, pages=pages, entries=len(entries),
                              last_page_size=len(page), next_url=next_url, seen=seen,
                              elapsed_s=clock() - start)
        if verdict is not None:
            reason, complete = verdict
            (log.info if complete else log.warning)(
                "%s: %d entries in %d request(s); stopped: %s", what,
                min(len(entries), bounds.max_entries), pages, reason)
            return Listing(tuple(entries[:bounds.max_entries]), pages, reason, complete)
        assert next_url is not None
        seen.append(next_url)
