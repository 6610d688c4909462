"""The ``quantbot`` command line: one click group that drives everything, locally and in CI.

Every failure a user can act on ends in one ``Error: <problem>. Fix: <fix>`` line, never a
traceback: :class:`QuantbotError`, a full disk, and whatever the Hub's or GitHub's client raised
that no module turned into a sentence. In a GitHub Actions job (``GITHUB_ACTIONS=true``) the
whole invocation runs inside ``::stop-commands::``, and log lines cannot start a workflow
command either: model ids, tool output and server messages are written by strangers.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import signal
import sys
import threading
import traceback
from pathlib import Path

import click

from bot.safetext import actions_safe, stop_commands
from runners.errors import QuantbotError

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: How tools say it when they print rather than raise the error (Python's OSError, coreutils).
DISK_FULL_WORDS = ("No space left on device", "Disk quota exceeded")
#: A file system with less free than this, named in a tool's failure, is taken to be full:
#: llama.cpp's tools report a failed write only as "iostream error".
NEARLY_FULL_BYTES = 16 * 2**20
DISK_FULL_FIX = ("free disk space (or point --work, QUANTBOT_CACHE or HF_HOME at a larger disk), "
                 "then rerun: it resumes from the finished steps")
_PATH = re.compile(r"/[^\s'\"`,;()\[\]]+")


def in_actions() -> bool:
    """Running as a step of a GitHub Actions job."""
    return os.environ.get("GITHUB_ACTIONS") == "true"


class ActionsSafeFormatter(logging.Formatter):
    """Log lines that cannot start an Actions workflow command, whatever a message holds."""

    def format(self, record: logging.LogRecord) -> str:
        return actions_safe(super().format(record))


def _nearly_full(text: str) -> tuple[Path, int] | None:
    """The first existing path named in ``text`` on a (nearly) full file system, and its free
    bytes."""
    for match in _PATH.finditer(text):
        path = Path(match.group().rstrip(".:"))
        while not path.exists() and path != path.parent:
            path = path.parent
        try:
            free = shutil.disk_usage(path).free
        except OSError:
            continue
        if free < NEARLY_FULL_BYTES:
            return path, free
    return None


def disk_full(exc: BaseException) -> QuantbotError | None:
    """``exc`` as "out of disk space" when it is that: an ``OSError`` (ENOSPC, EDQUOT) anywhere
    in its chain, or a tool that failed saying so, or failed writing to a full file system.
    Other :class:`QuantbotError` messages are kept: they already name their problem."""
    from runners.proc import ToolFailed

    if isinstance(exc, ToolFailed):
        text = str(exc)
        first = text.splitlines()[0].rstrip(":")
        if any(words in text for words in DISK_FULL_WORDS):
            return QuantbotError(f"out of disk space: {first}", DISK_FULL_FIX)
        full = _nearly_full(text)
        if full is not None:
            return QuantbotError(f"out of disk space: {first}; the disk holding {full[0]} has "
                                 f"{full[1]} bytes free", DISK_FULL_FIX)
        return None
    seen: BaseException | None = None if isinstance(exc, QuantbotError) else exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            where = f" writing {seen.filename}" if seen.filename else ""
            return QuantbotError(f"out of disk space{where} ({seen.strerror})", DISK_FULL_FIX)
        seen = seen.__cause__ or seen.__context__
    return None


def as_sentence(exc: BaseException) -> QuantbotError | None:
    """A failure the user can act on, as one sentence; ``None`` for a bug (its traceback stays)."""
    full = disk_full(exc)
    if full is not None:
        if isinstance(exc, QuantbotError):
            log.error("%s", exc)  # the tool's own words, before the one-line summary
        return full
    if isinstance(exc, QuantbotError):
        return exc
    import httpx2
    import requests
    from github import GithubException
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return QuantbotError("HF_HUB_OFFLINE=1 forbids a Hub request this command needs",
                             "unset HF_HUB_OFFLINE, or work from local folders")
    if isinstance(exc, HfHubHTTPError | httpx2.HTTPError):
        from bot.hub.retry import as_quantbot_error

        return as_quantbot_error(exc, "run this command")
    if isinstance(exc, GithubException | requests.RequestException):
        from bot.github.comments import github_error

        return github_error(exc, "run this command")
    return None


def _say(line: str) -> None:
    """One workflow-command line on stdout, after everything written before it."""
    sys.stderr.flush()
    click.echo(line)  # click.echo flushes


class Group(click.Group):
    """Turns a user-fixable failure into a one-line error and exit status 1; under GitHub
    Actions, pauses workflow commands for the whole invocation, its error line included."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        if not in_actions():
            return self._invoke(ctx)
        with stop_commands(_say):
            try:
                return self._invoke(ctx)
            except click.ClickException as exc:  # shown here: it may quote strangers' text
                exc.show()
                raise click.exceptions.Exit(exc.exit_code) from exc
            except (click.exceptions.Exit, click.Abort):
                raise
            except Exception as exc:  # a bug: its traceback, still inside the pause
                traceback.print_exc()
                raise click.exceptions.Exit(1) from exc

    def _invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            error = as_sentence(exc)
            if error is None:
                raise
            raise click.ClickException(str(error)) from exc


def stop_on_sigterm() -> None:
    """Make SIGTERM (a cancelled workflow job, ``kill``) raise ``SystemExit(143)`` in the main
    thread, so ``finally`` and ``except BaseException`` blocks run as they do on Ctrl-C: the mix
    search's files in RAM (``/dev/shm``, tens of GB for an 8B) are removed, not left to the
    runner's next job. Python's default is to die at once, cleaning nothing."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():  # only it may set handlers
        signal.signal(signal.SIGTERM, stop)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Debug logging (the default logs INFO).")
@click.version_option(package_name="quantbot")
def main(verbose: int) -> None:
    """quantbot: quantize Hub models to GGUF, GPTQ and AWQ, measure them, publish them."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ActionsSafeFormatter(LOG_FORMAT) if in_actions()
                         else logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    stop_on_sigterm()


#: Every verb lives in its own module under ``bot/cli/`` exposing ``command``.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "doctor",
    "support",
    "card",
    "quantize",
    "watch",
    "publish",
    "command",
    "run_job",
)


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        main.add_command(importlib.import_module(f"bot.cli.{name}").command)


_register()

if __name__ == "__main__":
    main()
