"""MLX of a small trained Llama on MLX's CPU backend: mlx-lm converts 4- and 8-bit variants,
loads each in a fresh process, measures it on the windows every format shares (against the
transformers baseline) and answers like the unquantized model in mlx-lm.

One run (module fixture, slow, under a minute on 2 cores) goes through ``quantbot quantize``;
the spec and support tests at the end are fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.methods import METHODS
from bot.request import ParseError, parse_words
from runners.adaptive import schedule, settled
from runners.mlx.check import CPU_DEQUANTIZED
from runners.mlx.spec import MlxSpec, MlxVariant
from runners.results import BRANCHES_DIR, QuantRun, load_run
from runners.support.registry import support_for

slow = pytest.mark.slow
REPO = "quantbot/trained-llama-MLX"


@pytest.fixture(scope="module")
def mlx(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> tuple[QuantRun, Path, Path]:
    root = tmp_path_factory.mktemp("mlx")
    result = CliRunner().invoke(main, [
        "quantize", str(trained_model), "--repo-id", "tests/trained-llama", "mlx", "bits=4,8",
        "--device", "cpu", "--ctx", "128", "--chunks", "8", "--answers", "3",
        "--answer-tokens", "6", "--out", str(root / "hub"), "--work", str(root / "work")])
    assert result.exit_code == 0, result.output
    folder = root / "hub" / "quantbot" / METHODS["mlx"].repo_name("trained-llama")
    return load_run(folder), folder, root / "work" / "tests__trained-llama" / "transformers"


@slow
def test_each_variant_is_an_mlx_checkpoint_on_its_branch(mlx):
    run, folder, _ = mlx
    assert [(v.name, v.branch) for v in run.variants] == [
        ("mlx-4bit-64g", "main"), ("mlx-8bit-64g", "mlx-8bit-64g")]
    for bits, where in ((4, folder), (8, folder / BRANCHES_DIR / "mlx-8bit-64g")):
        config = json.loads((where / "config.json").read_text())
        assert config["quantization"] == {"group_size": 64, "bits": bits, "mode": "affine"}
        names = {p.name for p in where.iterdir()}
        assert {"model.safetensors", "tokenizer_config.json", "generation_config.json"} <= names


@slow
def test_measured_on_the_shared_windows_and_eight_bit_is_closer(mlx):
    run, _, _ = mlx
    k4, k8 = (v.quality.kld_mean for v in run.variants)
    assert 0 < k8 < k4
    four, eight = run.variants
    assert four.size_bytes < eight.size_bytes and four.params["kernel"] == "QuantizedLinear" + CPU_DEQUANTIZED
    assert four.params["eval_device"] == "cpu" and four.params["eval_dtype"] == "bfloat16"
    assert run.evaluation.chunks == 8 and run.tools["quantizer"].startswith("mlx-lm ")


@slow
def test_measured_by_the_contract_every_format_shares(mlx):
    """Adaptive windows, intervals and percentiles from the one loop: tokens used recorded, and
    each file stopped at a step of the schedule where its KLD was settled, or used every window
    (whether a toy model's 4 windows settle is the rule's business: tests/test_adaptive.py)."""
    run, _, _ = mlx
    scored = run.evaluation.ctx - 1 - run.evaluation.ctx // 2
    for v in run.variants:
        q = v.quality
        assert v.params["eval_tokens"] == v.params["eval_chunks"] * scored
        assert q.kld_err and q.same_top_err and q.kld_percentiles["p99"] == q.kld_p99
        assert q.delta_p is not None and q.delta_p["rms"] > 0
        assert q.ppl_ratio and q.ppl_ratio_err and q.ppl_base  # paired with the reference
    for v in run.variants:
        used = v.params["eval_chunks"]
        assert used in schedule(run.evaluation.chunks)
        assert settled(v.quality) or used == run.evaluation.chunks
    assert run.provenance["settings"]["adaptive"] is True


@slow
def test_answers_are_compared_with_the_unquantized_model_in_mlx(mlx):
    run, _, work = mlx
    for v in run.variants:
        assert v.answers is not None and v.answers.prompts == 3
        assert v.answers.reference == "the unquantized model in mlx-lm"
    assert list((work / "baseline").glob("answers-reference-mlx.*.json"))
    assert list((work / "baseline").glob("answers-reference.*.json"))  # transformers' own


@slow
def test_unquantized_mlx_agrees_with_the_transformers_baseline(mlx, trained_model):
    """The evaluator itself: the unquantized model's forward pass in MLX scored against the
    transformers baseline's log-probs is near zero KLD, so a variant's KLD is the quantization's."""
    from runners.hfmodel.check import check_folder

    _, _, work = mlx
    key = json.loads((work / "baseline" / "baseline.json").read_text())["key"]
    evaluation = {"blocks_file": str(work / "eval-blocks.json"),
                  "baseline_dir": str(work / "baseline"), "key": key}
    checked = check_folder(trained_model, work, "cpu", 4, quantized=False, evaluation=evaluation,
                           module="runners.mlx.check", runtime="mlx-lm")
    assert checked.measurement is not None and checked.quantized_modules == 0
    # bfloat16 in MLX against float32 in transformers (the trained model is float32)
    assert checked.measurement.quality.kld_mean < 2e-3


@slow
def test_card_has_mlx_lm_snippets(mlx):
    _, folder, _ = mlx
    card = (folder / "README.md").read_text()
    assert f"mlx_lm.generate --model {REPO} --prompt" in card
    assert f'load("{REPO}")' in card and f"mlx_lm.server --model {REPO}" in card
    assert f"[mlx-8bit-64g](https://huggingface.co/{REPO}/tree/mlx-8bit-64g)" in card
    assert "library_name: mlx\n" in card and "- mlx\n" in card
    assert "vllm" not in card.lower()
    header = next(line for line in card.splitlines() if line.startswith("| Variant |"))
    assert all(f"| {c} |" in header for c in ("KLD", "p99 KLD", "Answers like the original",
                                               "Tokens measured"))
    evaluator = next(line for line in card.splitlines() if "**Evaluator**" in line)
    assert evaluator.startswith("- **Evaluator**: transformers (")  # its own line
    assert "each file measured with mlx-lm's own forward pass" in evaluator
    assert " ± " in card.split(header)[1].splitlines()[2]  # the first row's intervals


# -- fast ----------------------------------------------------------------------------------------
def test_options_are_the_one_vocabulary():
    spec = parse_words(["mlx", "bits=3,6", "group_size=32"]).specs["mlx"]
    assert spec == MlxSpec(bits=(3, 6), group_size=(32,))
    assert spec.variant_names() == ["mlx-3bit-32g", "mlx-6bit-32g"]
    assert MlxSpec().bits_per_weight() == {"mlx-4bit-64g": 4.5}
    assert MlxVariant(8, 128).bits_per_weight() == 8.25
    with pytest.raises(ParseError, match="MLX bits must be one of 4, 2, 3, 6, 8, not 5"):
        parse_words(["mlx", "bits=5"])
    with pytest.raises(ParseError, match="group_size must be one of 64, 32, 128"):
        parse_words(["mlx", "group_size=16"])


def test_support_comes_from_mlx_lm_s_own_modules():
    ok = support_for("MistralForCausalLM", "mistral")["mlx"]
    assert ok.supported and "mlx_lm.models.llama" in ok.reason  # mlx-lm's own remapping
    vision = support_for("Gemma3ForConditionalGeneration", "gemma3")["mlx"]
    assert vision.supported and "text model only" in vision.reason
    olmo = support_for("OlmoForCausalLM", "olmo")["mlx"]
    assert not olmo.supported and "ai2-olmo" in olmo.reason
    assert not support_for("ChameleonForConditionalGeneration", "chameleon")["mlx"].supported
    made_up = support_for("EvilForCausalLM", "llama")["mlx"]
    assert not made_up.supported and "EvilForCausalLM" in made_up.reason


def test_rope_parameters_reach_mlx_lm(tmp_path):
    """mlx-lm 0.32 reads only top-level rope fields; transformers 5 writes rope_parameters, so a
    converted SmolLM2 (theta 100000) would run with mlx-lm's default 10000 (KLD 0.14 unquantized)."""
    from runners.errors import QuantbotError
    from runners.mlx.quantize import rope_fields, verify_folder

    assert rope_fields({"rope_parameters": {"rope_theta": 1e5, "rope_type": "default"}}) == \
        {"rope_theta": 1e5}
    assert rope_fields({"rope_parameters": {"rope_theta": 5e5, "rope_type": "llama3",
                                            "factor": 8.0}}) == \
        {"rope_theta": 5e5, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}
    assert rope_fields({"rope_theta": 1e5, "rope_parameters": {"rope_theta": 1e5}}) == {}
    (tmp_path / "config.json").write_text(json.dumps({
        "rope_parameters": {"rope_theta": 1e5}, "quantization": {"bits": 4, "group_size": 64}}))
    with pytest.raises(QuantbotError, match="lacks the top-level rope_theta mlx-lm reads"):
        verify_folder(tmp_path, MlxVariant())
