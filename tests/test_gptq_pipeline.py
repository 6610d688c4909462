"""GPTQ 4/8-bit, AWQ 4-bit and NF4 of a small trained Llama on the CPU, reloaded with
transformers.

One run (module fixture, slow) makes the model, quantizes the variants in fresh processes,
reloads each with transformers alone in another fresh process, generates, and measures PPL/KLD
against the unquantized model (baseline computed once, shared by the GPTQ and AWQ runs). The
default variant lies at the repository root (``main``), every other on its branch
(``.branches/<name>/`` in the local hub). Needs quantbot's ``gpu`` extra (gptqmodel, optimum),
which the README installs. The card tests at the end are fast.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import fields, make_dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cards.columns import table
from bot.cards.data import FileRow, FilesTable, build_card_data
from bot.cards.render import render_card
from bot.cli import main
from bot.methods import METHODS
from runners.results import (
    BRANCHES_DIR,
    EvalSpec,
    Quality,
    QuantRun,
    SourceInfo,
    Variant,
    branch_dir,
    load_run,
)

slow = pytest.mark.slow
SHARED = {"README.md", "quantbot.json"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> dict[str, QuantRun]:
    """`quantbot quantize SOURCE gptq bits=4,8 awq nf4` on the CPU, as a user runs it."""
    root = tmp_path_factory.mktemp("gptq")
    model = trained_model
    start = time.perf_counter()
    result = CliRunner().invoke(main, [
        "quantize", str(model), "--repo-id", "tests/trained-llama", "gptq", "bits=4,8",
        "awq", "nf4", "--device", "cpu", "--calib-samples", "8", "--calib-len", "128",
        "--ctx", "128", "--chunks", "8",
        "--answers", "2", "--answer-tokens", "4", "--out", str(root / "hub"), "--work", str(root / "work")])
    assert result.exit_code == 0, result.output
    print(f"\ntiming: quantize+check+measure+publish {time.perf_counter() - start:.1f}s")
    hub = root / "hub" / "quantbot"
    out = {m: load_run(hub / METHODS[m].repo_name("trained-llama")) for m in ("gptq", "awq", "nf4")}
    for run in out.values():
        print(f"baseline PPL {run.baseline.ppl}")
        for v in run.variants:
            print(f"{v.name}: PPL {v.quality.ppl} KLD {v.quality.kld_mean} same-top "
                  f"{v.quality.same_top_p} size {v.size_bytes} bpw {v.bits_per_weight} "
                  f"quant {v.params['quant_seconds']}s kernel {v.params['kernel']} "
                  f"text {v.check_output!r}")
    out["root"] = hub  # type: ignore[assignment]
    return out


def _variant(runs, name):
    return next(v for m in ("gptq", "awq", "nf4") for v in runs[m].variants if v.name == name)


@slow
@pytest.mark.parametrize("name,method,branch", [
    ("gptq-4bit-128g-actorder", "gptq", "main"),
    ("gptq-8bit-128g-actorder", "gptq", "gptq-8bit-128g-actorder"),
    ("awq-4bit-128g-zp", "awq", "main")])
def test_folder_is_a_loadable_checkpoint(runs, name, method, branch):
    folder = branch_dir(runs["root"] / f"trained-llama-{method.upper()}", branch)
    names = {p.name for p in folder.iterdir() if p.is_file()}
    assert {"model.safetensors", "config.json", "quantize_config.json",
            "generation_config.json", "tokenizer_config.json"} <= names
    assert names & {"tokenizer.json", "tokenizer.model"}
    qc = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == method
    assert "offload_to_disk_path" not in json.dumps(qc)
    if method == "awq":
        assert qc["version"] == "gemm" and qc["zero_point"] is True
    else:
        assert qc["desc_act"] is True and qc["group_size"] == 128
    v = _variant(runs, name)
    assert v.check_output.strip(), "generation after reload gave no text"
    assert v.branch == branch and v.files == sorted(set(v.files) & names)
    assert names - set(v.files) >= SHARED  # each branch a complete repository: card, record


@slow
def test_default_variant_at_the_root_loads_by_the_repository_path(runs, tmp_path):
    """``from_pretrained(<local hub>/<owner>/<name>-GPTQ)`` loads the default variant, and the
    branch folder the other, each in a fresh process with transformers alone."""
    from runners.hfmodel.check import check_folder

    repo = runs["root"] / "trained-llama-GPTQ"
    assert sorted(p.name for p in (repo / BRANCHES_DIR).iterdir()) == ["gptq-8bit-128g-actorder"]
    assert json.loads((repo / "config.json").read_text())["quantization_config"]["bits"] == 4
    env = {"TORCHDYNAMO_DISABLE": "1"}
    main_ok = check_folder(repo, tmp_path, "cpu", 4, env=env)
    branch = check_folder(repo / BRANCHES_DIR / "gptq-8bit-128g-actorder", tmp_path, "cpu", 4,
                          env=env)
    assert main_ok.text.strip() and branch.text.strip()


@slow
def test_measurements_are_present_and_sane(runs):
    base = runs["gptq"].baseline
    assert runs["awq"].baseline == base == runs["nf4"].baseline  # computed once, reused
    assert 1 < base.ppl < 512
    for run in (runs["gptq"], runs["awq"], runs["nf4"]):
        for v in run.variants:
            q = v.quality
            for x in (q.ppl, q.ppl_err, q.kld_mean, q.kld_err, q.kld_p99, q.same_top_p):
                assert x is not None and math.isfinite(x)
            assert q.kld_mean >= 0 and 0 < q.same_top_p <= 1


@slow
def test_four_bit_costs_quality(runs):
    """Measured by KLD and top-token agreement: on this short text the PPL change of 4-bit can
    be far inside its error bar, either way (77.975 against a baseline of 77.979 ± 6.8 seen)."""
    for name in ("gptq-4bit-128g-actorder", "awq-4bit-128g-zp"):
        q = _variant(runs, name).quality
        assert q.kld_mean > 0 and q.same_top_p < 1


@slow
def test_nf4_is_a_plain_transformers_checkpoint(runs):
    """NF4: quant_method bitsandbytes, double quantization, bf16 compute, lm_head kept 16-bit,
    reloaded by a plain from_pretrained in a fresh process (the pipeline's check)."""
    from safetensors import safe_open

    folder = runs["root"] / METHODS["nf4"].repo_name("trained-llama")  # the only variant: main
    qc = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == "bitsandbytes" and qc["load_in_4bit"] is True
    assert qc["bnb_4bit_quant_type"] == "nf4" and qc["bnb_4bit_use_double_quant"] is True
    assert qc["bnb_4bit_compute_dtype"] == "bfloat16"
    weights = sorted(folder.glob("*.safetensors"))
    assert weights
    keys = {k for w in weights for k in safe_open(str(w), "pt").keys()}  # noqa: SIM118
    assert any(k.endswith("q_proj.weight.quant_state.bitsandbytes__nf4") for k in keys)
    assert not any(k.startswith("lm_head") and "quant_state" in k for k in keys)
    v = _variant(runs, "nf4-dq-bfloat16")
    assert v.check_output.strip() and v.params["kernel"] == "Linear4bit"
    assert 0 < v.quality.kld_mean < _variant(runs, "gptq-8bit-128g-actorder").quality.kld_mean * 1000


@slow
def test_eight_bit_is_closer_to_the_original(runs):
    k8 = _variant(runs, "gptq-8bit-128g-actorder").quality.kld_mean
    k4 = _variant(runs, "gptq-4bit-128g-actorder").quality.kld_mean
    assert k8 < k4
    assert _variant(runs, "gptq-8bit-128g-actorder").size_bytes > \
        _variant(runs, "gptq-4bit-128g-actorder").size_bytes


@slow
@pytest.mark.parametrize("method,rows,variant,flag", [
    ("gptq", 2, "gptq-4bit-128g-actorder", "gptq"), ("awq", 1, "awq-4bit-128g-zp", "awq"),
    ("nf4", 1, "nf4-dq-bfloat16", "bitsandbytes")])
def test_card_lists_every_variant_with_hub_metadata(runs, method, rows, variant, flag):
    import yaml

    text = (runs["root"] / METHODS[method].repo_name("trained-llama") / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["base_model"] == "tests/trained-llama"
    assert meta["base_model_relation"] == "quantized"
    assert set(METHODS[method].hub_tags) <= set(meta["tags"])
    table = [line for line in text.splitlines() if line.startswith(f"| [{method}-")]
    assert len(table) == rows and all("| n/a |" not in line for line in table)
    repo_id = f"quantbot/{METHODS[method].repo_name('trained-llama')}"
    assert f"[{variant}](https://huggingface.co/{repo_id}/tree/main)" in text  # the default
    assert re.search(rf"vllm serve {repo_id}( --revision [\w.-]+)? --quantization {flag}\n",
                     text)
    assert re.search(rf"hf download {repo_id}( --revision [\w.-]+)? --local-dir", text)
    branch = runs["root"] / METHODS[method].repo_name("trained-llama") / BRANCHES_DIR
    for b in (branch.iterdir() if branch.is_dir() else ()):
        assert (b / "README.md").read_text() == text  # every branch: the same card


# -- the card of a repository with branches (fast) ------------------------------------------------
def _gptq_run() -> QuantRun:
    def v(name: str, size: int, kld: float, branch: str) -> Variant:
        return Variant(method="gptq", name=name, files=["config.json", "model.safetensors"],
                       size_bytes=size, bits_per_weight=4.5, ram_bytes=2 * size,
                       peak_rss_bytes=size, check_output=" hi", branch=branch,
                       quality=Quality(ppl=10 + kld, ppl_err=0.1, kld_mean=kld, kld_err=0.001,
                                       kld_p99=5 * kld, same_top_p=1 - kld),
                       params={"bits": 4, "group_size": 128, "act_order": True,
                               "damp_percent": 0.01, "eval_device": "cpu"})

    return QuantRun(
        method="gptq", source=SourceInfo(repo_id="acme/M", architecture="LlamaForCausalLM",
                                         license="mit", n_params=10**9, context_length=4096,
                                         dtype="bfloat16"),
        baseline=Quality(ppl=10.0, ppl_err=0.1),
        evaluation=EvalSpec("docs", "ab" * 32, 1024, 512, 2, "transformers"),
        variants=[v("gptq-4bit-128g-actorder", 500, 0.03, "main"),
                  v("gptq-8bit-128g-actorder", 900, 0.001, "gptq-8bit-128g-actorder"),
                  v("gptq-4bit-32g-actorder", 400, 0.5, "gptq-4bit-32g-actorder")],
        tools={"quantizer": "GPTQModel 7.6.0"}, created="2026-11-25T00:00:00Z")


def _card_with_branches(run: QuantRun, repo_id: str, recommended: str) -> str:
    """The card, its rows carrying each variant's branch (``FileRow.branch``, a subclass where
    FileRow has no such field yet) and ``recommended`` marked."""
    has = "branch" in {f.name for f in fields(FileRow)}
    row_type = FileRow if has else make_dataclass(
        "BranchRow", [("branch", str, "main")], bases=(FileRow,), frozen=True)
    card = build_card_data(run, repo_id)
    by_name = {v.name: v.branch for v in run.variants}
    rows = [row_type(**{**{f.name: getattr(r, f.name) for f in fields(FileRow)},
                        "branch": by_name[r.name], "recommended": r.name == recommended})
            for r in card.rows]
    card = replace(card, rows=rows, recommended=next(r for r in rows if r.recommended),
                   table=FilesTable(*table(METHODS["gptq"].columns, rows, repo_id)))
    return render_card(card)


def test_card_links_branches_and_runs_the_default_from_the_root():
    text = _card_with_branches(_gptq_run(), "qb/M-GPTQ", "gptq-4bit-128g-actorder")
    hub = "https://huggingface.co/qb/M-GPTQ"
    assert f"[gptq-4bit-128g-actorder]({hub}/tree/main)" in text
    assert f"[gptq-8bit-128g-actorder]({hub}/tree/gptq-8bit-128g-actorder)" in text
    assert f"[gptq-4bit-32g-actorder]({hub}/tree/gptq-4bit-32g-actorder)" in text
    assert "hf download qb/M-GPTQ --local-dir M-GPTQ\n" in text
    assert 'AutoModelForCausalLM.from_pretrained(repo, device_map="auto")' in text
    assert "vllm serve qb/M-GPTQ --quantization gptq\n" in text
    assert "--model-id qb/M-GPTQ --quantize gptq\n" in text
    assert "subfolder" not in text


def test_card_runs_a_recommended_branch_with_its_revision():
    text = _card_with_branches(_gptq_run(), "qb/M-GPTQ", "gptq-8bit-128g-actorder")
    b = "gptq-8bit-128g-actorder"
    assert f"hf download qb/M-GPTQ --revision {b} --local-dir M-GPTQ-{b}\n" in text
    assert f'AutoTokenizer.from_pretrained(repo, revision="{b}")' in text
    assert f'AutoModelForCausalLM.from_pretrained(repo, revision="{b}", device_map="auto")' in text
    assert f"vllm serve qb/M-GPTQ --revision {b} --quantization gptq\n" in text
    assert f"--model-id qb/M-GPTQ --revision {b} --quantize gptq\n" in text
