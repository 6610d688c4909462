"""The spine end to end on a tiny model: convert, every default type, measure, check, card."""

import json

import pytest
import yaml
from click.testing import CliRunner
from gguf import GGUFReader

from bot.cli import main
from runners.gguf.types import DEFAULT_TYPES
from runners.results import load_run

# The ggml type that must carry most weights of each file type.
MAIN_TENSOR_TYPE = {
    "Q2_K": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K", "Q4_0": "Q4_0",
    "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_0": "Q5_0", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K",
    "Q6_K": "Q6_K", "Q8_0": "Q8_0",
}


@pytest.fixture(scope="module")
def published(tmp_path_factory, tiny_model, toolchain):
    root = tmp_path_factory.mktemp("pipeline")
    args = ["quantize", str(tiny_model), "--out", str(root / "hub"), "--work", str(root / "work"),
            "--repo-id", "tests/tiny-llama", "--ctx", "64", "--chunks", "4",
            "--answers", "2", "--answer-tokens", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return root / "hub" / "quantbot" / "tiny-llama-GGUF", root, args


def test_every_default_type_is_a_valid_gguf_of_its_type(published):
    repo, _, _ = published
    for qtype in DEFAULT_TYPES:
        path = repo / f"tiny-llama.{qtype}.gguf"
        reader = GGUFReader(path)
        types = [t.tensor_type.name for t in reader.tensors]
        weights = [t.tensor_type.name for t in reader.tensors if t.name.endswith("ffn_gate.weight")]
        assert weights and all(w == MAIN_TENSOR_TYPE[qtype] for w in weights), (qtype, types)
    assert sorted(p.name for p in repo.iterdir()) == sorted(
        [f"tiny-llama.{t}.gguf" for t in DEFAULT_TYPES] + ["README.md", "quantbot.json"])


def test_every_variant_is_measured_and_checked(published):
    repo, _, _ = published
    run = load_run(repo)
    assert [v.name for v in run.variants] == list(DEFAULT_TYPES)
    assert run.evaluation.chunks == 4 and run.evaluation.ctx == 64
    for v in run.variants:
        assert v.size_bytes == (repo / v.files[0]).stat().st_size
        assert v.quality.ppl > 1 and v.quality.kld_mean is not None and v.quality.kld_mean >= 0
        assert v.peak_rss_bytes > 0 and v.ram_bytes > v.size_bytes
        assert v.check_output.strip()
    bpw = {v.name: v.bits_per_weight for v in run.variants}
    assert bpw["Q2_K"] < bpw["Q4_K_M"] < bpw["Q6_K"] < bpw["Q8_0"] < 16
    kld = {v.name: v.quality.kld_mean for v in run.variants}
    assert kld["Q8_0"] == min(kld.values())


def test_card_renders_every_row_with_metadata(published):
    repo, _, _ = published
    text = (repo / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["base_model"] == "tests/tiny-llama"
    assert meta["base_model_relation"] == "quantized"
    rows = [line for line in text.splitlines() if line.startswith("| [tiny-llama.")]
    assert len(rows) == len(DEFAULT_TYPES)
    assert all("| n/a |" not in row for row in rows)


def test_rerun_resumes_and_republishes_the_same_files(published):
    repo, root, args = published
    before = {p.name: p.stat().st_mtime_ns for p in (root / "work").rglob("*.gguf")}
    result = CliRunner().invoke(main, [*args, "gguf=Q4_K_M,Q8_0"])
    assert result.exit_code == 0, result.output
    after = {p.name: p.stat().st_mtime_ns for p in (root / "work").rglob("*.gguf")}
    assert after["tiny-llama.Q8_0.gguf"] == before["tiny-llama.Q8_0.gguf"]  # not redone
    assert sorted(p.name for p in repo.glob("*.gguf")) == [
        "tiny-llama.Q4_K_M.gguf", "tiny-llama.Q8_0.gguf"]
    assert len(json.loads((repo / "quantbot.json").read_text())["variants"]) == 2


def test_oversized_file_is_split_and_listed(tmp_path, tiny_model, toolchain):
    result = CliRunner().invoke(main, [
        "quantize", str(tiny_model), "--out", str(tmp_path / "hub"), "--work",
        str(tmp_path / "work"), "gguf=Q8_0", "--split-size", "1M", "--ctx", "64",
        "--chunks", "4", "--answers", "2", "--answer-tokens", "4"])
    assert result.exit_code == 0, result.output
    repo = next((tmp_path / "hub" / "quantbot").iterdir())
    parts = sorted(p.name for p in repo.glob("*.gguf"))
    assert len(parts) >= 2 and all("-of-" in p for p in parts)
    text = (repo / "README.md").read_text()
    assert all(p in text for p in parts)


def test_imatrix_from_the_calibration_mix_is_published_and_named(tmp_path, tiny_model, toolchain):
    """`gguf=Q4_K_M,IQ3_XS imatrix`: the matrix is computed on the calibration mix (chat turns in
    the model's format), applied to both types, published beside them and named in the card."""
    from runners.calibration_mix import MIX_NAME

    result = CliRunner().invoke(main, [
        "quantize", str(tiny_model), "--repo-id", "tests/tiny-llama", "gguf=Q4_K_M,IQ3_XS",
        "imatrix", "--ctx", "64", "--chunks", "4",
        "--answers", "2", "--answer-tokens", "4", "--out", str(tmp_path / "hub"),
        "--work", str(tmp_path / "work")])
    assert result.exit_code == 0, result.output
    repo = tmp_path / "hub" / "quantbot" / "tiny-llama-GGUF"
    run = load_run(repo)
    (matrix,) = [e for e in run.extra_files if e.kind == "imatrix"]
    assert (repo / matrix.name).is_file() and matrix.params["calibration"] == MIX_NAME
    assert run.provenance["calibration_sha256"] == matrix.params["calibration_sha256"]
    assert all(v.params["imatrix"] for v in run.variants)
    card = (repo / "README.md").read_text()
    assert matrix.name in card and matrix.params["calibration_sha256"][:16] in card
