"""GPTQ/AWQ pure logic: variant specs, token blocks, PPL/KLD math, quantizer settings."""

from __future__ import annotations

import json
import math

import pytest

from runners.errors import QuantbotError
from runners.gptq.calibration import cut_blocks
from runners.gptq.evaluate import baseline_key, first_scored, summarize
from runners.gptq.quantize import prepare_env, quantize_config_kwargs, scrub_config, verify_folder
from runners.gptq.types import QuantSpec, parse_group, parse_specs


def test_defaults_are_the_usual_recipes():
    g = QuantSpec.gptq()
    assert (g.bits, g.group_size, g.desc_act, g.damp_percent, g.sym) == (4, 128, True, 0.01, True)
    assert g.name == "gptq-4bit-128g-actorder"
    a = QuantSpec.awq()
    assert (a.bits, a.group_size, a.desc_act, a.sym) == (4, 128, False, False)
    assert a.name == "awq-4bit-128g-zp"
    assert a.params() == {"bits": 4, "group_size": "128", "zero_point": True, "version": "gemm"}


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("group", ["32", "64", "128", "none"])
def test_gptq_options(bits, group):
    spec = QuantSpec.gptq(bits, group, act_order=False)
    assert spec.group_size == parse_group(group)
    assert spec.name.startswith(f"gptq-{bits}bit-")
    assert "actorder" not in spec.name


@pytest.mark.parametrize("make", [
    lambda: QuantSpec.gptq(5), lambda: QuantSpec.gptq(4, 256), lambda: QuantSpec.gptq(damp=0),
    lambda: QuantSpec.awq(8), lambda: QuantSpec.awq(4, "none"), lambda: QuantSpec("awq", 4, 128, True),
    lambda: QuantSpec("exl2"), lambda: parse_group("big"),
])
def test_bad_variants_name_the_fix(make):
    with pytest.raises(QuantbotError) as err:
        make()
    assert "Fix:" in str(err.value)


def test_parse_specs():
    assert parse_specs("gptq", None) == [QuantSpec.gptq()]
    assert [s.name for s in parse_specs("gptq", "4, 8:none, 4")] == [
        "gptq-4bit-128g-actorder", "gptq-8bit-nogroup-actorder"]
    assert parse_specs("awq", "4:64") == [QuantSpec.awq(4, 64)]
    with pytest.raises(QuantbotError):
        parse_specs("gptq", "four")


def test_cut_blocks_are_contiguous_and_never_padded():
    ids = list(range(100))
    blocks = cut_blocks(ids, 10, 50, bos_id=-1)
    assert len(blocks) == 11  # 100 // 9
    assert blocks[0] == [-1, *range(9)] and blocks[1][1] == 9
    assert all(len(b) == 10 for b in blocks)
    assert cut_blocks(ids, 10, 3) == [list(range(10)), list(range(10, 20)), list(range(20, 30))]
    assert cut_blocks(ids[:5], 10, 3) == []


def test_summarize_matches_hand_math():
    nll = [math.log(4.0)] * 10 + [math.log(16.0)] * 10
    m = summarize(nll, kld=[0.0] * 19 + [1.0], same=[1.0] * 15 + [0.0] * 5)
    assert m.ppl == pytest.approx(8.0)
    assert m.n_scored == 20
    assert m.kld_mean == pytest.approx(0.05)
    assert m.kld_p99 == pytest.approx(1.0)
    assert m.same_top_p == pytest.approx(0.75)
    assert m.ppl_err > 0
    with pytest.raises(QuantbotError):
        summarize([1.0])


def test_window_terms_kld():
    torch = pytest.importorskip("torch")
    from runners.gptq.evaluate import window_terms

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 50, generator=g)
    tokens = torch.randint(0, 50, (16,), generator=g)
    base = window_terms(logits, tokens)
    assert base["nll"].shape == (16 - first_scored(16) - 1,)
    same = window_terms(logits, tokens, base["logprobs"])
    assert same["kld"].abs().max() < 1e-5 and same["same"].min() == 1
    noisy = window_terms(logits + 0.5 * torch.randn(16, 50, generator=g), tokens, base["logprobs"])
    assert noisy["kld"].mean() > 1e-3


def test_quantizer_settings():
    g = quantize_config_kwargs(QuantSpec.gptq(), on_cuda=False)
    assert g == {"bits": 4, "group_size": 128, "sym": True, "pack_impl": "original",
                 "method": "gptq", "format": "gptq", "desc_act": True, "damp_percent": 0.01}
    a = quantize_config_kwargs(QuantSpec.awq(), on_cuda=True)
    assert a == {"bits": 4, "group_size": 128, "sym": False, "pack_impl": "gpu",
                 "method": "awq", "format": "gemm"}


def test_prepare_env_gives_gptqmodel_two_workers_on_small_machines():
    assert prepare_env({}, cpus=1)["GPTQMODEL_CPU_WORKERS"] == "2"
    assert prepare_env({}, cpus=16)["GPTQMODEL_CPU_WORKERS"] == "8"
    assert "GPTQMODEL_CPU_WORKERS" not in prepare_env({"GPTQMODEL_CPU_WORKERS": "3"}, cpus=2)
    assert prepare_env({}, cpus=2)["GPTQMODEL_OFFLINE"] == "1"


def test_scrub_config_drops_local_paths():
    cfg = {"quantization_config": {"bits": 4, "meta": {"offload_to_disk_path": "/tmp/x", "k": 1}}}
    assert scrub_config(cfg) == {"quantization_config": {"bits": 4, "meta": {"k": 1}}}
    assert cfg["quantization_config"]["meta"]["offload_to_disk_path"] == "/tmp/x"


def test_verify_folder(tmp_path):
    spec = QuantSpec.gptq()
    with pytest.raises(QuantbotError, match=r"no config\.json"):
        verify_folder(tmp_path, spec)
    (tmp_path / "config.json").write_text(json.dumps(
        {"quantization_config": {"quant_method": "gptq", "bits": 4}}))
    with pytest.raises(QuantbotError, match=r"lacks model\.safetensors, quantize_config\.json"):
        verify_folder(tmp_path, spec)
    for name in ("model.safetensors", "quantize_config.json", "tokenizer.json",
                 "generation_config.json"):
        (tmp_path / name).write_text("{}")
    assert "model.safetensors" in verify_folder(tmp_path, spec)
    with pytest.raises(QuantbotError, match="expected 'awq' 4"):
        verify_folder(tmp_path, QuantSpec.awq())


def test_baseline_key_depends_on_tokens_and_model():
    assert baseline_key([[1, 2]], "a") != baseline_key([[1, 3]], "a")
    assert baseline_key([[1, 2]], "a") != baseline_key([[1, 2]], "b")
