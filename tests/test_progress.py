"""Progress off a terminal is a log line at intervals, never carriage-return frames; on a terminal
it is tqdm's bar. Every bar quantbot makes comes from runners/progress.py."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub.utils import are_progress_bars_disabled
from tqdm import tqdm

from runners.progress import LogProgress, bar_class, hub_bars, progress, progress_line

ROOT = Path(__file__).resolve().parent.parent


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_tqdm_and_anything_else_log_lines() -> None:
    assert bar_class(Terminal()) is tqdm
    assert bar_class(io.StringIO()) is LogProgress
    closed = io.StringIO()
    closed.close()
    assert bar_class(closed) is LogProgress


def test_off_a_terminal_progress_is_logged_at_intervals(capsys: pytest.CaptureFixture[str],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="runners.progress"):
        assert sum(progress(range(5000), desc="train", unit="step")) == sum(range(5000))
    assert capsys.readouterr().err == ""  # pytest's stderr is no terminal: not one frame
    lines = [r.getMessage() for r in caplog.records if r.name == "runners.progress"]
    assert lines[0].startswith("train: 0/5000 step (0%)")
    assert lines[-1].startswith("train: 5000/5000 step (100%)")
    assert len(lines) == 2  # the start and the end: the interval (30 s) never passed


def test_every_interval_gives_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="runners.progress"):
        bar = LogProgress(total=3, desc="gguf", unit="step", log_interval_s=0, mininterval=0)
        for name in ("Q8_0", "Q4_K_M", "Q2_K"):
            bar.set_postfix_str(name)
            bar.update(1)
        bar.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "runners.progress"]
    assert lines[0] == "gguf: 0/3 step (0%), 0:00 elapsed"
    assert [line.split(",")[0] for line in lines[1:]] == [
        "gguf: 1/3 step (33%)", "gguf: 2/3 step (67%)", "gguf: 3/3 step (100%)"]
    assert lines[-1].endswith(", Q2_K")


def test_a_closed_bar_logs_where_it_stopped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="runners.progress"):
        bar = LogProgress(total=10, desc="zoo", unit="trial")
        bar.update(4)  # within the interval: no line yet
        bar.close()  # the last line is due anyway
    lines = [r.getMessage() for r in caplog.records if r.name == "runners.progress"]
    assert lines[-1].startswith("zoo: 4/10 trial (40%)")


@pytest.mark.parametrize(("args", "line"), [
    (("gguf", 3, 12, "step", 10.0, "Q4_K_M"),
     "gguf: 3/12 step (25%), 0:10 elapsed, about 0:30 left, Q4_K_M"),
    (("files", 7, None, "it", 125.0), "files: 7 it, 2:05 elapsed"),
    (("", 0, 5, "B", 0.0), "0/5 B (0%), 0:00 elapsed"),
])
def test_progress_line(args: tuple, line: str) -> None:
    assert progress_line(*args) == line


def test_a_hub_transfer_off_a_terminal_has_no_byte_bars() -> None:
    before = are_progress_bars_disabled()
    with hub_bars(io.StringIO()) as cls:
        assert cls is LogProgress and are_progress_bars_disabled()
    assert are_progress_bars_disabled() == before
    with hub_bars(Terminal()) as cls:
        assert cls is tqdm and are_progress_bars_disabled() == before


def test_a_real_process_writes_no_frames_to_a_pipe() -> None:
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr); "
            "from runners.progress import progress; "
            "[None for _ in progress(range(300000), desc='work', unit='it', mininterval=0)]")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=True)
    assert "\r" not in run.stderr
    assert len(run.stderr.splitlines()) <= 4 and "work: 300000/300000 it (100%)" in run.stderr


def test_every_progress_bar_goes_through_the_one_helper() -> None:
    uses = re.compile(r"^\s*(from tqdm|import tqdm)", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for folder in ("bot", "runners", "bench")
                 for p in sorted((ROOT / folder).rglob("*.py"))
                 if uses.search(p.read_text(encoding="utf-8")) and p.name != "progress.py"]
    assert offenders == []
