"""FP8 dynamic of a small trained Llama on the CPU: the compressed-tensors checkpoint vLLM loads,
reloaded with transformers in a fresh process, measured and answering like the original.

One run (module fixture, slow, about 40 s on 2 cores) goes through ``quantbot quantize``; the
spec, ignore-list and verification tests at the end are fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.methods import METHODS
from bot.request import ParseError, parse_words
from runners.errors import QuantbotError
from runners.fp8.quantize import ignore_list, verify_folder
from runners.fp8.spec import Fp8Spec, Fp8Variant
from runners.results import QuantRun, load_run

slow = pytest.mark.slow


@pytest.fixture(scope="module")
def fp8(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> tuple[QuantRun, Path]:
    root = tmp_path_factory.mktemp("fp8")
    result = CliRunner().invoke(main, [
        "quantize", str(trained_model), "--repo-id", "tests/trained-llama", "fp8",
        "--device", "cpu", "--ctx", "128", "--chunks", "4", "--answers", "3",
        "--answer-tokens", "6", "--out", str(root / "hub"), "--work", str(root / "work")])
    assert result.exit_code == 0, result.output
    folder = root / "hub" / "quantbot" / METHODS["fp8"].repo_name("trained-llama")
    return load_run(folder), folder


@slow
def test_the_checkpoint_is_what_llm_compressor_writes_for_fp8_dynamic(fp8):
    """What vLLM's compressed-tensors loader reads: one config group on every Linear, FP8
    weights per channel (static), FP8 activations per token (dynamic), lm_head ignored."""
    _, folder = fp8
    qc = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == "compressed-tensors" and qc["format"] == "float-quantized"
    assert qc["quantization_status"] == "compressed" and "lm_head" in qc["ignore"]
    (group,) = qc["config_groups"].values()
    assert group["targets"] == ["Linear"]
    assert {k: group["weights"][k] for k in ("num_bits", "type", "strategy", "symmetric", "dynamic")} \
        == {"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True, "dynamic": False}
    acts = group["input_activations"]
    assert (acts["num_bits"], acts["type"], acts["strategy"], acts["dynamic"]) == (8, "float", "token", True)


@slow
def test_weights_are_fp8_with_a_scale_per_output_channel_and_lm_head_stays_16_bit(fp8):
    from safetensors import safe_open

    _, folder = fp8
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        q = f.get_slice("model.layers.0.self_attn.q_proj.weight")
        scale = f.get_slice("model.layers.0.self_attn.q_proj.weight_scale")
        assert q.get_dtype() == "F8_E4M3" and scale.get_shape() == [q.get_shape()[0], 1]
        assert f.get_slice("lm_head.weight").get_dtype() == "BF16"
        assert not any("zero_point" in k for k in f.keys())  # noqa: SIM118  symmetric


@slow
def test_measured_close_to_the_original_and_answers_compared_in_transformers(fp8):
    run, _ = fp8
    (v,) = run.variants
    assert v.name == Fp8Variant.name and v.branch == "main"
    assert v.params["kernel"] == "Linear (compressed-tensors)" and v.check_output.strip()
    assert 0 < v.quality.kld_mean < 0.01 and v.quality.same_top_p > 0.9
    assert v.answers is not None and v.answers.prompts == 3
    assert v.answers.reference == "the unquantized model in transformers"
    # the trained model is float32: FP8 weights plus 16-bit embeddings, under 16 bits a weight
    assert 8 < v.bits_per_weight < 16



@slow
def test_measured_by_the_contract_every_format_shares(fp8):
    """The transformers evaluator's record: windows used and tokens scored, intervals,
    percentiles and Δp; the card's columns show them."""
    run, folder = fp8
    (v,) = run.variants
    scored = run.evaluation.ctx - 1 - run.evaluation.ctx // 2
    assert 1 <= v.params["eval_chunks"] <= run.evaluation.chunks
    assert v.params["eval_tokens"] == v.params["eval_chunks"] * scored
    q = v.quality
    assert q.kld_err and q.same_top_err is not None and q.kld_percentiles["p99"] == q.kld_p99
    assert q.delta_p is not None and q.ppl_ratio and q.ppl_ratio_err  # paired with the reference
    card = (folder / "README.md").read_text()
    header = next(line for line in card.splitlines() if line.startswith("| Variant |"))
    assert all(f"| {c} |" in header for c in ("KLD", "p99 KLD", "Answers like the original",
                                               "Tokens measured"))
    row = card.split(header)[1].splitlines()[2]
    assert f"| {v.params['eval_tokens']} |" in row and " ± " in row


@slow
def test_card_has_vllm_and_transformers_snippets(fp8):
    _, folder = fp8
    card = (folder / "README.md").read_text()
    repo = "quantbot/trained-llama-FP8-dynamic"
    assert f"vllm serve {repo} --quantization compressed-tensors\n" in card
    assert 'AutoModelForCausalLM.from_pretrained(repo, device_map="auto")' in card
    assert "pip install -U transformers accelerate compressed-tensors" in card
    assert "- compressed-tensors\n" in card and "- fp8\n" in card


# -- fast ----------------------------------------------------------------------------------------
def test_fp8_has_no_options_and_says_so():
    assert parse_words(["fp8"]).specs["fp8"] == Fp8Spec()
    with pytest.raises(ParseError, match="FP8 has no options"):
        parse_words(["fp8=x"])
    with pytest.raises(ParseError, match="does not apply after fp8"):
        parse_words(["fp8", "double_quant=false"])  # NF4's option, not FP8's
    assert Fp8Spec().bits_per_weight() == {"fp8-dynamic": 8.23}


def test_vision_towers_and_routers_stay_16_bit():
    text = ignore_list({"model_type": "llama"})
    assert text == ["lm_head", "re:.*mlp[.]gate$"]
    vision = ignore_list({"model_type": "gemma3", "vision_config": {"hidden_size": 8}})
    assert "re:.*vision_tower.*" in vision and "re:.*multi_modal_projector.*" in vision


def test_verify_refuses_another_scheme(tmp_path):
    config = {"quantization_config": {
        "quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
        "config_groups": {"group_0": {
            "weights": {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False},
            "input_activations": {"num_bits": 8, "type": "float", "strategy": "token",
                                  "dynamic": True}}}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(QuantbotError, match=r"'weights': \(8, 'float', 'tensor', False\).*"
                                            r"quantize this variant again"):
        verify_folder(tmp_path, Fp8Variant())
