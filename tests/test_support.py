"""The support snapshot (runners/support/registry.json): matches the pins, the tools, known facts."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import metadata, resources
from pathlib import Path

import pytest

from runners.llamacpp import LLAMA_CPP_PYTHON_VERSION, toolchain
from runners.support import registry
from runners.support.registry import Registry, methods_for, snapshot_versions, support, support_for
from runners.support.snapshot import COMMAND, render

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
REGENERATE = f"regenerate the snapshot: {COMMAND}"


def _packaged_text() -> str:
    return resources.files("runners.support").joinpath("registry.json").read_text(encoding="utf-8")


def _pinned(dist: str) -> str:
    """The ``dist==X`` pin in pyproject.toml's dependencies or optional dependencies."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    specs = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        specs.extend(group)
    pins = {m.group(1) for s in specs if (m := re.fullmatch(rf"{re.escape(dist)}\s*==\s*([^\s;,]+)", s))}
    assert len(pins) == 1, f"expected one {dist}==X pin in {PYPROJECT}, found {sorted(pins)}"
    return pins.pop()


# ---- (a) the snapshot was generated from the pinned versions ------------------------------------

def test_snapshot_llama_cpp_python_version_is_the_pin():
    recorded = snapshot_versions()["llama-cpp-python"]
    assert recorded == LLAMA_CPP_PYTHON_VERSION, (
        f"registry.json was generated from llama-cpp-python {recorded} but runners.llamacpp pins "
        f"{LLAMA_CPP_PYTHON_VERSION}; build the new toolchain and {REGENERATE}")


def test_snapshot_gptqmodel_version_is_the_pin():
    recorded, pinned = snapshot_versions()["gptqmodel"], _pinned("gptqmodel")
    assert recorded == pinned, (
        f"registry.json was generated from gptqmodel {recorded} but pyproject.toml pins {pinned}; "
        f"install the pin and {REGENERATE}")


def test_packaged_snapshot_is_in_canonical_form():
    text = _packaged_text()
    assert render(json.loads(text)) == text, f"registry.json was edited by hand; {REGENERATE}"


# ---- (b) known facts ----------------------------------------------------------------------------

GGUF_TEXT_MODELS = [
    ("LlamaForCausalLM", "llama"),
    ("Qwen3ForCausalLM", "qwen3"),
    ("Qwen3MoeForCausalLM", "qwen3_moe"),
    ("Gemma3ForConditionalGeneration", "gemma3"),
    ("GptOssForCausalLM", "gpt_oss"),
    ("DeepseekV3ForCausalLM", "deepseek_v3"),
    ("NemotronHForCausalLM", "nemotron_h"),
    ("GraniteMoeHybridForCausalLM", "granitemoehybrid"),
    ("Lfm2ForCausalLM", "lfm2"),
    ("Olmo3ForCausalLM", "olmo3"),
    ("SmolLM3ForCausalLM", "smollm3"),
]


@pytest.mark.parametrize(("architecture", "model_type"), GGUF_TEXT_MODELS)
def test_known_architectures_convert_to_gguf(architecture, model_type):
    verdict = support_for(architecture, model_type)["gguf"]
    assert verdict.supported, verdict.reason
    assert "llama-cpp-python " + LLAMA_CPP_PYTHON_VERSION in verdict.reason


@pytest.mark.parametrize(("architecture", "model_type"), GGUF_TEXT_MODELS)
def test_known_architectures_quantize_with_gptqmodel_and_load_in_transformers(architecture, model_type):
    assert methods_for(architecture, model_type) == ["gguf", "gptq", "awq", "nf4"]


def test_gemma3_is_multimodal_with_an_mmproj_converter():
    result = support("Gemma3ForConditionalGeneration", "gemma3")
    assert result.multimodal and result.mmproj
    assert "--mmproj" in result["gguf"].reason


def test_plain_text_model_is_not_multimodal():
    result = support("Qwen3ForCausalLM", "qwen3")
    assert not result.multimodal and not result.mmproj


def test_unknown_architecture_is_unsupported_with_reasons():
    verdicts = support_for("NoSuchModelForCausalLM", "no_such_model")
    assert not any(v.supported for v in verdicts.values())
    assert verdicts["gguf"].reason == (
        "NoSuchModelForCausalLM not registered by convert_hf_to_gguf.py of llama.cpp in "
        f"llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}")
    assert f"GPTQModel {_pinned('gptqmodel')}" in verdicts["gptq"].reason
    assert "NoSuchModelForCausalLM is no causal-LM" in verdicts["nf4"].reason


@pytest.mark.parametrize("architecture", ["EvilForCausalLM", "Llama ForCausalLM", "<img src=x>",
                                          "Qwen3ForCausalLM"])
def test_a_gpu_method_takes_no_architecture_transformers_would_not_build(architecture):
    # model_type llama is GPTQModel's and transformers', but the declared class is made up, not a
    # class name, or another model's: the config says one model and would load another.
    verdicts = support_for(architecture, "llama")
    assert not any(verdicts[m].supported for m in ("gptq", "awq", "nf4"))
    assert architecture in verdicts["gptq"].reason and "GPTQModel" in verdicts["gptq"].reason
    assert architecture in verdicts["nf4"].reason


def test_every_declared_architecture_must_be_taken():
    one = registry.support_all(["LlamaForCausalLM"], "llama")
    assert one.methods == ["gguf", "gptq", "awq", "nf4"]
    assert one.verdicts == support("LlamaForCausalLM", "llama").verdicts
    two = registry.support_all(["LlamaForCausalLM", "NoSuchForCausalLM"], "llama")
    assert two.methods == [] and two.architecture == "LlamaForCausalLM"
    assert two["gguf"].reason.startswith("NoSuchForCausalLM (one of 2 architectures declared): ")
    assert registry.support_all(["LlamaForCausalLM"] * 2, "llama").methods == one.methods
    with pytest.raises(ValueError, match="at least one"):
        registry.support_all([], "llama")


def test_model_type_is_inferred_from_transformers_when_not_given():
    verdict = support_for("Qwen3ForCausalLM", None)["gptq"]
    assert verdict.supported and "'qwen3'" in verdict.reason
    assert registry.model_types_for("Qwen3ForCausalLM") == ["qwen3"]
    assert registry.architecture_for("qwen3") == "Qwen3ForCausalLM"


def test_text_config_architecture_decides_gguf():
    # The converter converts a multimodal model's text part by text_config.architectures[0].
    verdict = support_for("NoSuchVlForConditionalGeneration", None, {"gguf": "converter"},
                          text_architecture="LlamaForCausalLM")["gguf"]
    assert verdict.supported and verdict.reason.startswith("LlamaForCausalLM registered")


def test_caller_chooses_the_methods_and_their_sources():
    verdicts = support_for("LlamaForCausalLM", "llama", {"q4": "converter", "int4": "gptqmodel"})
    assert list(verdicts) == ["q4", "int4"]
    with pytest.raises(ValueError, match="unknown support sources"):
        support_for("LlamaForCausalLM", "llama", {"gguf": "llama.cpp"})


def test_malformed_snapshot_names_the_command():
    with pytest.raises(ValueError, match=re.escape(COMMAND)):
        Registry({"versions": {}})


# ---- (c) regenerating from the pinned tools gives the packaged bytes --------------------------------

@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    src = toolchain().src_dir
    if not (src / "convert_hf_to_gguf.py").is_file() or not (src / "conversion").is_dir():
        pytest.skip(f"llama.cpp tree not built at {src} (the README install builds it)")
    from runners.support.snapshot import write

    out = tmp_path_factory.mktemp("support") / "registry.json"
    write(out)
    return {"text": out.read_text(encoding="utf-8"), "data": json.loads(out.read_text(encoding="utf-8"))}


@pytest.mark.slow
def test_regenerated_converter_and_gptqmodel_sections_match(regenerated):
    packaged = json.loads(_packaged_text())
    for section in ("converter", "gptqmodel"):
        assert regenerated["data"][section] == packaged[section], (
            f"registry.json's {section} section differs from the pinned tools; {REGENERATE}")


@pytest.mark.slow
def test_regenerated_snapshot_is_identical(regenerated):
    installed, recorded = metadata.version("transformers"), snapshot_versions()["transformers"]
    if installed != recorded:
        pytest.skip(f"transformers {installed} is installed, registry.json was made with {recorded} "
                    "(transformers is a range, not a pin)")
    assert regenerated["text"] == _packaged_text(), f"registry.json is stale; {REGENERATE}"
