"""GPTQ 4/8-bit and AWQ 4-bit of a small trained Llama on the CPU, reloaded with transformers.

One run (module fixture) makes the model, quantizes the three variants in fresh processes,
reloads each with transformers alone in another fresh process, generates, and measures PPL/KLD
against the unquantized model (baseline computed once, shared by the GPTQ and AWQ runs).
Needs quantbot's ``gpu`` extra (gptqmodel, optimum), which the README installs.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.methods import METHODS
from runners.results import QuantRun, load_run

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> dict[str, QuantRun]:
    """`quantbot quantize SOURCE gptq bits=4,8 awq nf4` on the CPU, as a user runs it."""
    root = tmp_path_factory.mktemp("gptq")
    model = trained_model
    start = time.perf_counter()
    result = CliRunner().invoke(main, [
        "quantize", str(model), "--repo-id", "tests/trained-llama", "gptq", "bits=4,8",
        "awq", "nf4", "--device", "cpu", "--calib-samples", "8", "--calib-len", "128",
        "--ctx", "128", "--chunks", "8", "--out", str(root / "hub"), "--work", str(root / "work")])
    assert result.exit_code == 0, result.output
    print(f"\ntiming: quantize+check+measure+publish {time.perf_counter() - start:.1f}s")
    hub = root / "hub" / "quantbot"
    out = {m: load_run(hub / METHODS[m].repo_name("trained-llama")) for m in ("gptq", "awq", "nf4")}
    for run in out.values():
        print(f"baseline PPL {run.baseline.ppl}")
        for v in run.variants:
            print(f"{v.name}: PPL {v.quality.ppl} KLD {v.quality.kld_mean} same-top "
                  f"{v.quality.same_top_p} size {v.size_bytes} bpw {v.bits_per_weight} "
                  f"quant {v.params['quant_seconds']}s kernel {v.params['kernel']} "
                  f"text {v.check_output!r}")
    out["root"] = hub  # type: ignore[assignment]
    return out


def _variant(runs, name):
    return next(v for m in ("gptq", "awq", "nf4") for v in runs[m].variants if v.name == name)


@pytest.mark.parametrize("name,method", [("gptq-4bit-128g-actorder", "gptq"),
                                         ("gptq-8bit-128g-actorder", "gptq"),
                                         ("awq-4bit-128g-zp", "awq")])
def test_folder_is_a_loadable_checkpoint(runs, name, method):
    folder = runs["root"] / f"trained-llama-{method.upper()}" / name
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "quantize_config.json",
            "generation_config.json", "tokenizer_config.json"} <= names
    assert names & {"tokenizer.json", "tokenizer.model"}
    qc = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == method
    assert "offload_to_disk_path" not in json.dumps(qc)
    if method == "awq":
        assert qc["version"] == "gemm" and qc["zero_point"] is True
    else:
        assert qc["desc_act"] is True and qc["group_size"] == 128
    v = _variant(runs, name)
    assert v.check_output.strip(), "generation after reload gave no text"
    assert v.files == sorted(f"{name}/{n}" for n in names)


def test_measurements_are_present_and_sane(runs):
    base = runs["gptq"].baseline
    assert runs["awq"].baseline == base == runs["nf4"].baseline  # computed once, reused
    assert 1 < base.ppl < 512
    for run in (runs["gptq"], runs["awq"], runs["nf4"]):
        for v in run.variants:
            q = v.quality
            for x in (q.ppl, q.ppl_err, q.kld_mean, q.kld_err, q.kld_p99, q.same_top_p):
                assert x is not None and math.isfinite(x)
            assert q.kld_mean >= 0 and 0 < q.same_top_p <= 1


def test_four_bit_costs_perplexity(runs):
    base = runs["gptq"].baseline.ppl
    assert _variant(runs, "gptq-4bit-128g-actorder").quality.ppl > base
    assert _variant(runs, "awq-4bit-128g-zp").quality.ppl > base


def test_nf4_is_a_plain_transformers_checkpoint(runs):
    """NF4: quant_method bitsandbytes, double quantization, bf16 compute, lm_head kept 16-bit,
    reloaded by a plain from_pretrained in a fresh process (the pipeline's check)."""
    from safetensors import safe_open

    folder = runs["root"] / METHODS["nf4"].repo_name("trained-llama") / "nf4-dq-bfloat16"
    qc = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == "bitsandbytes" and qc["load_in_4bit"] is True
    assert qc["bnb_4bit_quant_type"] == "nf4" and qc["bnb_4bit_use_double_quant"] is True
    assert qc["bnb_4bit_compute_dtype"] == "bfloat16"
    weights = sorted(folder.glob("*.safetensors"))
    assert weights
    keys = {k for w in weights for k in safe_open(str(w), "pt").keys()}  # noqa: SIM118
    assert any(k.endswith("q_proj.weight.quant_state.bitsandbytes__nf4") for k in keys)
    assert not any(k.startswith("lm_head") and "quant_state" in k for k in keys)
    v = _variant(runs, "nf4-dq-bfloat16")
    assert v.check_output.strip() and v.params["kernel"] == "Linear4bit"
    assert 0 < v.quality.kld_mean < _variant(runs, "gptq-8bit-128g-actorder").quality.kld_mean * 1000


def test_eight_bit_is_closer_to_the_original(runs):
    k8 = _variant(runs, "gptq-8bit-128g-actorder").quality.kld_mean
    k4 = _variant(runs, "gptq-4bit-128g-actorder").quality.kld_mean
    assert k8 < k4
    assert _variant(runs, "gptq-8bit-128g-actorder").size_bytes > \
        _variant(runs, "gptq-4bit-128g-actorder").size_bytes


@pytest.mark.parametrize("method,rows,variant,flag", [
    ("gptq", 2, "gptq-4bit-128g", "gptq"), ("awq", 1, "awq-4bit-128g", "awq"),
    ("nf4", 1, "nf4-dq-bfloat16", "bitsandbytes")])
def test_card_lists_every_variant_with_hub_metadata(runs, method, rows, variant, flag):
    import yaml

    text = (runs["root"] / METHODS[method].repo_name("trained-llama") / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["base_model"] == "tests/trained-llama"
    assert meta["base_model_relation"] == "quantized"
    assert set(METHODS[method].hub_tags) <= set(meta["tags"])
    table = [line for line in text.splitlines() if line.startswith(f"| [{method}-")]
    assert len(table) == rows and all("| n/a |" not in line for line in table)
    assert f'--include "{variant}' in text and f"--quantization {flag}" in text
