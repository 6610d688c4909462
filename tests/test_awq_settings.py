"""quantbot's AWQ settings for CUDA (runners/gptq/quantize.py: calibration forwards of 16k tokens,
scale-search activations kept on the device) change how GPTQModel 7.6 runs, not what it
computes: on the CPU both give the same checkpoint, tensor for tensor, so AWQ's quality (KLD)
cannot get worse through them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runners.gptq.quantize import forward_batch

pytest.importorskip("gptqmodel")


def test_quantbot_awq_settings_give_the_same_weights(trained_model: Path, tmp_path: Path):
    os.environ.setdefault("GPTQMODEL_OFFLINE", "1")
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")
    import torch
    from gptqmodel import GPTQModel, QuantizeConfig
    from gptqmodel.utils.backend import BACKEND
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from runners.hfmodel.calibration import calibration_set

    samples = calibration_set(AutoTokenizer.from_pretrained(trained_model), 64, 32).as_samples()
    saved = {}
    for label, batch, chunked in (("gptqmodel-defaults", 1, True),
                                  ("quantbot-cuda", forward_batch(1, True, 64), False)):
        config = QuantizeConfig(bits=4, group_size=128, sym=False, method="awq", format="gemm",
                                pack_impl="original", scale_search_chunked_activations=chunked)
        model = GPTQModel.load(str(trained_model), config, device="cpu")
        model.quantize(samples, batch_size=batch, backend=BACKEND.AWQ_TORCH)
        model.save(str(tmp_path / label))
        saved[label] = {k: v for f in sorted((tmp_path / label).glob("*.safetensors"))
                        for k, v in load_file(f).items()}
    a, b = saved["gptqmodel-defaults"], saved["quantbot-cuda"]
    assert a.keys() == b.keys() and any(k.endswith("qweight") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
