"""One method's failure is not the request's: the others are made, measured and published, and
the failure is reported beside them (exit status 1)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from runners.demo_model import build_demo_model
from tests.conftest import TINY

#: 192 wide: GGUF Q8_0 (blocks of 32) fits, a GPTQ group of 128 does not.
NARROW = dataclasses.replace(TINY, hidden_size=192, intermediate_size=384, num_attention_heads=3,
                             num_key_value_heads=1)


@pytest.fixture(scope="module")
def narrow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_model(NARROW, root=tmp_path_factory.mktemp("narrow"))


def test_a_failing_method_leaves_the_others_published(tmp_path, narrow_model, toolchain):
    out = tmp_path / "hub"
    result = CliRunner().invoke(main, [
        "quantize", str(narrow_model), "--repo-id", "tests/narrow-llama", "--out", str(out),
        "--work", str(tmp_path / "work"), "--ctx", "64", "--chunks", "4", "--answers", "2",
        "--answer-tokens", "4", "gguf=Q8_0", "gptq", "group_size=128"])
    assert result.exit_code == 1, result.output
    assert "quantbot/narrow-llama-GGUF: 3 files" in result.stdout, result.stdout
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: GPTQ failed (1 other repository was published)")
    assert "group_size=128 does not divide" in error and "Fix: use group_size=64" in error
    run = json.loads((out / "quantbot" / "narrow-llama-GGUF" / "quantbot.json").read_text())
    assert [v["name"] for v in run["variants"]] == ["Q8_0"]
    assert not (out / "quantbot" / "narrow-llama-GPTQ").exists()
