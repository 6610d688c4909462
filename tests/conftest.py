"""Shared fixtures: a tiny Llama made in the test session, and the built llama.cpp toolchain."""

from __future__ import annotations

from pathlib import Path

import pytest

from runners.demo_model import DemoRecipe, build_demo_model

#: Small enough to make in seconds; rows are multiples of 256 so k-quants apply as on real models.
TINY = DemoRecipe(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  seq_len=64, batch_size=4, steps=3, warmup=1)


#: The same tiny Llama trained long enough that quantization error shows as a higher perplexity.
TRAINED = DemoRecipe(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                     seq_len=64, batch_size=8, steps=200, warmup=10, lr=5e-3)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:data:`TRAINED`, made once per test session (about 10 s on 2 cores)."""
    return build_demo_model(TRAINED, root=tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Llama-architecture HF model folder (sentencepiece tokenizer, safetensors weights)."""
    return build_demo_model(TINY, root=tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def toolchain():
    """llama.cpp built from llama-cpp-python's sdist (built once into the user's cache)."""
    from runners.llamacpp import ensure_toolchain

    return ensure_toolchain()
