"""The runtime snippets of a GGUF card name a repository and files that exist: each is read back
from the rendered card and checked against the published folder."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, toolchain) -> Path:
    root = tmp_path_factory.mktemp("snippets")
    result = CliRunner().invoke(main, [
        "quantize", str(tiny_model), "--repo-id", "acme/tiny", "gguf=Q4_K_M,Q8_0", "--ctx", "64",
        "--chunks", "4",
        "--answers", "2", "--answer-tokens", "4", "--out", str(root / "hub"), "--work", str(root / "work")])
    assert result.exit_code == 0, result.output
    return root / "hub" / "quantbot" / "tiny-GGUF"


def _quant_files(folder: Path, quant: str) -> list[str]:
    return [p.name for p in folder.glob(f"*.{quant}*.gguf")]


def test_every_snippet_names_what_is_there(folder: Path) -> None:
    card = (folder / "README.md").read_text()
    repo = "quantbot/tiny-GGUF"
    refs = re.findall(r"(?:-hf|hf\.co/)\s*([\w./-]+):(\w+)", card)
    assert len(refs) >= 3  # llama-server, llama-cli, ollama
    for rid, quant in refs:
        assert rid.removeprefix("hf.co/") == repo and _quant_files(folder, quant), (rid, quant)
    (lms,) = re.findall(r"lms get ([\w./-]+)@(\w+)", card)
    assert lms[0] == repo and _quant_files(folder, lms[1])
    files = re.findall(r'filename="([^"]+)"', card) + re.findall(r"-m (\S+\.gguf)", card)
    assert files and all((folder / f).is_file() for f in files)
    downloads = [shlex.split(line) for line in card.splitlines() if line.startswith("hf download")]
    for argv in downloads:
        assert argv[2] == repo and (folder / argv[argv.index("--include") + 1]).is_file()
