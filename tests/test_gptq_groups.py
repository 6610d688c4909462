"""Group sizes that fit the model's widths (runners/gptq/groups.py)."""

from __future__ import annotations

import pytest

from runners.errors import QuantbotError
from runners.gptq.groups import auto_group, quantized_widths, resolve
from runners.gptq.spec import AwqSpec, GptqSpec

#: SmolLM2-135M: hidden 576 (= 4.5 x 128), intermediate 1536.
SMOLLM2 = {"model.layers.0.self_attn.q_proj.weight": [576, 576],
           "model.layers.0.mlp.down_proj.weight": [576, 1536],
           "model.layers.0.input_layernorm.weight": [576],
           "model.embed_tokens.weight": [49152, 576],
           "model.visual.layers.0.proj.weight": [100, 100]}


def test_widths_are_the_decoder_linears_inputs() -> None:
    assert quantized_widths(SMOLLM2) == {576, 1536}


def test_auto_picks_the_largest_dividing_size() -> None:
    assert auto_group({576, 1536}) == 64
    assert auto_group({4096, 14336}) == 128
    assert auto_group({100}) is None


def test_the_default_is_never_a_size_that_does_not_divide() -> None:
    assert resolve(GptqSpec(), {576, 1536}).variant_names() == ["gptq-4bit-64g-actorder"]
    assert resolve(AwqSpec(), {4096}).variant_names() == ["awq-4bit-128g-zp"]


def test_an_explicit_size_that_does_not_divide_is_refused_with_the_fix() -> None:
    with pytest.raises(QuantbotError, match=r"group_size=128 does not divide.*576") as err:
        resolve(GptqSpec(group_size=(128,)), {576, 1536})
    assert err.value.fix == "use group_size=64"
    assert resolve(GptqSpec(group_size=(-1,)), {576}).group_size == (-1,)


def test_no_size_fits_names_another_method() -> None:
    with pytest.raises(QuantbotError, match="no group size") as err:
        resolve(AwqSpec(), {100})
    assert "gguf" in err.value.fix
