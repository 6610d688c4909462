"""Both evaluators on the evaluation mix end to end (tiny model): one domain per window, the
baseline and the files measured per domain (GGUF on the CPU: the recommended one), and the
domains' figures adding up to the whole file's (separate llama-perplexity runs for GGUF;
per-token values for transformers)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cards.quality import recommendation
from bot.cli import main
from runners.evaluation_mix import DOMAIN_KEYS, MIX_NAME
from runners.results import load_run
from runners.stats import pooled

pytestmark = pytest.mark.slow


def test_the_recommended_file_is_measured_per_domain_on_the_cpu(tmp_path, tiny_model, toolchain):
    """On the CPU only the recommended file (the card's per-domain table) gets the four runs per
    domain; every other file is scored once (runners.gguf.measure)."""
    result = CliRunner().invoke(main, [
        "quantize", str(tiny_model), "--repo-id", "tests/tiny-llama", "gguf=Q8_0,Q2_K",
        "--ctx", "64", "--chunks", "16", "--fixed-windows", "--answers", "0",
        "--out", str(tmp_path / "hub"), "--work", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    repo = tmp_path / "hub" / "quantbot" / "tiny-llama-GGUF"
    run = load_run(repo)
    assert run.evaluation.text_name == MIX_NAME and run.evaluation.chunks == 16
    assert [d.domain for d in run.baseline.domains] == list(DOMAIN_KEYS)
    assert all(d.windows == 4 and d.tokens == 4 * 31 for d in run.baseline.domains)
    chosen = recommendation(run.variants)[0]
    for v in run.variants:
        domains = v.quality.domains
        if v is not chosen:
            assert domains is None, v.name
            continue
        assert [d.domain for d in domains] == list(DOMAIN_KEYS)
        assert sum(d.tokens for d in domains) == v.params["eval_tokens"] == 16 * 31
        # four separate runs on each domain's windows give the whole run's mean and error
        mean, err = pooled([(d.kld_mean, d.kld_err, d.tokens) for d in domains])
        assert mean == pytest.approx(v.quality.kld_mean, rel=1e-3, abs=2e-6)
        assert err == pytest.approx(v.quality.kld_err, rel=2e-2, abs=2e-6)
    card = (repo / "README.md").read_text()
    assert "Per domain" in card and MIX_NAME in card


def test_the_transformers_evaluator_measures_per_domain(tmp_path, tiny_model):
    """NF4 (bitsandbytes, on the CPU): the transformers evaluator's per-token values give each
    domain's figures, on the same windows, and they pool back to the whole file's exactly."""
    result = CliRunner().invoke(main, [
        "quantize", str(tiny_model), "--repo-id", "tests/tiny-llama", "nf4", "--device", "cpu",
        "--ctx", "64", "--chunks", "16", "--fixed-windows", "--answers", "0",
        "--out", str(tmp_path / "hub"), "--work", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    run = load_run(tmp_path / "hub" / "quantbot" / "tiny-llama-bnb-4bit")
    assert run.evaluation.text_name == MIX_NAME
    assert [d.domain for d in run.baseline.domains] == list(DOMAIN_KEYS)
    assert all(d.kld_mean is None and d.tokens == 4 * 31 for d in run.baseline.domains)
    (v,) = run.variants
    domains = v.quality.domains
    assert [d.domain for d in domains] == list(DOMAIN_KEYS)
    assert sum(d.tokens for d in domains) == v.params["eval_tokens"] == 16 * 31
    mean, err = pooled([(d.kld_mean, d.kld_err, d.tokens) for d in domains])
    assert mean == pytest.approx(v.quality.kld_mean, rel=1e-9)
    assert err == pytest.approx(v.quality.kld_err, rel=1e-6)
