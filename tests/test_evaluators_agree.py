"""llama.cpp's perplexity tool and quantbot's transformers evaluator agree on the same tokens.

Both evaluators score the second half of each window; llama-perplexity tokenizes the text with
a leading BOS and starts every window with BOS, and the transformers side is given exactly those
windows. The f16 GGUF and the float32 transformers model must agree within 1 %.
"""

from __future__ import annotations

import pytest

from runners.gguf import llama_tools
from runners.hfmodel.calibration import evaluation_blocks
from runners.hfmodel.evaluate import measure
from runners.texts import text_set

CTX, CHUNKS = 128, 8


def test_f16_perplexity_agrees_within_one_percent(tmp_path, trained_model, toolchain):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    f16 = tmp_path / "model.F16.gguf"
    llama_tools.convert(toolchain, trained_model, f16, "f16")
    text = text_set("evaluation").write(tmp_path / "evaluation.txt")
    run = llama_tools.perplexity_base(toolchain, f16, text, tmp_path / "ref.kld", CTX, CHUNKS, 2)
    assert llama_tools.parse_chunks(run.output) == (CHUNKS, CTX)
    llama_ppl = llama_tools.parse_base_ppl(run.output).ppl

    tok = AutoTokenizer.from_pretrained(trained_model)
    ids = [tok.bos_token_id, *tok(text.read_text(), add_special_tokens=False).input_ids]
    by_hand = [[tok.bos_token_id, *ids[i * CTX + 1:(i + 1) * CTX]] for i in range(CHUNKS)]
    blocks, _, _ = evaluation_blocks(tok, CTX, CHUNKS)  # what the GPTQ/AWQ/NF4 pipeline scores
    assert blocks == by_hand
    model = AutoModelForCausalLM.from_pretrained(trained_model, dtype=torch.float32)
    hf_ppl = measure(model, blocks, tmp_path / "baseline", "agree", write_baseline=True).quality.ppl
    print(f"\nllama.cpp f16 PPL {llama_ppl:.4f}  transformers fp32 PPL {hf_ppl:.4f}  "
          f"diff {100 * (hf_ppl - llama_ppl) / llama_ppl:+.3f} %")
    assert hf_ppl == pytest.approx(llama_ppl, rel=0.01)


def test_both_evaluators_cut_the_mix_into_the_same_windows(tmp_path, trained_model, toolchain):
    """The evaluation mix: llama.cpp's per-domain references interleaved (runners.gguf.reference)
    and the transformers evaluator's windows hold the same tokens, domain by domain, and give
    each domain the same f16 perplexity within 1 %."""
    import struct

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from runners.evaluation_mix import DOMAIN_KEYS, evaluation_mix
    from runners.gguf.logits import read_header
    from runners.gguf.reference import build_reference

    mix = evaluation_mix()
    text = mix.text(["\n".join(turn["content"] for turn in chat) for chat in mix.chats])
    f16 = tmp_path / "model.F16.gguf"
    llama_tools.convert(toolchain, trained_model, f16, "f16")
    ref = build_reference(toolchain, f16, text, tmp_path / "ref.kld", CTX, CHUNKS, 2)
    assert ref.labels == list(DOMAIN_KEYS) * 2
    header = read_header(ref.logits)
    raw = ref.logits.read_bytes()[20:20 + header.tokens_bytes]
    llama_windows = [list(struct.unpack(f"<{CTX}i", raw[4 * CTX * i:4 * CTX * (i + 1)]))[1:]
                     for i in range(CHUNKS)]

    tok = AutoTokenizer.from_pretrained(trained_model)
    blocks, labels, _ = evaluation_blocks(tok, CTX, CHUNKS, text)
    assert labels == ref.labels
    assert [b[1:] for b in blocks] == llama_windows  # BOS first in both; the rest token for token
    model = AutoModelForCausalLM.from_pretrained(trained_model, dtype=torch.float32)
    hf = measure(model, blocks, tmp_path / "baseline", "mix", write_baseline=True, labels=labels)
    for ours, theirs in zip(hf.quality.domains, ref.quality.domains, strict=True):
        assert ours.domain == theirs.domain and ours.tokens == theirs.tokens
        assert ours.ppl == pytest.approx(theirs.ppl, rel=0.01), ours.domain
    assert hf.quality.ppl == pytest.approx(ref.quality.ppl, rel=0.01)
