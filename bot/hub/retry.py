"""Bounded retries around Hub calls, and Hub failures turned into :class:`QuantbotError`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import httpx2
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_none,
)

from runners.errors import QuantbotError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Statuses worth retrying: timeouts, rate limits and server errors.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _root(exc: BaseException) -> BaseException:
    """The HTTP error behind wrappers such as huggingface_hub's "Error while uploading" one."""
    seen = exc
    while not isinstance(seen, HfHubHTTPError | httpx2.TransportError) and seen.__cause__:
        seen = seen.__cause__
    return seen if isinstance(seen, HfHubHTTPError | httpx2.TransportError) else exc


def is_transient(exc: BaseException) -> bool:
    """A rate limit, a 5xx or a dropped connection: worth another try."""
    exc = _root(exc)
    if isinstance(exc, HfHubHTTPError):
        return _status(exc) in RETRYABLE_STATUS
    return isinstance(exc, httpx2.TransportError)


def as_quantbot_error(exc: BaseException, action: str) -> QuantbotError:
    """One line naming what failed and what to do about it (never the request headers)."""
    exc = _root(exc)
    status = _status(exc)
    if isinstance(exc, RepositoryNotFoundError) or status in (401, 403):
        return QuantbotError(f"the Hub refused to {action} (HTTP {status})",
                             "set HF_TOKEN (or run `hf auth login`) to a token with write access "
                             "to the namespace")
    if isinstance(exc, HfHubHTTPError):
        if status in RETRYABLE_STATUS:
            return QuantbotError(f"the Hub kept failing to {action} (HTTP {status})",
                                 "wait and rerun; a rerun resumes where this one stopped")
        detail = exc.server_message or str(exc).splitlines()[0]
        return QuantbotError(f"the Hub answered HTTP {status} to {action}: {detail}",
                             "check the repository id and the token's permissions")
    if isinstance(exc, httpx2.TransportError):
        return QuantbotError(f"cannot reach the Hub to {action} ({type(exc).__name__})",
                             "check the network or HF_ENDPOINT, then rerun")
    if isinstance(exc, json.JSONDecodeError | KeyError | TypeError | ValueError | AttributeError):
        return QuantbotError(f"the Hub answered {action} with a malformed response ({exc!s:.120})",
                             "rerun later; if it persists, check HF_ENDPOINT points at the Hub and "
                             "upgrade huggingface_hub")
    return QuantbotError(f"failed to {action}: {exc!s:.200}", "rerun with -vv for details")


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``Retry-After`` in seconds), if it said."""
    response = getattr(_root(exc), "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def with_retries(fn: Callable[[], T], *, action: str, retries: int = 4, wait_s: float = 2.0,
                 max_wait_s: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``fn``; on a transient failure wait and rerun it, at most ``retries`` more times.

    The wait doubles from ``wait_s`` up to ``max_wait_s``, or is what the server's
    ``Retry-After`` asks (also capped). Any failure left becomes a :class:`QuantbotError`.
    ``fn`` must be safe to rerun from the start (every caller here re-reads remote state first).
    """
    backoff = wait_exponential(multiplier=wait_s, max=max_wait_s) if wait_s else wait_none()

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after(exc) if exc else None
        return min(max_wait_s, asked if asked is not None else backoff(state))

    def warn(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        why = (_status(exc) or type(exc).__name__) if exc else "?"
        log.warning("could not %s (%s); retry %d/%d in %.0fs", action, why,
                    state.attempt_number, retries, state.upcoming_sleep)

    retrying = Retrying(stop=stop_after_attempt(retries + 1), wait=wait, sleep=sleep,
                        retry=retry_if_exception(lambda e: not isinstance(e, QuantbotError)
                                                 and is_transient(e)),
                        before_sleep=warn, reraise=True)
    try:
        return retrying(fn)
    except QuantbotError:
        raise
    except Exception as exc:
        raise as_quantbot_error(exc, action) from exc
