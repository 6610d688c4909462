"""The full-size stand-ins (bench/standin.py) at their tiny CI shapes, and the shapes of the big
ones, which are checked on the ``meta`` device (no memory for weights)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import standin

TEXT = "Hello world, the for statement in Python's reference: naïve café 12345\n\n  x\ty"


@pytest.fixture(scope="session")
def tree(toolchain) -> Path:
    return toolchain.src_dir


@pytest.fixture(scope="session")
def tiny_llama(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("standin") / "llama"
    standin.write_standin("llama-tiny", out, seed=3, tree=tree, max_shard_bytes=8 * 10**6)
    return out


def test_llama_8b_has_llama_3_1_8b_shapes():
    config = standin.make_config(standin.SPECS["llama-3.1-8b"], 128256)
    plan = {p.name: p.shape for p in standin.tensor_plan(config)}
    assert standin.n_params(standin.tensor_plan(config)) == 8_030_261_248  # Llama-3.1-8B's count
    assert plan["model.embed_tokens.weight"] == (128256, 4096)
    assert plan["lm_head.weight"] == (128256, 4096)
    assert plan["model.layers.31.self_attn.k_proj.weight"] == (1024, 4096)
    assert plan["model.layers.0.mlp.down_proj.weight"] == (4096, 14336)
    assert "model.layers.32.input_layernorm.weight" not in plan
    assert config.architectures == ["LlamaForCausalLM"]
    assert config.rope_parameters["rope_type"] == "llama3"


def test_moe_standin_fits_one_runner_disk():
    config = standin.make_config(standin.SPECS["qwen3-moe-16l"], 151936)
    plan = standin.tensor_plan(config)
    names = {p.name: p.shape for p in plan}
    assert names["model.layers.15.mlp.gate.weight"] == (128, 2048)
    assert config.architectures == ["Qwen3MoeForCausalLM"]
    size = sum(p.nbytes for p in plan)
    # source + converted GGUF + Q8_0 (0.53 x) + 2.1 GB of logits within ~58 GB of a 64 GiB disk
    assert 2.53 * size + 3e9 < 58e9
    assert 10e9 < standin.n_params(plan) < 11e9


def test_shards_and_header_are_laid_out_in_order():
    plan = [standin.TensorPlan(f"t{i}", (3, 4), "normal") for i in range(5)]
    shards = standin.shard_plan(plan, max_bytes=50)
    assert [len(s) for s in shards] == [2, 2, 1]  # 24 bytes each
    header = standin.safetensors_header(shards[0])
    n = int.from_bytes(header[:8], "little")
    meta = json.loads(header[8:8 + n])
    assert len(header) % 8 == 0
    assert meta["t0"]["data_offsets"] == [0, 24] and meta["t1"]["data_offsets"] == [24, 48]


def test_tensor_seed_is_per_name_and_stable():
    assert standin.tensor_seed(0, "a") == standin.tensor_seed(0, "a")
    assert standin.tensor_seed(0, "a") != standin.tensor_seed(0, "b")
    assert standin.tensor_seed(0, "a") != standin.tensor_seed(1, "a")


def test_tiny_llama_is_a_hub_folder_transformers_loads(tiny_llama: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = json.loads((tiny_llama / "standin.json").read_text())
    assert "meaningless" in info["warning"]
    assert len(info["files"]) > 1 and (tiny_llama / "model.safetensors.index.json").is_file()
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    assert len(tok) == info["vocab_size"] == 128256
    ids = tok(TEXT)["input_ids"]
    assert ids[0] == 128000 and tok.decode(ids, skip_special_tokens=True) == TEXT
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert "<|start_header_id|>assistant<|end_header_id|>" in chat
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.bfloat16)
    assert model.config.vocab_size == len(tok)
    # each tensor is its own seeded draw: regenerating one alone gives the same values
    w = model.model.layers[1].mlp.up_proj.weight
    entry = standin.TensorPlan("model.layers.1.mlp.up_proj.weight", tuple(w.shape), "normal")
    assert torch.equal(standin.generate(entry, 3, 0.02), w)
    assert torch.equal(model.model.norm.weight, torch.ones_like(model.model.norm.weight))
    out = model.generate(**tok("Hello", return_tensors="pt"), max_new_tokens=3, do_sample=False)
    assert out.shape[1] == len(tok("Hello")["input_ids"]) + 3


def test_tokenizers_match_the_gguf_loader_where_it_is_right(tree: Path):
    """transformers >= 5.24 reads these vocab GGUFs correctly; the rebuilt tokenizers agree."""
    import transformers
    from packaging.version import Version
    from transformers import AutoTokenizer

    if Version(transformers.__version__) < Version("5.24"):
        pytest.skip("older transformers misread the llama-bpe vocab GGUF (the reason for the rebuild)")
    for name in ("llama-tiny", "qwen3-moe-tiny"):
        spec = standin.SPECS[name]
        ours = standin.load_tokenizer(spec, tree)(TEXT)["input_ids"]
        ref = AutoTokenizer.from_pretrained(str(tree / "models"), gguf_file=spec.vocab_file)
        theirs = ref(TEXT)["input_ids"]
        assert (ours[1:] if spec.add_bos else ours) == theirs


def test_converter_reads_the_standin_as_llama_3(tiny_llama: Path, toolchain, tmp_path: Path):
    from gguf import GGUFReader

    from runners.gguf import llama_tools

    out = tmp_path / "tiny.gguf"
    llama_tools.convert(toolchain, tiny_llama, out, "bf16")
    fields = GGUFReader(out).fields

    def text(key: str) -> str:
        f = fields[key]
        return bytes(f.parts[f.data[0]]).decode()

    assert text("tokenizer.ggml.model") == "gpt2"  # byte-level BPE, not SentencePiece
    assert text("tokenizer.ggml.pre") == "llama-bpe"


def test_tiny_moe_loads(tree: Path, tmp_path: Path):
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "moe"
    info = standin.write_standin("qwen3-moe-tiny", out, tree=tree)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    assert type(model).__name__ == "Qwen3MoeForCausalLM"
    assert info["vocab_size"] == 151936 and model.config.num_experts == 4
