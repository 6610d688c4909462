"""run_tool's peak RSS is the tool's own, whatever the size of the process that starts it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from runners.proc import ToolFailed, ToolRun, run_tool

MB = 1024 * 1024
ALLOCATE = ("import sys\nb = bytearray({n} * 1024 * 1024)\n"
            "for i in range(0, len(b), 4096):\n    b[i] = 1\nprint('allocated', flush=True)")


@pytest.fixture(scope="module")
def big_parent() -> bytearray:
    """This (test) process grown by ~300 MB of touched memory, as a pipeline that loaded a model."""
    block = bytearray(300 * MB)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return block


class TestPeakIsTheToolsOwn:
    @pytest.mark.parametrize("argv", [["true"], ["sh", "-c", "exit 0"], ["echo", "hi"]])
    def test_small_tool_from_a_big_parent(self, big_parent: bytearray, argv: list[str]) -> None:
        run = run_tool(argv)
        assert run.peak_rss_bytes < 50 * MB and run.peak_rss_source == "tool"

    @pytest.mark.parametrize("size", [100, 200])
    def test_allocating_child(self, big_parent: bytearray, size: int) -> None:
        run = run_tool([sys.executable, "-c", ALLOCATE.format(n=size)])
        assert (size - 10) * MB <= run.peak_rss_bytes <= (size + 60) * MB
        assert "allocated" in run.output

    def test_grandchild_is_counted(self, big_parent: bytearray) -> None:
        # The tool's figure includes the children it waits for (a converter run via a shell).
        script = f"{sys.executable} -c \"{ALLOCATE.format(n=200)}\""
        run = run_tool(["sh", "-c", script])
        assert 190 * MB <= run.peak_rss_bytes <= 260 * MB


class TestBehaviourKept:
    def test_output_env_and_cwd(self, tmp_path: Path) -> None:
        run = run_tool(["sh", "-c", 'echo "$QB_X"; pwd; echo err >&2'], env={**os.environ, "QB_X": "val"},
                       cwd=tmp_path)
        assert run.output.split() == ["val", str(tmp_path), "err"]
        assert isinstance(run, ToolRun) and run.args[0] == "sh" and run.seconds > 0

    def test_stdin_is_empty(self) -> None:
        assert run_tool(["cat"]).output == ""

    def test_log_file(self, tmp_path: Path) -> None:
        log = tmp_path / "tool.log"
        run_tool(["echo", "logged"], log_file=log)
        assert "$ echo logged\nlogged" in log.read_text()

    @pytest.mark.parametrize(("script", "code"), [
        ("exit 3", "3"), ("kill -9 $$", "-9"), ("kill -TERM $$", "-15"),
    ])
    def test_failures(self, script: str, code: str) -> None:
        with pytest.raises(ToolFailed, match=f"sh exited with {code}"):
            run_tool(["sh", "-c", f"echo last words; {script}"])

    @pytest.mark.parametrize(("argv", "error"), [
        (["/nonexistent/tool"], FileNotFoundError),
        (["no-such-tool-quantbot"], FileNotFoundError),
        ([""], OSError),
    ])
    def test_cannot_start(self, argv: list[str], error: type[OSError]) -> None:
        with pytest.raises(error):
            run_tool(argv)

    @pytest.mark.parametrize(("mode", "content", "error"), [
        (0o644, b"#!/bin/sh\necho x\n", PermissionError),
        (0o755, b"\x7fELF garbage", OSError),
    ])
    def test_unrunnable_file(self, tmp_path: Path, mode: int, content: bytes, error: type[OSError]) -> None:
        tool = tmp_path / "tool"
        tool.write_bytes(content)
        tool.chmod(mode)
        with pytest.raises(error):
            run_tool([tool])

    def test_no_program(self) -> None:
        with pytest.raises(ValueError):
            run_tool([])

    def test_hostile_arguments_pass_through(self) -> None:
        args = ["--", "-c", "", " spaces ", "$HOME", "`id`", "a\nb", "\u202e", "3"]
        run = run_tool([sys.executable, "-c", "import sys; print(repr(sys.argv[1:]))", *args])
        assert run.output.strip() == repr(args)

    def test_report_fd_is_not_leaked_to_the_tool(self) -> None:
        probe = "import os\nprint([fd for fd in range(3, 256) if os.path.exists(f'/proc/self/fd/{fd}')])"
        assert run_tool([sys.executable, "-c", probe]).output.strip() == "[]"

    def test_signal_reaches_the_tool(self, tmp_path: Path) -> None:
        # SIGTERM to the launcher is passed on: the tool's own handler runs.
        marker = tmp_path / "got-term"
        script = (f"import os, signal, sys, time, pathlib\n"
                  f"def term(*_):\n    pathlib.Path({str(marker)!r}).touch()\n    sys.exit(0)\n"
                  "signal.signal(signal.SIGTERM, term)\n"
                  "os.kill(os.getppid(), signal.SIGTERM)\ntime.sleep(10)")
        run_tool([sys.executable, "-c", script])
        assert marker.exists()
