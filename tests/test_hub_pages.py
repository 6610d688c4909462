"""When a paged listing stops reading (pure): at its end or limit, or at a bound whatever the
pages hold. tests/test_watch.py drives the same pager against a hostile fake Hub."""

from __future__ import annotations

import pytest

from bot.hub.pages import Bounds, stop_reason

BOUNDS = Bounds(max_entries=100, max_pages=5, max_seconds=60.0)
GO = {"pages": 1, "entries": 10, "last_page_size": 10, "next_url": "http://h/api/models?c=2",
      "seen": ["http://h/api/models"], "elapsed_s": 1.0}


def test_a_listing_with_more_pages_goes_on() -> None:
    assert stop_reason(BOUNDS, **GO) is None


@pytest.mark.parametrize(("change", "reason", "complete"), [
    ({"next_url": None}, "the listing ended", True),
    ({"entries": 100}, "reached its limit of 100 entries", True),
    ({"seen": ["http://h/api/models?c=2"]}, "its next link repeats a page already read", False),
    ({"last_page_size": 0}, "an empty page pointed to another page", False),
    ({"pages": 5}, "read 5 pages, the most one listing may request", False),
    ({"elapsed_s": 61.0}, "took 61 s, the most one listing may take", False),
])
def test_each_stop_says_why(change: dict, reason: str, complete: bool) -> None:
    assert stop_reason(BOUNDS, **(GO | change)) == (reason, complete)


def test_the_end_wins_over_a_bound() -> None:
    # The last page may be empty, repeat nothing and come late: it is still the end.
    last = GO | {"next_url": None, "last_page_size": 0, "pages": 5, "elapsed_s": 99.0}
    assert stop_reason(BOUNDS, **last) == ("the listing ended", True)
