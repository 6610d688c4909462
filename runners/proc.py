"""Running external tools: output captured, exit checked, each tool's own peak memory measured."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from runners.errors import QuantbotError

log = logging.getLogger(__name__)


#: Runs the tool and reports its own peak RSS. Started with ``python -I -S`` (stdlib only, no site,
#: ~10 MB), it spawns the tool, reaps it with ``wait4`` and writes ``status maxrss_kib`` (or
#: ``E errno strerror`` when the tool cannot be started) to the file descriptor in ``argv[1]``.
#: SIGTERM/SIGINT/SIGHUP are passed on to the tool so that stopping the launcher stops the tool.
_LAUNCHER = """
import os, signal, subprocess, sys
fd, argv = int(sys.argv[1]), sys.argv[2:]
try:
    tool = subprocess.Popen(argv)
except OSError as exc:
    os.write(fd, ("E %d %s" % (exc.errno or 0, exc.strerror or exc)).encode("utf-8", "replace"))
    sys.exit(127)
def forward(signum, frame):
    try:
        tool.send_signal(signum)
    except OSError:
        pass
for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(signum, forward)
_, status, usage = os.wait4(tool.pid, 0)
os.write(fd, b"R %d %d" % (status, usage.ru_maxrss))
"""


@dataclass(frozen=True)
class ToolRun:
    """One finished process: its output, and its own peak resident memory.

    ``peak_rss_bytes`` is the tool's high-water RSS as the kernel counts it (``ru_maxrss`` of the
    tool and of any children it reaped), measured from the tool's start. It is read by a small
    launcher process rather than by ``wait4`` here: Linux carries a process's peak across
    fork+exec, so a tool started straight from this (possibly large) Python would report at
    least this process's peak. The floor is the launcher's own size at spawn, about 10 MB.
    ``peak_rss_source`` is ``"tool"`` for that figure, or ``"launcher"`` when the launcher died
    before reporting and the figure is its ``wait4`` peak (an overestimate: it includes ours).
    """

    args: list[str]
    output: str
    peak_rss_bytes: int
    seconds: float
    peak_rss_source: str = "tool"


class ToolFailed(QuantbotError):
    """An external tool exited non-zero."""


def _spawn(argv: list[str], out: IO[bytes], env: Mapping[str, str] | None,
           cwd: Path | None) -> tuple[int, int, str]:
    """Run ``argv`` through the launcher; return ``(exit code, peak RSS bytes, source)``.

    Raises the tool's ``OSError`` (e.g. ``FileNotFoundError``) when it cannot be started, as
    ``subprocess.Popen`` would.
    """
    read_end, write_end = os.pipe()
    try:
        launcher = subprocess.Popen([sys.executable, "-I", "-S", "-c", _LAUNCHER, str(write_end), *argv],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=dict(env) if env else None, cwd=cwd,
                                    pass_fds=(write_end,))
    finally:
        os.close(write_end)
    try:
        _, status, usage = os.wait4(launcher.pid, 0)
        launcher.returncode = os.waitstatus_to_exitcode(status)
        with os.fdopen(read_end, "rb") as pipe:
            read_end = -1
            report = pipe.read(4096).decode("utf-8", "replace").split(" ", 2)
    finally:
        if read_end >= 0:
            os.close(read_end)
    if report[0] == "R" and len(report) == 3:
        return os.waitstatus_to_exitcode(int(report[1])), int(report[2]) * 1024, "tool"
    if report[0] == "E" and len(report) == 3:
        raise OSError(int(report[1]), report[2], argv[0])
    log.warning("the launcher of %s exited with %s without reporting; its peak RSS includes ours",
                argv[0], launcher.returncode)
    return launcher.returncode, usage.ru_maxrss * 1024, "launcher"


def run_tool(args: Sequence[str | Path], env: Mapping[str, str] | None = None,
             log_file: Path | None = None, cwd: Path | None = None) -> ToolRun:
    """Run ``args``; return output and the tool's own peak RSS, or raise :class:`ToolFailed`."""
    argv = [str(a) for a in args]
    if not argv:
        raise ValueError("run_tool needs a program to run")
    log.debug("running %s", " ".join(argv))
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        returncode, peak, source = _spawn(argv, out, env, cwd)
        out.seek(0)
        output = out.read().decode("utf-8", errors="replace")
    seconds = time.perf_counter() - start
    if log_file is not None:
        with log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)}\n{output}\n")
    if returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise ToolFailed(f"{Path(argv[0]).name} exited with {returncode}:\n{tail}\n",
                         "read the tool's message above; rerun resumes from the finished steps")
    return ToolRun(args=argv, output=output, peak_rss_bytes=peak, seconds=seconds,
                   peak_rss_source=source)
