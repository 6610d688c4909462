"""Bad input: a one-line error naming the problem and the fix, and no output folder at all."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main


def _quantize(source: str, out: Path, *extra: str):
    result = CliRunner().invoke(main, ["quantize", source, "--out", str(out),
                                       "--work", str(out.parent / "work"), *extra])
    assert result.exit_code != 0
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: ") and "Fix:" in error, result.output
    assert not out.exists()
    return error


def _copy(tiny_model: Path, dest: Path) -> Path:
    shutil.copytree(tiny_model, dest)
    return dest


def test_missing_folder(tmp_path):
    assert "does not exist" in _quantize(str(tmp_path / "nope"), tmp_path / "out")


def test_no_config(tmp_path):
    (tmp_path / "model").mkdir()
    assert "no config.json" in _quantize(str(tmp_path / "model"), tmp_path / "out")


def test_unsupported_architecture(tmp_path, tiny_model, toolchain):
    model = _copy(tiny_model, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    config["architectures"] = ["FrobnicatorForCausalLM"]
    (model / "config.json").write_text(json.dumps(config))
    error = _quantize(str(model), tmp_path / "out")
    assert "FrobnicatorForCausalLM not registered by convert_hf_to_gguf.py" in error


@pytest.mark.parametrize("architectures", [["Llama ForCausalLM"], ["LlamaForCausalLM", 7],
                                           "LlamaForCausalLM", ["LlamaForCausalLM", "x.y"]])
def test_malformed_architecture_is_refused_by_name(tmp_path, architectures):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": architectures,
                                                   "model_type": "llama"}))
    (model / "model.safetensors").write_bytes(b"")
    error = _quantize(str(model), tmp_path / "out", "gptq")
    assert "names a malformed architecture" in error and "not a Python class name" in error


def test_unknown_type(tmp_path, tiny_model, toolchain):
    error = _quantize(str(tiny_model), tmp_path / "out", "gguf=Q4_K_M,Q9_9")
    assert "unknown GGUF type 'Q9_9'" in error


def test_unknown_method(tmp_path, tiny_model):
    error = _quantize(str(tiny_model), tmp_path / "out", "exl9")
    assert "unknown option 'exl9'" in error and "gguf" in error


def test_remote_code_refused_unless_allowed(tmp_path, tiny_model, toolchain):
    model = _copy(tiny_model, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}
    (model / "config.json").write_text(json.dumps(config))
    assert "--allow-remote-code" in _quantize(str(model), tmp_path / "out")


def test_pickle_only_refused_unless_allowed(tmp_path, tiny_model, toolchain):
    model = _copy(tiny_model, tmp_path / "model")
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    assert "--allow-pickle" in _quantize(str(model), tmp_path / "out")


@pytest.mark.parametrize("bad", ["48", "0G", "12T"])
def test_bad_split_size(tmp_path, tiny_model, toolchain, bad):
    assert "split size" in _quantize(str(tiny_model), tmp_path / "out", "gguf=Q8_0",
                                     "--split-size", bad)


def test_too_few_evaluation_tokens(tmp_path, tiny_model, toolchain):
    error = _quantize(str(tiny_model), tmp_path / "out", "--ctx", "64", "--chunks", "2",
                          "--answers", "2", "--answer-tokens", "4")
    assert "scores only 62 tokens" in error and "raise --chunks or --ctx" in error


def test_unusable_repo_id(tmp_path, tiny_model):
    error = _quantize(str(tiny_model), tmp_path / "out", "--repo-id", "evil/$(id)")
    assert "is not a usable repository id" in error
