"""The zoo: every stand-in of today's architectures through ``quantbot quantize`` on the CPU.

Each stand-in (``runners/standins/zoo.py``) goes through the real command line, a fresh
``quantbot quantize`` process per trial, two at a time (:func:`runners.standins.matrix.run_zoo`,
what ``python -m runners.standins.matrix`` runs for the README): GGUF Q4_K_M and Q8_0 (with the
vision projector for multimodal models) and GPTQ where the support snapshot says GPTQModel takes
the architecture. A failure the zoo records as known (``KNOWN_FAILURES``, a tool's
own bug or missing dependency) is expected with its own error and reported as xfail; any other
failure fails with the tool's error, and a known failure that stops failing fails too, so the
record goes.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from runners.results import load_run
from runners.standins.matrix import (
    MARK_BEGIN,
    MARK_END,
    Trial,
    error_of,
    render,
    rewrite_readme,
    run_zoo,
)
from runners.standins.zoo import KNOWN_FAILURES, ZOO, StandIn

METHODS = ("gguf", "gptq")
GGUF_TYPES = ("Q4_K_M", "Q8_0")


@pytest.fixture(scope="session")
def zoo_trials(tmp_path_factory: pytest.TempPathFactory, toolchain) -> tuple[Path, dict]:
    """Every stand-in x method, run once per session two at a time (the matrix's own runner,
    each trial a fresh ``quantbot quantize`` process), folders kept for the checks below."""
    keep = tmp_path_factory.mktemp("zoo")
    trials = run_zoo([s.name for s in ZOO], METHODS, workers=2, keep=keep)
    return keep, {(t.standin, t.method): t for t in trials}


def _check_gguf(standin: StandIn, repo: Path) -> None:
    names = {p.name for p in repo.iterdir()}
    assert {f"{standin.name}.{t}.gguf" for t in GGUF_TYPES} <= names, names
    assert {"README.md", "quantbot.json"} <= names
    run = load_run(repo)
    assert [v.name for v in run.variants] == list(GGUF_TYPES)
    for v in run.variants:
        assert math.isfinite(v.quality.ppl) and v.quality.ppl > 0
        assert v.quality.kld_mean is not None and v.quality.same_top_p is not None
        assert v.check_output, f"{v.name}: the load-and-generate check produced no text"
    projectors = {f"mmproj-{standin.name}-{t}.gguf" for t in ("F16", "Q8_0")}
    if standin.multimodal:
        assert projectors <= names, names
        assert {e.name for e in run.extra_files} == projectors
        assert all(e.kind == "mmproj" and e.params["image_tokens"] > 0 for e in run.extra_files)
    else:
        assert not projectors & names and not run.extra_files


def _check_gptq(repo: Path) -> None:
    run = load_run(repo)
    assert run.variants, "no GPTQ variant recorded"
    for v in run.variants:
        assert all((repo / f).is_file() for f in v.files), v.files
        assert math.isfinite(v.quality.ppl) and v.quality.kld_mean is not None
        assert v.check_output, f"{v.name}: the reload-and-generate check produced no text"


def test_zoo_table(toolchain) -> None:
    """Every entry names files the pinned tree ships, and each family appears once."""
    models = toolchain.src_dir / "models"
    assert len({s.name for s in ZOO}) == len(ZOO) >= 14
    for s in ZOO:
        assert (models / f"ggml-vocab-{s.vocab}.gguf").is_file(), s.name
        assert s.template is None or (models / "templates" / s.template).is_file(), s.name
        assert s.multimodal == ("vision_config" in s.shape), s.name
    assert {name for name, _ in KNOWN_FAILURES} <= {s.name for s in ZOO}


def test_error_of_takes_the_tools_own_error() -> None:
    python_tool = ("log line\nError: gptq: quantization failed: python3 exited with 1:\n"
                   '  File "/x/gptqmodel/looper/stage.py", line 9, in cache_inputs\n'
                   "TypeError: 'NoneType' object is not subscriptable\n"
                   ". Fix: read the tool's message above")
    assert error_of(python_tool) == (
        "gptq: quantization failed: python3 exited with 1: TypeError: 'NoneType' object is not "
        "subscriptable (raised in stage.py:cache_inputs)")
    c_tool = ("Error: quantbot-perplexity exited with 1:\n0.00.4 E llama_model_load: error loading "
              "model: tensor 'blk.1.ssm_in.weight' not found\n0.00.5 E llama_perplexity: unable")
    assert error_of(c_tool).endswith("error loading model: tensor 'blk.1.ssm_in.weight' not found")


def test_matrix_block_replaces_only_the_marked_part(tmp_path: Path) -> None:
    trials = [Trial("llama3", "gguf", "works", "files", 12.0),
              Trial("llama3", "gptq", "fails", "boom: ValueError: x", 3.0, known="Upstream bug."),
              Trial("qwen3.5-vl", "gguf", "works", "files", 30.0, projector="works"),
              Trial("qwen3.5-vl", "gptq", "unsupported", "not in the model map")]
    block = render(trials, ["gguf", "gptq"])
    row = "| LlamaForCausalLM (`llama3`) | Llama 3.1 / 3.2 / 3.3 |  | works (12 s) | - | fails [1] |"
    assert row in block
    assert "1. llama3 GPTQ: Upstream bug. Error: `boom: ValueError: x`" in block
    assert "works (30 s) | works |" in block and "unsupported" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"# top\n\n{MARK_BEGIN}\nold\n{MARK_END}\n\n## Layout\n")
    rewrite_readme(readme, block)
    text = readme.read_text()
    assert text.startswith("# top\n") and text.endswith(f"{MARK_END}\n\n## Layout\n")
    assert "old" not in text and block in text


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("standin", ZOO, ids=lambda s: s.name)
def test_standin(standin: StandIn, method: str, zoo_trials: tuple[Path, dict]) -> None:
    keep, trials = zoo_trials
    trial = trials[(standin.name, method)]
    if trial.status == "unsupported":
        pytest.skip(f"unsupported by the tool (support snapshot): {trial.detail}")
    expected = KNOWN_FAILURES.get((standin.name, method))
    if expected is not None:
        if trial.status != "fails":
            pytest.fail(f"{standin.name} x {method} works now: remove its KNOWN_FAILURES entry "
                        f"({expected.why})")
        assert trial.known == expected.why, (
            f"{standin.name} x {method} fails differently from its known failure "
            f"({expected.match!r}): {trial.detail}")
        pytest.xfail(f"{expected.why} The tool: {trial.detail}")
    assert trial.status == "works", f"{standin.name} x {method}: {trial.status}: {trial.detail}"
    repo = keep / f"{standin.name}-{method}" / "hub" / "quantbot" / (
        f"{standin.name}-{method.upper()}")
    if method == "gguf":
        _check_gguf(standin, repo)
    else:
        _check_gptq(repo)
