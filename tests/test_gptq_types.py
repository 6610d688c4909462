"""GPTQ/AWQ pure logic: variant specs, token blocks, PPL/KLD math, quantizer settings."""

from __future__ import annotations

import json
import math

import pytest

from runners.errors import QuantbotError
from runners.gptq.quantize import (
    forward_batch,
    prepare_env,
    quantize_config_kwargs,
    scrub_config,
    verify_folder,
)
from runners.gptq.spec import MAX_VARIANTS, AwqSpec, GptqSpec
from runners.gptq.types import AWQ_OPTIONS, GPTQ_OPTIONS, QuantSpec
from runners.hfmodel.calibration import cut_blocks
from runners.hfmodel.evaluate import baseline_key, first_scored, summarize
from runners.options import Option, OptionError


def test_defaults_are_the_usual_recipes():
    g = QuantSpec.gptq()
    assert (g.bits, g.group_size, g.desc_act, g.damp_percent, g.sym) == (4, 128, True, 0.01, True)
    assert g.name == "gptq-4bit-128g-actorder"
    a = QuantSpec.awq()
    assert (a.bits, a.group_size, a.desc_act, a.sym) == (4, 128, False, False)
    assert a.name == "awq-4bit-128g-zp"
    assert a.params() == {"bits": 4, "group_size": "128", "zero_point": True, "version": "gemm"}


def option(options: tuple[Option, ...], name: str) -> Option:
    return next(o for o in options if o.name == name)


GPTQ_GROUP = option(GPTQ_OPTIONS, "group_size")


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize(("group", "size"), [("32", 32), ("64", 64), ("128", 128), ("none", -1)])
def test_gptq_options(bits, group, size):
    assert GPTQ_GROUP.read(group, "GPTQ") == (size,)
    spec = QuantSpec.gptq(bits, size, act_order=False)
    assert spec.group_size == size
    assert spec.group_label == group
    assert spec.name.startswith(f"gptq-{bits}bit-{'nogroup' if size == -1 else f'{size}g'}")
    assert "actorder" not in spec.name
    assert spec.options() == {"bits": bits, "group_size": size, "act_order": False, "damp": 0.01}


@pytest.mark.parametrize("make", [
    lambda: QuantSpec.gptq(5), lambda: QuantSpec.gptq(4, 256), lambda: QuantSpec.gptq(damp=0),
    lambda: QuantSpec.awq(8), lambda: QuantSpec.awq(4, -1), lambda: QuantSpec("awq", 4, 128, True),
    lambda: QuantSpec("exl2"), lambda: GPTQ_GROUP.read("big", "GPTQ"),
    lambda: option(AWQ_OPTIONS, "group_size").read("none", "AWQ"),
])
def test_bad_variants_name_the_fix(make):
    with pytest.raises(QuantbotError) as err:
        make()
    assert "Fix:" in str(err.value)


def test_specs_make_every_combination():
    # What `--gptq-variants` used to say now reads as the chat's words: gptq bits=4,8 …
    assert GptqSpec().variants() == [QuantSpec.gptq(group_size=0)]  # "auto", resolved later
    assert AwqSpec().variants() == [QuantSpec.awq(group_size=0)]
    bits = option(GPTQ_OPTIONS, "bits").read("4, 8, 4", "GPTQ")
    assert bits == (4, 8)  # duplicates dropped, order kept
    groups = GPTQ_GROUP.read("128,none", "GPTQ")
    assert groups == (128, -1)
    assert GptqSpec(bits=bits, group_size=groups).variant_names() == [
        "gptq-4bit-128g-actorder", "gptq-4bit-nogroup-actorder",
        "gptq-8bit-128g-actorder", "gptq-8bit-nogroup-actorder"]
    assert GptqSpec(bits=(8,), group_size=(-1,)).variants() == [QuantSpec.gptq(8, -1)]
    awq_groups = option(AWQ_OPTIONS, "group_size").read("64", "AWQ")
    assert AwqSpec(group_size=awq_groups).variants() == [QuantSpec.awq(4, 64)]
    with pytest.raises(OptionError):
        option(GPTQ_OPTIONS, "bits").read("four", "GPTQ")
    with pytest.raises(QuantbotError):
        GptqSpec(bits=(5,))
    with pytest.raises(QuantbotError):
        AwqSpec(group_size=(-1,))


def test_too_many_variants_is_an_error():
    many = GptqSpec(bits=(2, 4), group_size=(32, 64), act_order=(True, False))
    assert len(many.variants()) == MAX_VARIANTS
    with pytest.raises(QuantbotError, match=f"at most {MAX_VARIANTS} variants"):
        GptqSpec(bits=(2, 3, 4, 8), group_size=(32, 64, 128))


def test_spec_names_estimates_and_descriptions():
    assert GptqSpec().variant_names() == ["gptq-4bit-autog-actorder"]
    spec = GptqSpec(bits=(4, 8), group_size=(128,), damp=(0.05,))
    assert spec.variant_names() == ["gptq-4bit-128g-actorder-damp0.05",
                                    "gptq-8bit-128g-actorder-damp0.05"]
    assert spec.bits_per_weight() == {"gptq-4bit-128g-actorder-damp0.05": 4.51,
                                      "gptq-8bit-128g-actorder-damp0.05": 8.54}
    assert QuantSpec.gptq().bits_per_weight() == 4.51
    assert len(spec.describe().split("; ")) == 2  # one part per variant
    assert "0.05" in spec.describe() and "8" in spec.describe()
    assert "64" in AwqSpec(group_size=(64,), zero_point=(False,)).describe()
    assert "none" in GptqSpec(group_size=(-1,)).describe()  # -1 in the users' word


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
    q = m.quality
    assert q.ppl == pytest.approx(8.0)
    assert m.n_scored == 20
    assert q.kld_mean == pytest.approx(0.05)
    assert q.kld_p99 == pytest.approx(0.81)  # llama-perplexity's interpolation: 0.99 x 19 = 18.81
    assert q.kld_percentiles["max"] == 1.0 and q.kld_percentiles["median"] == 0.0
    assert q.same_top_p == pytest.approx(0.75)
    assert q.same_top_err == pytest.approx(math.sqrt(0.75 * 0.25 / 19))
    assert q.ppl_err > 0
    with pytest.raises(QuantbotError):
        summarize([1.0])


def test_paired_ppl_ratio_follows_llama_perplexitys_formula():
    """PPL(Q)/PPL(base) on the same tokens, its error sqrt(var_q + var_b - 2 cov) as
    llama-perplexity computes it: far tighter than either PPL's own when the two move together."""
    base = [0.5 + 0.25 * (i % 7) for i in range(40)]
    quant = [b + 0.01 * (i % 3) for i, b in enumerate(base)]
    q = summarize(quant, nll_base=base).quality
    n = len(base)
    mq, mb = sum(quant) / n, sum(base) / n
    var_q = (sum(x * x for x in quant) / n - mq * mq) / (n - 1)
    var_b = (sum(x * x for x in base) / n - mb * mb) / (n - 1)
    cov = (sum(x * y for x, y in zip(quant, base, strict=True)) / n - mq * mb) / (n - 1)
    assert q.ppl_ratio == pytest.approx(math.exp(mq - mb))
    assert q.ppl_ratio_err == pytest.approx(q.ppl_ratio * math.sqrt(var_q + var_b - 2 * cov))
    assert q.ppl_base == pytest.approx(math.exp(mb))
    assert q.ppl_ratio_err < 0.1 * q.ppl_err / q.ppl
    assert summarize(quant).quality.ppl_ratio is None


def test_window_terms_kld():
    torch = pytest.importorskip("torch")
    from runners.hfmodel.evaluate import window_terms

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
                 "method": "awq", "format": "gemm", "scale_search_chunked_activations": False}
    assert "scale_search_chunked_activations" not in quantize_config_kwargs(QuantSpec.awq(),
                                                                            on_cuda=False)
    assert "scale_search_chunked_activations" not in quantize_config_kwargs(
        QuantSpec.awq(), on_cuda=True, tool_defaults=True)


def test_calibration_forwards_are_batched_by_tokens_on_cuda():
    assert forward_batch(1, on_cuda=True, seq_len=512) == 32
    assert forward_batch(1, on_cuda=True, seq_len=2048) == 8
    assert forward_batch(1, on_cuda=False, seq_len=512) == 1
    assert forward_batch(4, on_cuda=True, seq_len=512) == 4  # asked for explicitly


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
    with pytest.raises(QuantbotError, match=r"lacks model\.safetensors, tokenizer, "
                       r"generation_config\.json, quantize_config\.json\."):
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
