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


def test_gguf_domain_runs_pool_to_the_whole_run_of_their_windows(tmp_path, trained_model,
                                                                 toolchain):
    """A GGUF file's per-domain runs (runners.gguf.measure) pool into the figures
    llama-perplexity prints for all those windows in one run, but for its printed rounding; a
    file measured without them costs that one run."""
    from runners.evaluation_mix import evaluation_mix
    from runners.gguf.measure import Part, domain_quality, measure_file, pool_parts
    from runners.gguf.reference import build_reference
    from runners.results import Quality

    mix = evaluation_mix()
    text = mix.text(["\n".join(turn["content"] for turn in chat) for chat in mix.chats])
    f16 = tmp_path / "model.F16.gguf"
    llama_tools.convert(toolchain, trained_model, f16, "f16")
    q4 = tmp_path / "model.Q4_0.gguf"
    llama_tools.quantize(toolchain, f16, q4, "Q4_0", 2)
    ref = build_reference(toolchain, f16, text, tmp_path / "ref.kld", 256, 8, 2)
    got = measure_file(toolchain, q4, ref, 2, None, adaptive=False)
    assert (got.chunks, got.runs) == (8, 5)  # the whole run, then one per domain
    domains = got.quality.domains
    assert [d.windows for d in domains] == [2, 2, 2, 2]
    pooled = pool_parts([Part(d.domain, d.windows, d.tokens,
                              Quality(ppl=d.ppl, ppl_err=d.ppl_err, kld_mean=d.kld_mean,
                                      kld_err=d.kld_err, same_top_p=d.same_top_p,
                                      same_top_err=d.same_top_err)) for d in domains])
    whole = got.quality
    assert pooled.kld_mean == pytest.approx(whole.kld_mean, rel=2e-3)
    assert pooled.kld_err == pytest.approx(whole.kld_err, rel=2e-2)
    assert pooled.same_top_p == pytest.approx(whole.same_top_p, abs=2e-4)
    assert pooled.ppl == pytest.approx(whole.ppl, rel=2e-3)
    assert whole.kld_percentiles and whole.delta_p  # from the whole run, which alone has them
    alone = measure_file(toolchain, q4, ref, 2, None, adaptive=False, domains=False)
    assert alone.runs == 1 and alone.quality.domains is None
    assert alone.quality.kld_mean == whole.kld_mean
    assert domain_quality(toolchain, q4, ref, 8, 2, None) == domains
