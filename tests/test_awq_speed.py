"""quantbot's AWQ speed-ups (runners/gptq/awq_speed.py) search what GPTQModel 7.6 searches.

The clip search gives GPTQModel's clip values on random layers; the scale search's weight copy
stays on the device only where it should; the patches apply to AWQ on GPTQModel 7.6.0 alone;
and a small trained model quantized to AWQ with and without them (through quantbot's own
``quantize()``) scores the same KL divergence, the patched run having called every patch.
"""

from __future__ import annotations

import logging
import os
import types
from pathlib import Path

import pytest

from runners.gptq import awq_speed
from runners.gptq.quantize import DEFAULTS_ENV, quantize_config_kwargs
from runners.gptq.types import QuantSpec

pytest.importorskip("gptqmodel")
os.environ.setdefault("GPTQMODEL_OFFLINE", "1")
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")

GIB = 2**30


def _processor(group_size: int, sym: bool):
    """The state ``_compute_best_clip`` reads: ``qcfg`` and GPTQModel's own pseudo-quantizer."""
    from gptqmodel.looper.awq_processor import AWQProcessor

    proc = types.SimpleNamespace(qcfg=types.SimpleNamespace(group_size=group_size, sym=sym, bits=4))
    proc._pseudo_quantize_tensor_into = (
        lambda src, dst: AWQProcessor._pseudo_quantize_tensor_into(proc, src, dst))
    return proc


def _clip_errors(proc, w, x, bounds, gs: int, n_sample_token: int = 512):
    """Float64 error of each (row, group) under the clip ``bounds`` [rows, groups, 1], with the
    tokens and quantizer of the search: the referee for near-ties."""
    import torch

    x = x.reshape(-1, x.shape[-1])
    x = x[::max(1, x.shape[0] // n_sample_token)]
    co, ci = w.shape
    wg = w.reshape(co, ci // gs, gs)
    quant = torch.empty_like(wg)
    proc._pseudo_quantize_tensor_into(torch.clamp(wg, -bounds, bounds), quant)
    xg = x.reshape(x.shape[0], ci // gs, gs).double()
    ref = torch.einsum("tgk,rgk->rgt", xg, wg.double())
    cur = torch.einsum("tgk,rgk->rgt", xg, quant.double())
    return (cur - ref).pow(2).mean(-1)  # [rows, groups]


#: dtype -> (tie tolerance: relative float64 error gap allowed between the two bounds where
#: they differ; largest share of (row, group) pairs that may differ). Float32: GPTQModel sums a
#: group's products element-wise, we in a matmul, so a candidate's error moves in its last bits
#: (~1e-6 relative); 1e-4 is 100 times that, and no pair differed at these seeds. bfloat16 (what
#: the GPU quantizes in): both round each product sum and error to 8 mantissa bits
#: (2**-8 = 0.4% relative), so candidates within about 1% swap: 2.2-2.5% of pairs here, each gap
#: under 0.94%; 2% allows twice that.
TIES = {"float32": (1e-4, 0.01), "bfloat16": (2e-2, 0.05)}


@pytest.mark.parametrize("dtype", sorted(TIES))
@pytest.mark.parametrize("co,ci,gs,sym", [(512, 256, 128, False), (320, 384, 128, True),
                                          (192, 256, 64, False)])
def test_clip_bmm_chooses_gptqmodels_clip_values(co: int, ci: int, gs: int, sym: bool, dtype: str):
    """Random weights with an outlier input channel, more captured tokens than are sampled:
    every (row, group) gets GPTQModel's clip bound, except near-ties (:data:`TIES`), and the
    mean error over all of them is GPTQModel's."""
    import torch
    from gptqmodel.looper.awq_processor import AWQProcessor

    gen = torch.Generator().manual_seed(co + ci + gs)
    w = torch.randn(co, ci, generator=gen) * 0.02
    w[:, 5] *= 8
    x = torch.randn(3, 400, ci, generator=gen)
    x[..., 7] *= 20
    w, x = w.to(getattr(torch, dtype)), x.to(getattr(torch, dtype))
    proc = _processor(gs, sym)
    original = AWQProcessor._compute_best_clip
    before = awq_speed.STATS["clip-bmm: calls"]
    want = original(proc, w, x)
    got = awq_speed._clip_bmm(original)(proc, w, x)
    assert awq_speed.STATS["clip-bmm: calls"] == before + 1
    assert got.shape == want.shape == (co, ci // gs, 1) and got.dtype == want.dtype
    rtol, share = TIES[dtype]
    differ = (got != want).squeeze(-1)
    assert differ.float().mean() <= share
    e_want, e_got = _clip_errors(proc, w, x, want, gs), _clip_errors(proc, w, x, got, gs)
    assert torch.allclose(e_got[differ], e_want[differ], rtol=rtol, atol=0)
    assert e_got.mean() / e_want.mean() == pytest.approx(1, abs=1e-4)


def test_restore_gpu_keeps_only_the_weight_copies_on_the_device():
    """Meta tensors stand in for GPU ones (a real ``.cpu()`` of one raises): inside the wrapped
    ``_compute_best_scale`` the float32 copy of each weight stays where it is, once per weight;
    any other ``.cpu()`` is the real one, and the routing is gone after ``patched()``."""
    import torch

    fcs = [torch.nn.Linear(16, 8, device="meta", dtype=torch.bfloat16) for _ in range(2)]
    seen: dict[str, object] = {}

    def compute_best_scale(self, x, w_mean, x_mean, module2inspect, linears2scale, fp16_output,
                           kwargs):  # the lines of GPTQModel 7.6 that matter here
        seen["copies"] = [fc.weight.detach().to(torch.float32).cpu() for fc in linears2scale]
        with pytest.raises(NotImplementedError):  # a third weight-shaped copy goes to the host
            torch.empty(8, 16, device="meta").cpu()
        with pytest.raises(NotImplementedError):  # so does anything of another shape
            torch.empty(16, device="meta").cpu()
        return "scales", 0.5

    before = awq_speed.STATS["restore-gpu: weight copies kept on the device"]
    with awq_speed.patched(["restore-gpu"]):
        assert "cpu" in vars(torch.Tensor)
        wrapped = awq_speed._restore_gpu(compute_best_scale)
        assert wrapped(None, None, None, None, None, fcs, None) == ("scales", 0.5)
    assert "cpu" not in vars(torch.Tensor)
    assert [(c.device.type, c.dtype) for c in seen["copies"]] == [("meta", torch.float32)] * 2
    assert awq_speed.STATS["restore-gpu: weight copies kept on the device"] == before + 2
    with pytest.raises(NotImplementedError):
        fcs[0].weight.detach().to(torch.float32).cpu()


def test_patches_apply_to_awq_on_the_pinned_gptqmodel_only(caplog: pytest.LogCaptureFixture):
    pinned = awq_speed.GPTQMODEL_VERSION
    assert set(awq_speed.patches_for("awq", pinned)) == {"clip-bmm", "feat-gpu", "restore-gpu",
                                                        "pack-vectorized"}
    assert awq_speed.patches_for("gptq", pinned) == ()
    assert awq_speed.patches_for("awq", pinned, tool_defaults=True) == ()
    with caplog.at_level(logging.WARNING, logger=awq_speed.__name__):
        assert awq_speed.patches_for("awq", "7.7.0") == ()
    assert "7.7.0" in caplog.text and "unpatched" in caplog.text


def test_pinned_gptqmodel_is_the_patched_one():
    import gptqmodel

    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert f"gptqmodel=={awq_speed.GPTQMODEL_VERSION}" in project["project"]["optional-dependencies"]["gpu"]
    assert gptqmodel.__version__ == awq_speed.GPTQMODEL_VERSION


def test_disk_offload_is_off_on_cuda_where_the_model_fits_in_ram():
    ram = 128 * GIB
    for spec in (QuantSpec.gptq(), QuantSpec.awq()):
        assert quantize_config_kwargs(spec, True, weights=16 * GIB, ram=ram)["offload_to_disk"] is False
        for kwargs in ({"weights": 141 * GIB, "ram": ram},  # 70B in bf16: the default (on)
                       {"weights": 16 * GIB, "ram": None}, {"weights": None, "ram": ram}):
            assert "offload_to_disk" not in quantize_config_kwargs(spec, True, **kwargs)
        assert "offload_to_disk" not in quantize_config_kwargs(spec, False, weights=1, ram=ram)
        assert "offload_to_disk" not in quantize_config_kwargs(spec, True, True, 1, ram)


def test_awq_with_and_without_the_patches_scores_the_same(
        trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """quantbot's ``quantize()`` on the CPU, as the worker runs it: unpatched
    (``QUANTBOT_GPTQMODEL_DEFAULTS=1``; on the CPU nothing else differs) and patched; both
    reloaded with GPTQModel's torch kernel and scored against the float model.

    GPTQModel quantizes in bfloat16 here (as on the GPU), where the clip search's near-ties
    swap (test above), and a swapped layer-0 clip changes the inputs every later layer is
    calibrated on: the checkpoints differ and their KLDs differ by a few percent either way
    (+2.5% here; -1% on the pydocs demo model in bench/awq_probe.py). Dropping the clip search,
    a real change of the search, moved KLD by +24% there: 10% tells the two apart."""
    import torch
    from gptqmodel import GPTQModel
    from gptqmodel.utils.backend import BACKEND
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from runners.gptq.quantize import quantize
    from runners.hfmodel import evaluate
    from runners.hfmodel.calibration import calibration_set, evaluation_blocks

    tokenizer = AutoTokenizer.from_pretrained(trained_model)
    calibration = calibration_set(tokenizer, 64, 16)
    blocks, _labels, _text = evaluation_blocks(tokenizer, 64, 8)
    baseline = tmp_path / "baseline"
    key = evaluate.baseline_key(blocks, str(trained_model))
    hf = AutoModelForCausalLM.from_pretrained(trained_model, dtype=torch.float32)
    evaluate.measure(hf.eval(), blocks, baseline, key, write_baseline=True)
    del hf

    kld, stats, tensors = {}, {}, {}
    for label, defaults in (("unpatched", "1"), ("patched", "0")):
        monkeypatch.setenv(DEFAULTS_ENV, defaults)
        awq_speed.STATS.clear()
        out = tmp_path / label
        quantize(trained_model, QuantSpec.awq(), out, calibration, device="cpu",
                 side_dir=tmp_path / "logs")
        stats[label] = dict(awq_speed.STATS)
        tensors[label] = {k: v for f in sorted(out.glob("*.safetensors"))
                          for k, v in load_file(f).items()}
        gm = GPTQModel.load(str(out), device="cpu", backend=BACKEND.AWQ_TORCH)
        kld[label] = evaluate.measure(gm.model, blocks, baseline, key).quality.kld_mean
        del gm
    print(f"\nKLD unpatched {kld['unpatched']:.6g} patched {kld['patched']:.6g}; "
          f"patch stats {stats['patched']}; identical tensors: "
          f"{all(torch.equal(tensors['unpatched'][k], tensors['patched'][k]) for k in tensors['patched'])}")
    assert stats["unpatched"] == {}
    assert stats["patched"]["clip-bmm: calls"] > 0  # the clip search that ran was ours
    assert stats["patched"]["restore-gpu: calls"] > 0 and stats["patched"]["feat-gpu: calls"] > 0
    assert stats["patched"]["pack-vectorized: calls"] > 0
    assert tensors["patched"].keys() == tensors["unpatched"].keys()
    assert kld["unpatched"] > 0
    assert abs(kld["patched"] - kld["unpatched"]) <= 0.10 * kld["unpatched"]


def _awq_layer(in_features: int, out_features: int, group_size: int, bias: bool):
    from gptqmodel.nn_modules.qlinear.torch_awq import AwqTorchLinear

    return AwqTorchLinear(bits=4, group_size=group_size, sym=False, desc_act=False,
                          in_features=in_features, out_features=out_features, bias=bias)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("in_f,out_f,gs,bias", [(384, 256, 128, False), (512, 96, 64, True),
                                                (4608, 64, 128, False)])
def test_pack_vectorized_writes_gptqmodels_exact_tensors(in_f: int, out_f: int, gs: int,
                                                         bias: bool, dtype: str):
    """The vectorized packer gives the bit-identical ``qweight``, ``qzeros``, ``scales`` and
    ``bias`` of GPTQModel's column loop, for AWQ's real scale/zero inputs (float scales, integer
    zeros, weights inside the grid) and across more than one :data:`PACK_ROWS` block."""
    import torch
    from gptqmodel.nn_modules.qlinear.torch_awq import AwqTorchLinear

    gen = torch.Generator().manual_seed(in_f + out_f + gs)
    groups = in_f // gs
    scales = (torch.rand(out_f, groups, generator=gen) * 0.02 + 1e-3).to(getattr(torch, dtype))
    zeros = torch.randint(0, 16, (out_f, groups), generator=gen).to(scales.dtype)
    codes = torch.randint(0, 16, (out_f, in_f), generator=gen).to(scales.dtype)
    expand = torch.arange(in_f) // gs
    weight = (codes - zeros[:, expand]) * scales[:, expand]
    weight += torch.randn(out_f, in_f, generator=gen).to(scales.dtype) * scales[:, expand] * 0.3
    linear = torch.nn.Linear(in_f, out_f, bias=bias, dtype=scales.dtype)
    linear.weight.data.copy_(weight)
    before = awq_speed.STATS["pack-vectorized: calls"]
    ours, theirs = _awq_layer(in_f, out_f, gs, bias), _awq_layer(in_f, out_f, gs, bias)
    AwqTorchLinear.pack(theirs, linear, scales, zeros)
    awq_speed._pack_vectorized(AwqTorchLinear.pack)(ours, linear, scales, zeros)
    assert awq_speed.STATS["pack-vectorized: calls"] == before + 1
    for name in ("qweight", "qzeros", "scales", *(("bias",) if bias else ())):
        assert getattr(ours, name).dtype == getattr(theirs, name).dtype, name
        assert torch.equal(getattr(ours, name), getattr(theirs, name)), name
    assert (ours.bias is None) == (not bias)
