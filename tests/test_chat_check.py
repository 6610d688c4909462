"""The GGUF's embedded chat template is the original's, and a tool call renders through it in
llama-cpp-python's own Jinja handling (real templates of current releases, real converter)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runners.gguf import llama_tools
from runners.gguf.chat_check import ChatTemplateCheck, check_chat_template

pytestmark = pytest.mark.slow


def _with_template(tiny_model: Path, root: Path, template: str | None) -> Path:
    folder = root / "model"
    shutil.copytree(tiny_model, folder)
    if template is not None:
        config = json.loads((folder / "tokenizer_config.json").read_text())
        config["chat_template"] = template
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(("name", "tool_calls"), [
    ("Qwen-Qwen3-0.6B.jinja", True), ("meta-llama-Llama-3.1-8B-Instruct.jinja", True),
    ("google-gemma-2-2b-it.jinja", False)])
def test_template_round_trip_and_tool_calls(tmp_path, tiny_model, toolchain, name, tool_calls):
    template = (toolchain.src_dir / "models" / "templates" / name).read_text()
    folder = _with_template(tiny_model, tmp_path, template)
    gguf = tmp_path / "m.gguf"
    llama_tools.convert(toolchain, folder, gguf, "f16")
    got = check_chat_template(toolchain, gguf, template, bos="<s>", eos="</s>")
    assert got.embedded == "same"
    assert got.tool_calls is tool_calls, got
    assert ("renders tool calls" in got.describe()) is tool_calls
    other = check_chat_template(toolchain, gguf, template + " ", bos="<s>", eos="</s>")
    assert other.embedded == "different"


def test_no_template(tmp_path, tiny_model, toolchain):
    gguf = tmp_path / "m.gguf"
    llama_tools.convert(toolchain, _with_template(tiny_model, tmp_path, None), gguf, "f16")
    got = check_chat_template(toolchain, gguf, None)
    assert got == ChatTemplateCheck("none in the source", None)
    assert "has none" in got.describe()
