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
