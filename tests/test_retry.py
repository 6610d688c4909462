"""Our retry core (tenacity): capped doubling backoff, the server's Retry-After honoured (capped)."""

from __future__ import annotations

import httpx2
import pytest
from huggingface_hub.errors import HfHubHTTPError

from bot.hub.retry import retry_after, with_retries
from runners.errors import QuantbotError


def _error(status: int, retry: str | None = None) -> HfHubHTTPError:
    headers = {"Retry-After": retry} if retry is not None else {}
    response = httpx2.Response(status, headers=headers, request=httpx2.Request("GET", "http://h/x"))
    return HfHubHTTPError(f"HTTP {status}", response=response)


def _failing(errors: list[BaseException]):
    def fn() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"
    return fn


def test_backoff_doubles_and_is_capped():
    slept: list[float] = []
    fn = _failing([_error(503) for _ in range(6)])
    assert with_retries(fn, action="x", retries=6, wait_s=1, max_wait_s=5,
                        sleep=slept.append) == "ok"
    assert slept == [1, 2, 4, 5, 5, 5]


def test_retry_after_is_honoured_and_capped():
    slept: list[float] = []
    fn = _failing([_error(429, "7"), _error(429, "3600"), _error(429, "soon")])
    assert with_retries(fn, action="x", retries=3, wait_s=1, max_wait_s=60,
                        sleep=slept.append) == "ok"
    assert slept == [7, 60, 4]  # asked, asked but capped, an unreadable value: our backoff


@pytest.mark.parametrize(("status", "words"), [(404, "HTTP 404"), (403, "refused")])
def test_permanent_errors_are_not_retried(status, words):
    slept: list[float] = []
    with pytest.raises(QuantbotError, match=words):
        with_retries(_failing([_error(status)]), action="x", retries=3, sleep=slept.append)
    assert slept == []


def test_gives_up_with_a_sentence():
    with pytest.raises(QuantbotError, match=r"kept failing to publish x \(HTTP 502\)"):
        with_retries(_failing([_error(502)] * 3), action="publish x", retries=2, wait_s=0,
                     sleep=lambda s: None)


def test_retry_after_reads_only_seconds():
    assert retry_after(_error(429, "12")) == 12
    assert retry_after(_error(429, "Wed, 21 Oct 2015 07:28:00 GMT")) is None
    assert retry_after(_error(500)) is None
