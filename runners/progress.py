"""Progress bars for people, progress lines for logs: every bar quantbot makes comes from here.

A tqdm bar redraws itself with carriage returns several times a second; in a terminal that is one
line, but a CI or GitHub Actions log keeps every frame (megabytes for one download or training
run). So a bar is tqdm's own only when its stream is a terminal; otherwise :class:`LogProgress`
writes nothing to the stream and logs one line at the start, then at most every
:data:`LOG_INTERVAL_S` seconds, and one at the end.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from tqdm import tqdm

log = logging.getLogger(__name__)

#: Seconds between two progress lines in a log.
LOG_INTERVAL_S = 30.0


class _Discard:
    """A stream that keeps nothing (tqdm writes its frames and final newline to it)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


def _minutes(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def progress_line(desc: str, n: float, total: float | None, unit: str, elapsed_s: float,
                  postfix: str = "") -> str:
    """``gguf: 3/12 step (25%), 0:10 elapsed, about 0:30 left, Q4_K_M`` (pure)."""
    parts = [f"{desc}: " if desc else "", f"{n:g}" + (f"/{total:g}" if total else ""), f" {unit}"]
    if total:
        parts.append(f" ({100 * n / total:.0f}%)")
    parts.append(f", {_minutes(elapsed_s)} elapsed")
    if total and 0 < n < total:
        parts.append(f", about {_minutes(elapsed_s / n * (total - n))} left")
    if postfix:
        parts.append(f", {postfix}")
    return "".join(parts)


class LogProgress(tqdm):
    """tqdm that logs a line at intervals instead of drawing frames (for non-terminals)."""

    def __init__(self, *args: Any, log_interval_s: float = LOG_INTERVAL_S, **kwargs: Any) -> None:
        self._log_interval_s = log_interval_s
        self._logged_at: float | None = None
        self._logged_n: float | None = None
        kwargs["file"] = _Discard()
        kwargs.pop("disable", None)  # the log line is the point: never silently disabled
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        now = time.monotonic()
        done = self.total is not None and self.n >= self.total
        due = self._logged_at is None or now - self._logged_at >= self._log_interval_s
        if (due or done) and self.n != self._logged_n:
            d = self.format_dict
            log.info("%s", progress_line(str(d.get("prefix") or ""), self.n, self.total,
                                         str(d.get("unit") or "it"), float(d.get("elapsed", 0)),
                                         str(d.get("postfix") or "").lstrip(", ")))
            self._logged_at, self._logged_n = now, self.n
        return True

    def close(self) -> None:
        if not self.disable:
            self._logged_at = None  # the last line is due whatever the interval
        super().close()


@contextmanager
def hub_bars(stream: TextIO | None = None) -> Iterator[type[tqdm]]:
    """huggingface_hub's own byte bars (per-file downloads, uploads) off while a transfer runs
    off a terminal; yields the class for its ``tqdm_class`` (snapshot_download's overall bar)."""
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    cls = bar_class(stream)
    was_disabled = are_progress_bars_disabled()
    if cls is LogProgress:
        disable_progress_bars()
    try:
        yield cls
    finally:
        if cls is LogProgress and not was_disabled:
            enable_progress_bars()


def interactive(stream: TextIO | None = None) -> bool:
    """Whether progress goes to a terminal (tqdm's default stream is stderr)."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or a fake stream
        return False


def bar_class(stream: TextIO | None = None) -> type[tqdm]:
    """The tqdm class for progress on ``stream`` (stderr): tqdm itself on a terminal, else
    :class:`LogProgress`. For APIs that take a class (huggingface_hub's ``tqdm_class``)."""
    return tqdm if interactive(stream) else LogProgress


def progress(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm:
    """A progress bar over ``iterable`` (tqdm's arguments): drawn on a terminal, logged elsewhere."""
    return bar_class(kwargs.get("file"))(iterable, **kwargs)
