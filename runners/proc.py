"""Running external tools: output captured, exit checked, peak memory measured per process."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runners.errors import QuantbotError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolRun:
    """One finished process: its output, and the peak resident memory the kernel measured."""

    args: list[str]
    output: str
    peak_rss_bytes: int
    seconds: float


class ToolFailed(QuantbotError):
    """An external tool exited non-zero."""


def run_tool(args: Sequence[str | Path], env: Mapping[str, str] | None = None,
             log_file: Path | None = None, cwd: Path | None = None) -> ToolRun:
    """Run ``args``; return output and peak RSS (``wait4``), or raise :class:`ToolFailed`."""
    argv = [str(a) for a in args]
    log.debug("running %s", " ".join(argv))
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=dict(env) if env else None,
                                cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode("utf-8", errors="replace")
    seconds = time.perf_counter() - start
    if log_file is not None:
        with log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)}\n{output}\n")
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise ToolFailed(f"{Path(argv[0]).name} exited with {proc.returncode}:\n{tail}\n",
                         "read the tool's message above; rerun resumes from the finished steps")
    return ToolRun(args=argv, output=output, peak_rss_bytes=usage.ru_maxrss * 1024,
                   seconds=seconds)
