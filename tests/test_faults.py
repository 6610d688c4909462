"""Faults mid-job (issue 11, item 9): a full disk, a killed job, a corrupt download, a source
repository that changes mid-run. Each ends in a clear error, publishes nothing half-made, and a
rerun resumes from what was finished.

The faults are real where they can be: ENOSPC comes from the kernel (``/dev/full`` where a
program writes, or a full tmpfs), the kill is SIGKILL to the whole job's process group, and
corrupt bytes come over HTTP from the fake Hub to the real huggingface_hub client.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import huggingface_hub.constants
import huggingface_hub.file_download
import pytest
from fakeserver import fresh, serving
from gguf import GGUFReader
from hubfake import FakeHub, git_blob_id, point_hub_at
from pytest_httpserver import HTTPServer
from test_hostile_network import error_line, run
from werkzeug import Request, Response

from bot.cli import disk_full
from runners.proc import ToolFailed
from runners.results import load_run
from runners.source import load_source

REPO_ID = "acme/tiny"
MODEL = "model.safetensors"
PUBLISHED = ["README.md", "quantbot.json"]


class HistoryHub(FakeHub):
    """The fake Hub with history: every pushed state stays readable at its commit SHA, as on
    the Hub, and a push can be made to land in the middle of a download."""

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.history: dict[str, dict[str, bytes]] = {}
        self.push_after_first_file: tuple[str, dict[str, bytes]] | None = None

    def push(self, repo_id: str, files: dict[str, bytes]) -> str:
        """Make ``files`` the repository's new ``main`` commit; returns its SHA."""
        self.add_repo(repo_id, files)
        sha = self.commit_sha(repo_id)
        self.history[sha] = dict(self.repos[repo_id])
        return sha

    def _at(self, handler: Callable[..., Response], req: Request, repo_id: str, revision: str,
            *rest: str) -> Response:
        files = self.history.get(revision)
        if files is None or repo_id not in self.repos:
            return handler(req, repo_id, revision, *rest)
        main, self.repos[repo_id] = self.repos[repo_id], files
        try:
            return handler(req, repo_id, revision, *rest)
        finally:
            self.repos[repo_id] = main

    def repo_info(self, req: Request, repo_id: str, revision: str) -> Response:
        return self._at(super().repo_info, req, repo_id, revision)

    def tree(self, req: Request, repo_id: str, revision: str) -> Response:
        return self._at(super().tree, req, repo_id, revision)

    def resolve(self, req: Request, repo_id: str, revision: str, path: str) -> Response:
        response = self._at(super().resolve, req, repo_id, revision, path)
        if req.method == "GET" and self.push_after_first_file is not None:
            repo, files = self.push_after_first_file
            self.push_after_first_file = None
            self.push(repo, files)
        return response


@pytest.fixture(scope="module")
def hub_server() -> Iterator[HTTPServer]:
    with serving() as server:
        yield server


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, hub_server: HTTPServer, tmp_path: Path) -> HistoryHub:
    fake = fresh(HistoryHub, hub_server)
    for name, value in (("HF_HUB_DISABLE_TELEMETRY", True), ("HF_HUB_DISABLE_XET", True),
                        ("HF_HUB_OFFLINE", False), ("HF_HUB_CACHE", str(tmp_path / "hf-cache"))):
        monkeypatch.setattr(huggingface_hub.constants, name, value)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    point_hub_at(monkeypatch, fake.base)
    return fake


def files_of(model: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}


def fetched(hub: FakeHub, name: str = MODEL) -> int:
    """How many times ``name`` was downloaded (GET, not the metadata HEAD)."""
    return hub.count("GET", rf"/resolve/[^/]+/{name}$")


def repo_files(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden ones included: what a local hub would publish."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def quantize(source: object, tmp_path: Path, *words: str) -> list[object]:
    return ["quantize", source, "--out", tmp_path / "out", "--work", tmp_path / "work",
            "--repo-id", "tests/tiny-llama", "--ctx", "64", "--chunks", "4",
            "--answers", "2", "--answer-tokens", "4", "--jobs", "1", *words]


def published(tmp_path: Path) -> Path:
    return tmp_path / "out" / "quantbot" / "tiny-llama-GGUF"


def staging(tmp_path: Path) -> Path:
    return tmp_path / "work" / "tests__tiny-llama" / "gguf" / "repo" / "tiny-llama-GGUF"


def ok(result: Any) -> None:
    assert result.exit_code == 0, (result.output, result.exception)


# -- a full disk ----------------------------------------------------------------------------------

def test_disk_full_during_download(hub: HistoryHub, monkeypatch: pytest.MonkeyPatch,
                                   tiny_model: Path, tmp_path: Path) -> None:
    """huggingface_hub writes each file to ``blobs/<etag>.<8 hex>.incomplete``: with that name
    made predictable, the weights' temporary file is ``/dev/full`` and the write fails ENOSPC."""
    files = files_of(tiny_model)
    hub.push(REPO_ID, files)
    monkeypatch.setattr(huggingface_hub.file_download, "uuid",
                        SimpleNamespace(uuid4=lambda: uuid.UUID(int=0)))
    blobs = Path(huggingface_hub.constants.HF_HUB_CACHE) / "models--acme--tiny" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{git_blob_id(files[MODEL])}.00000000.incomplete").symlink_to("/dev/full")

    error_line(run(["quantize", REPO_ID, "--out", tmp_path / "out"]),
               "out of disk space downloading acme/tiny into", "free space there", "rerun")
    assert not (tmp_path / "out").exists()
    assert not list(blobs.glob("*.incomplete"))  # huggingface_hub removed its temporary file

    others = {name: fetched(hub, name) for name in files if name != MODEL}
    model = load_source(REPO_ID)  # space freed: the rerun fetches only the missing file
    assert {name: fetched(hub, name) for name in others} == others
    assert fetched(hub) == 2 and (model.path / MODEL).read_bytes() == files[MODEL]


@pytest.mark.slow
def test_disk_full_during_conversion(tiny_model: Path, toolchain: object,
                                     tmp_path: Path) -> None:
    """The converter's output is ``/dev/full``: it fails with "No space left on device"."""
    work = tmp_path / "work" / "tests__tiny-llama" / "gguf"
    work.mkdir(parents=True)
    (work / "tiny-llama.F16.partial").symlink_to("/dev/full")
    error_line(run(quantize(tiny_model, tmp_path, "gguf=Q8_0")),
               "out of disk space", "exited with 1", "free disk space", "resumes")
    assert not (tmp_path / "out").exists()

    (work / "tiny-llama.F16.partial").unlink()  # space freed
    ok(run(quantize(tiny_model, tmp_path, "gguf=Q8_0")))
    assert repo_files(published(tmp_path)) == [*PUBLISHED, "tiny-llama.Q8_0.gguf"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """``tmp_path/work`` on a tmpfs of its own (needs the right to mount: root)."""
    work = tmp_path / "work"
    work.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3500k", "tmpfs", str(work)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")

    def resize(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(work)], check=True)

    try:
        yield resize
    finally:
        subprocess.run(["umount", "-l", str(work)], check=False)


@pytest.mark.slow
def test_disk_full_during_quantization(small_disk: Callable[[str], None], tiny_model: Path,
                                       toolchain: object, tmp_path: Path) -> None:
    """A real full file system: the F16 model fits, its Q8_0 does not. llama-quantize reports
    only "iostream error", and writing its log then fails with ENOSPC."""
    result = run(quantize(tiny_model, tmp_path, "gguf=Q8_0"))
    error_line(result, "out of disk space (No space left on device)", "free disk space")
    assert not (tmp_path / "out").exists()
    base = tmp_path / "work" / "tests__tiny-llama" / "gguf" / "tiny-llama.F16.gguf"
    converted = base.stat().st_mtime_ns
    # Had the log still fitted, the tool's own words would name only a file on the full disk:
    said = ToolFailed(f"llama-quantize exited with 1:\nllama_model_quantize: failed to quantize: "
                      f"basic_ios::clear: iostream error\nfailed to quantize model from '{base}'\n",
                      "read the tool's message above")
    full = disk_full(said)
    assert full is not None and "llama-quantize exited with 1" in full.problem
    assert f"the disk holding {base} has 0 bytes free" in full.problem

    small_disk("64m")  # space freed
    ok(run(quantize(tiny_model, tmp_path, "gguf=Q8_0")))
    assert base.stat().st_mtime_ns == converted  # resumed: not converted again
    assert repo_files(published(tmp_path)) == [*PUBLISHED, "tiny-llama.Q8_0.gguf"]


# -- a killed job ---------------------------------------------------------------------------------

KILLER = """#!/bin/sh
# llama-quantize, except that while $QUANTBOT_TEST_KILL exists the call for Q8_0 dies as a killed
# job does: its output half written, then SIGKILL to every process of the job (quantbot, the
# launcher, this tool).
if [ -n "$QUANTBOT_TEST_KILL" ] && [ -e "$QUANTBOT_TEST_KILL" ]; then
  src=""; dst=""
  for arg in "$@"; do
    if [ "$arg" = Q8_0 ]; then
      rm -f "$QUANTBOT_TEST_KILL"
      head -c 65536 "$src" > "$dst"
      kill -9 0
    fi
    src=$dst; dst=$arg
  done
fi
exec {real} "$@"
"""


def killing_cache(tc: Any, root: Path) -> Path:
    """A quantbot cache whose llama.cpp toolchain is the built one, with :data:`KILLER` in
    front of llama-quantize."""
    base = root / "llama.cpp" / tc.version
    vendor = base / "src" / f"llama_cpp_python-{tc.version}" / "vendor"
    vendor.mkdir(parents=True)
    (vendor / "llama.cpp").symlink_to(tc.src_dir)
    bin_dir = base / "build" / "bin"
    bin_dir.mkdir(parents=True)
    for entry in tc.bin_dir.iterdir():
        (bin_dir / entry.name).symlink_to(entry)
    archs = tc.bin_dir.parent / "supported-architectures.txt"
    if archs.is_file():
        (base / "build" / archs.name).symlink_to(archs)
    killer = bin_dir / "llama-quantize"
    killer.unlink()
    killer.write_text(KILLER.format(real=tc.tool("llama-quantize")))
    killer.chmod(0o755)
    return root


@pytest.mark.slow
def test_killed_mid_quantization_resumes(tiny_model: Path, toolchain: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL to the whole job while Q8_0 is being written (Q4_0 finished before it): nothing
    is published; the rerun keeps Q4_0 and the F16 model, makes Q8_0 again, publishes no
    partial file."""
    cache = killing_cache(toolchain, tmp_path / "cache")
    mark = tmp_path / "kill-once"
    mark.touch()
    argv = [str(a) for a in quantize(tiny_model, tmp_path, "gguf=Q8_0,Q4_0")]
    env = {**os.environ, "QUANTBOT_CACHE": str(cache), "QUANTBOT_TEST_KILL": str(mark)}
    env.pop("GITHUB_ACTIONS", None)
    job = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *argv],
                         env=env, capture_output=True, text=True, timeout=300, check=False,
                         start_new_session=True)
    assert job.returncode == -signal.SIGKILL, job.stderr[-2000:]
    stage = staging(tmp_path)
    torn = stage / ".tiny-llama.Q8_0.gguf.partial"
    assert torn.stat().st_size == 65536 and not mark.exists()
    assert (stage / "tiny-llama.Q4_0.gguf").is_file()
    assert not (tmp_path / "out").exists()  # nothing published
    q4 = (stage / "tiny-llama.Q4_0.gguf").stat().st_mtime_ns
    base = tmp_path / "work" / "tests__tiny-llama" / "gguf" / "tiny-llama.F16.gguf"
    converted = base.stat().st_mtime_ns

    monkeypatch.setenv("QUANTBOT_CACHE", str(cache))
    ok(run(argv))
    assert base.stat().st_mtime_ns == converted  # finished steps were not redone
    assert (stage / "tiny-llama.Q4_0.gguf").stat().st_mtime_ns == q4
    repo = published(tmp_path)
    assert repo_files(repo) == [*PUBLISHED, "tiny-llama.Q4_0.gguf", "tiny-llama.Q8_0.gguf"]
    q8 = GGUFReader(repo / "tiny-llama.Q8_0.gguf")  # made again in full: a valid file
    assert any(t.tensor_type.name == "Q8_0" for t in q8.tensors)
    assert [v.name for v in load_run(repo).variants] == ["Q4_0", "Q8_0"]


@pytest.mark.slow
def test_leftovers_of_a_killed_run_are_never_published(tiny_model: Path, toolchain: Any,
                                                       tmp_path: Path) -> None:
    """Partial files of a type the rerun no longer asks for, and a split whose parts were
    being moved in when the job died: removed, or made again, never published."""
    ok(run(quantize(tiny_model, tmp_path, "gguf=Q8_0", "--split-size", "1M")))
    stage = staging(tmp_path)
    parts = sorted(p.name for p in stage.glob("tiny-llama.Q8_0-*-of-*.gguf"))
    assert len(parts) >= 2
    # killed while moving the split's parts in: the first moved, the rest still in the split
    # folder beside the whole quantized file
    split = stage / ".tiny-llama.Q8_0.gguf.split"
    split.mkdir()
    for name in parts[1:]:
        (stage / name).rename(split / name)
    (stage / ".tiny-llama.Q8_0.gguf.partial").write_bytes(b"GGUF torn")
    (stage / ".tiny-llama.Q4_K_M.gguf.partial").write_bytes(b"GGUF torn")  # a type not asked

    ok(run(quantize(tiny_model, tmp_path, "gguf=Q8_0", "--split-size", "1M")))
    repo = published(tmp_path)
    assert repo_files(repo) == sorted([*PUBLISHED, *parts])
    assert [v.files for v in load_run(repo).variants] == [parts]
    for name in parts:
        GGUFReader(repo / name)


# -- a corrupt or truncated download --------------------------------------------------------------

def test_download_cut_short(hub: HistoryHub, tiny_model: Path, tmp_path: Path) -> None:
    """The Hub's answer ends early: huggingface_hub's length check fails it, in a sentence."""
    files = files_of(tiny_model)
    hub.push(REPO_ID, files)
    hub.fail("GET", rf"/resolve/[^/]+/{MODEL}$", 200, body=files[MODEL][: len(files[MODEL]) // 2])
    error_line(run(["quantize", REPO_ID, "--out", tmp_path / "out"]),
               "the download of acme/tiny failed", "Consistency check failed", "rerun")
    assert not (tmp_path / "out").exists()
    model = load_source(REPO_ID)
    assert (model.path / MODEL).read_bytes() == files[MODEL]


def test_truncated_file_in_the_cache_is_fetched_again(hub: HistoryHub, tiny_model: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A cached copy shorter than the Hub lists (huggingface_hub trusts its cache)."""
    files = files_of(tiny_model)
    hub.push(REPO_ID, files)
    blob = (load_source(REPO_ID).path / MODEL).resolve()
    with blob.open("r+b") as fh:
        fh.truncate(len(files[MODEL]) - 1000)
    model = load_source(REPO_ID)
    assert "downloading it again" in caplog.text and "the Hub lists" in caplog.text
    assert fetched(hub) == 2 and fetched(hub, "config.json") == 1
    assert (model.path / MODEL).read_bytes() == files[MODEL]


def test_corrupt_file_from_the_hub(hub: HistoryHub, tiny_model: Path, tmp_path: Path) -> None:
    """Bytes of the right length but no safetensors header, twice: a clear error, nothing
    published; once the Hub serves the file right, the rerun replaces the bad copy."""
    files = files_of(tiny_model)
    hub.push(REPO_ID, files)
    garbage = b"\xff" * len(files[MODEL])
    hub.fail("GET", rf"/resolve/[^/]+/{MODEL}$", 200, body=garbage, times=2)
    error_line(run(["quantize", REPO_ID, "--out", tmp_path / "out"]),
               "acme/tiny: model.safetensors announces a", "rerun later")
    assert not (tmp_path / "out").exists() and fetched(hub) == 2
    model = load_source(REPO_ID)
    assert (model.path / MODEL).read_bytes() == files[MODEL] and model.info.n_params > 0


def test_corrupt_local_weights_are_a_sentence(tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    data = (folder / MODEL).read_bytes()
    (folder / MODEL).write_bytes(data[: len(data) // 2])
    error_line(run(["quantize", folder, "--out", tmp_path / "out"]),
               "is not a usable safetensors file", "truncated or corrupt", "re-download")


# -- the source repository changes mid-run --------------------------------------------------------

def with_extra_tensor(data: bytes) -> bytes:
    """``data`` (a safetensors file) plus a 3-float tensor: another model, 3 more weights."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    end = len(data) - 8 - length
    header["extra.weight"] = {"dtype": "F32", "shape": [3], "data_offsets": [end, end + 12]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data[8 + length:] + b"\0" * 12


def two_commits(hub: HistoryHub, tiny_model: Path) -> tuple[str, dict[str, bytes],
                                                            dict[str, bytes]]:
    old = files_of(tiny_model)
    sha = hub.push(REPO_ID, old)
    new = {**old, MODEL: with_extra_tensor(old[MODEL]), "README.md": b"# moved on\n"}
    return sha, old, new


def test_pinned_revision_gets_the_old_files(hub: HistoryHub, tiny_model: Path) -> None:
    sha, old, new = two_commits(hub, tiny_model)
    hub.push(REPO_ID, new)  # main moved after the plan pinned its commit
    pinned = load_source(REPO_ID, revision=sha)
    assert (pinned.path / MODEL).read_bytes() == old[MODEL] and pinned.path.name == sha
    downloads = [p for m, p in hub.requests if "/resolve/" in p]
    assert downloads and all(f"/resolve/{sha}/" in p for p in downloads)
    latest = load_source(REPO_ID)
    assert latest.info.n_params == pinned.info.n_params + 3


def test_main_moving_mid_download_changes_nothing(hub: HistoryHub, tiny_model: Path) -> None:
    """Unpinned, every file still comes from the commit main named when the download began,
    and the files are checked against that commit's listing, not main's."""
    sha, old, new = two_commits(hub, tiny_model)
    hub.push_after_first_file = (REPO_ID, new)
    model = load_source(REPO_ID)
    assert hub.push_after_first_file is None and hub.commit_sha(REPO_ID) != sha  # it moved
    assert model.path.name == sha and (model.path / MODEL).read_bytes() == old[MODEL]
    assert {name: (model.path / name).read_bytes() for name in old} == old


@pytest.mark.slow
def test_run_job_make_follows_the_plans_revision(hub: HistoryHub, tiny_model: Path,
                                                 toolchain: Any, tmp_path: Path) -> None:
    sha, _, new = two_commits(hub, tiny_model)
    hub.push(REPO_ID, new)  # the new main would not even convert (an unknown tensor)
    plan = tmp_path / "plan.json"
    ok(run(["run-job", "plan", "--model", REPO_ID, "--revision", sha, "--comment",
            "/quantize gguf=Q8_0", "-o", plan]))
    ok(run(["run-job", "make", "--plan", plan, "--method", "gguf", "--out", tmp_path / "results",
            "--owner", "qb", "--work", tmp_path / "work", "--ctx", "64", "--chunks", "4",
            "--answers", "2", "--answer-tokens", "4"]))
    results = tmp_path / "results" / "qb" / "tiny-GGUF"
    source = load_run(results).source
    assert source.repo_id == REPO_ID
    assert source.n_params == load_source(str(tiny_model)).info.n_params  # the old weights
    assert all(f"/resolve/{sha}/" in p for m, p in hub.requests if "/resolve/" in p)


def test_a_cancelled_job_cleans_up_as_ctrl_c_does(tmp_path: Path) -> None:
    """SIGTERM (a cancelled workflow job) raises SystemExit in quantbot's main thread, so its
    ``finally`` and ``except BaseException`` blocks run, the mix search's removal of its RAM
    files among them; the exit status is 143 (128 + SIGTERM), as the default's would be."""
    cleaned = tmp_path / "cleaned"
    code = ("import sys, time\nfrom pathlib import Path\nfrom bot.cli import stop_on_sigterm\n"
            "stop_on_sigterm()\ntry:\n    print('ready', flush=True)\n    time.sleep(120)\n"
            "finally:\n    Path(sys.argv[1]).write_text('yes')\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(cleaned)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert cleaned.read_text() == "yes"
