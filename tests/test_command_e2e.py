"""End to end: an issue_comment event → plan → method jobs on a tiny model → publish → (for
several formats) every card made again with all of them → report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from githubfake import comment_event, github, read_outputs, write_event  # noqa: F401
from hubfake import FakeHub, hub_http, model_hub  # noqa: F401
from workflowjobs import hand_over

from bot.cli.command import command
from bot.cli.run_job import command as run_job
from bot.handover import PUBLISHED_FILE
from bot.plan import Plan
from runners.errors import QuantbotError
from runners.results import load_run


def invoke(group, args):
    result = CliRunner().invoke(group, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def upload(hub: FakeHub, repo_id: str, model: Path) -> str:
    """The model folder as a Hub repository; its commit sha."""
    return hub.add_model(repo_id, {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()})


@pytest.mark.slow
def test_comment_to_published_report(github, model_hub, tmp_path, tiny_model,  # noqa: F811
                                     toolchain):
    """The plan pins the commit the Hub names; the model's owner pushes meanwhile; the job
    still downloads the pinned commit, and quantbot.json and the card record it."""
    github.permissions["alice"] = "write"
    pinned = upload(model_hub, "TinyOrg/tiny-llama", tiny_model)
    event = write_event(tmp_path, comment_event("/quantize gguf=Q8_0,Q4_K_M"))
    invoke(command, ["plan", "--event", event])
    outputs = read_outputs(tmp_path / "github_output")
    assert outputs["run"] == "true"
    assert [j["method"] for j in json.loads(outputs["matrix"])["include"]] == ["gguf"]
    plan = tmp_path / "plan.json"
    plan.write_text(outputs["plan"])  # as the workflow does, via env, never via a shell word
    assert Plan.load(plan).revision == pinned

    moved = model_hub.push("TinyOrg/tiny-llama", {"README.md": b"---\nlicense: mit\n---\nv2\n"})
    assert moved != pinned
    results = tmp_path / "results"
    invoke(run_job, ["make", "--plan", plan, "--method", "gguf", "--out", results,
                     "--work", tmp_path / "work", "--ctx", 64, "--chunks", 4,
                     "--answers", "2", "--answer-tokens", "4"])
    assert model_hub.count("GET", rf"^/TinyOrg/tiny-llama/resolve/{pinned}/model\.safetensors$")
    assert not model_hub.count("GET", rf"/resolve/(main|{moved})/")
    repo = results / "quantbot" / "tiny-llama-GGUF"
    run = load_run(repo)
    assert [v.name for v in run.variants] == ["Q4_K_M", "Q8_0"]
    assert run.source.repo_id == "TinyOrg/tiny-llama" and run.source.revision == pinned
    card = (repo / "README.md").read_text()
    assert f"commit [`{pinned[:12]}`](https://huggingface.co/TinyOrg/tiny-llama/tree/{pinned})" \
        in card

    hub = tmp_path / "hub"
    invoke(run_job, ["publish", "--results", results, "--plan", plan, "--hub-dir", hub])
    assert (hub / "quantbot" / "tiny-llama-GGUF" / "tiny-llama.Q8_0.gguf").is_file()
    published = json.loads((results / PUBLISHED_FILE).read_text())
    assert [p["repo_id"] for p in published] == ["quantbot/tiny-llama-GGUF"]
    assert load_run(hub / "quantbot" / "tiny-llama-GGUF").source.revision == pinned

    invoke(command, ["report", "--event", event, "--results", results])
    plan_body, report_body = github.bodies()
    assert "| GGUF | `quantbot/tiny-llama-GGUF` | Q4_K_M, Q8_0 |" in plan_body
    assert f"at commit [`{pinned[:12]}`]" in plan_body
    assert "### [quantbot/tiny-llama-GGUF](" in report_body
    assert "| tiny-llama.Q4_K_M.gguf |" in report_body or "Q4_K_M" in report_body
    assert github.reactions == [(4242, "eyes"), (4242, "+1")]


def test_run_job_gpu_follows_the_plans_gptq_options(tmp_path, trained_model):
    """`/quantize gptq bits=8 group_size=64 act_order=false` → that one GPTQ variant, on the CPU."""
    plan = tmp_path / "plan.json"
    invoke(run_job, ["plan", "--model", "org/m", "-o", plan, "--comment",
                     "/quantize gptq bits=8 group_size=64 act_order=false"])
    assert Plan.load(plan).request.methods == ("gptq",)
    invoke(run_job, ["make", "--plan", plan, "--method", "gptq", "--source", trained_model,
                     "--out", tmp_path / "out", "--work", tmp_path / "work", "--owner", "qb",
                     "--device", "cpu"])
    run = load_run(tmp_path / "out" / "qb" / "m-GPTQ")
    assert [v.name for v in run.variants] == ["gptq-8bit-64g"]
    assert run.variants[0].params["act_order"] is False and run.source.repo_id == "org/m"


def test_run_job_refuses_methods_the_plan_lacks(tmp_path):
    plan = tmp_path / "plan.json"
    invoke(run_job, ["plan", "--model", "org/m", "--comment", "/quantize awq", "-o", plan])
    for args in (["make", "--method", "gguf"], ["make", "--method", "gptq"]):
        result = CliRunner().invoke(run_job, [*args, "--plan", str(plan),
                                              "--out", str(tmp_path / "o")])
        assert isinstance(result.exception, QuantbotError), result.output


def test_publish_without_results_fails_clearly(tmp_path):
    result = CliRunner().invoke(run_job, ["publish", "--results", str(tmp_path),
                                          "--hub-dir", str(tmp_path / "hub")])
    assert isinstance(result.exception, QuantbotError)
    assert "no finished repository" in str(result.exception)


@pytest.mark.slow
def test_quantize_nf4_comment_to_published_report(github, model_hub, tmp_path,  # noqa: F811
                                                  trained_model):
    """`/quantize nf4`: the plan's matrix names the gpu runner; the method job makes, measures
    and reload-checks the -bnb-4bit repository (bitsandbytes' CPU backend here), publishes it,
    and the report posts its row."""
    github.permissions["alice"] = "write"
    upload(model_hub, "TinyOrg/tiny-llama", trained_model)
    event = write_event(tmp_path, comment_event("/quantize nf4"))
    invoke(command, ["plan", "--event", event])
    outputs = read_outputs(tmp_path / "github_output")
    (job,) = json.loads(outputs["matrix"])["include"]
    assert job == {"method": "nf4", "runner": "gpu", "extra": "gpu"}
    plan = tmp_path / "plan.json"
    plan.write_text(outputs["plan"])
    results = tmp_path / "results"
    invoke(run_job, ["make", "--plan", plan, "--method", "nf4", "--out", results,
                     "--source", trained_model, "--work", tmp_path / "work", "--ctx", 128,
                     "--chunks", 4, "--answers", "2", "--answer-tokens", "4", "--device", "cpu"])
    repo = results / "quantbot" / "tiny-llama-bnb-4bit"
    run = load_run(repo)
    assert run.method == "nf4" and [v.name for v in run.variants] == ["nf4-dq-bfloat16"]
    assert run.variants[0].quality.kld_mean is not None and run.variants[0].check_output.strip()
    invoke(run_job, ["publish", "--results", results, "--plan", plan,
                     "--hub-dir", tmp_path / "hub"])
    invoke(command, ["report", "--event", event, "--results", results])
    plan_body, report_body = github.bodies()
    assert "| NF4 | `quantbot/tiny-llama-bnb-4bit` | NF4, blocks of 64" in plan_body
    assert "### [quantbot/tiny-llama-bnb-4bit](" in report_body and "nf4-dq-bfloat16" in report_body


@pytest.mark.slow
def test_three_formats_published_per_method_then_every_card_shows_all(
        github, tmp_path, trained_model, toolchain):  # noqa: F811
    """`/quantize gguf=Q4_K_M gptq nf4` as the workflow runs it: three method jobs, each making,
    publishing its own repository (a card of one format) and handing over its records; then the
    report job's `run-job cards` puts on every card the table of all three formats and the plot,
    changing no model file, and the report comment follows."""
    comment = "/quantize gguf=Q4_K_M gptq nf4"
    plan = tmp_path / "plan.json"
    invoke(run_job, ["plan", "--model", "TinyOrg/tiny-llama", "--comment", comment, "-o", plan])
    jobs = Plan.load(plan).matrix()["include"]  # the plan job's `matrix` output
    assert [j["method"] for j in jobs] == ["gguf", "gptq", "nf4"]
    hub, report = tmp_path / "hub", tmp_path / "report"
    for job in jobs:
        runner_temp = tmp_path / job["method"]  # each job's own $RUNNER_TEMP
        invoke(run_job, ["make", "--plan", plan, "--method", job["method"],
                         "--out", runner_temp / "results", "--source", trained_model,
                         "--work", tmp_path / "work", "--ctx", 128, "--chunks", 4,
                         "--answers", "2", "--answer-tokens", "4",
                         "--device", "cpu"])
        invoke(run_job, ["publish", "--results", runner_temp / "results", "--plan", plan,
                         "--hub-dir", hub])
        hand_over(runner_temp, report, job["method"])
    repos = [hub / "quantbot" / name
             for name in ("tiny-llama-GGUF", "tiny-llama-GPTQ", "tiny-llama-bnb-4bit")]
    assert not any("## Every format" in (r / "README.md").read_text() for r in repos)
    models = {p: p.stat().st_ino for r in repos for p in r.rglob("*")
              if p.is_file() and p.name not in ("README.md", "quality.png")}

    invoke(run_job, ["cards", "--results", report, "--hub-dir", hub])
    variants = {label: [v.name for v in load_run(r).variants]
                for label, r in zip(("GGUF", "GPTQ", "NF4"), repos, strict=True)}
    for repo in repos:
        for branch in [repo, *sorted((repo / ".branches").glob("*"))]:
            card = (branch / "README.md").read_text()
            assert "## Every format of this release" in card, branch
            assert "All 3 variants of GGUF, GPTQ, NF4" in card
            for label, names in variants.items():
                assert all(f"| {label} | [{name}](" in card for name in names), (label, branch)
            assert all(f"(https://huggingface.co/quantbot/{r.name})" in card for r in repos)
            assert "](quality.png)" in card
            assert (branch / "quality.png").read_bytes().startswith(b"\x89PNG\r\n")
    assert {p: p.stat().st_ino for p in models} == models  # every model file as published

    event = write_event(tmp_path, comment_event(comment))
    invoke(command, ["report", "--event", event, "--results", report])
    report_body = github.bodies()[-1]
    assert all(f"### [quantbot/{r.name}](" in report_body for r in repos)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="the workflow's make step needs bubblewrap")
def test_quantize_mlx_fp8_comment_to_published_report(github, model_hub, tmp_path,  # noqa: F811
                                                      trained_model):
    """`/quantize mlx fp8` as the workflow runs it: the plan's matrix puts MLX on the cpu runner
    (mlx extra) and FP8 on the gpu runner (fp8 extra); each job makes its repository in the
    make step's sandbox (mlx-lm and compressed-tensors on the CPU), publishes it and hands over
    its record; every card then shows both formats on one scale, and the report posts both."""
    github.permissions["alice"] = "write"
    upload(model_hub, "TinyOrg/tiny-llama", trained_model)
    event = write_event(tmp_path, comment_event("/quantize mlx fp8"))
    invoke(command, ["plan", "--event", event])
    outputs = read_outputs(tmp_path / "github_output")
    jobs = json.loads(outputs["matrix"])["include"]
    assert sorted(jobs, key=lambda j: j["method"]) == [
        {"method": "fp8", "runner": "gpu", "extra": "fp8"},
        {"method": "mlx", "runner": "cpu", "extra": "mlx"}]
    plan = tmp_path / "plan.json"
    plan.write_text(outputs["plan"])
    hub, report = tmp_path / "hub", tmp_path / "report"
    for job in jobs:
        runner_temp = tmp_path / job["method"]
        invoke(run_job, ["make", "--plan", plan, "--method", job["method"],
                         "--out", runner_temp / "results", "--source", trained_model,
                         "--work", tmp_path / "work", "--ctx", 128, "--chunks", 4,
                         "--answers", "2", "--answer-tokens", "4", "--device", "cpu",
                         "--isolation", "bwrap"])
        invoke(run_job, ["publish", "--results", runner_temp / "results", "--plan", plan,
                         "--hub-dir", hub])
        hand_over(runner_temp, report, job["method"])
    repos = [hub / "quantbot" / name for name in ("tiny-llama-MLX", "tiny-llama-FP8-dynamic")]
    runs = [load_run(r) for r in repos]
    assert [(r.method, [v.name for v in r.variants]) for r in runs] == [
        ("mlx", ["mlx-4bit-64g"]), ("fp8", ["fp8-dynamic"])]
    for run in runs:
        (v,) = run.variants
        assert v.quality.kld_mean is not None and v.answers is not None and v.check_output
    assert (repos[0] / "model.safetensors").is_file()

    invoke(run_job, ["cards", "--results", report, "--hub-dir", hub])
    for repo in repos:
        card = (repo / "README.md").read_text()
        assert "## Every format of this release" in card and "All 2 variants of " in card
        assert "| MLX | [mlx-4bit-64g](" in card and "| FP8 | [fp8-dynamic](" in card
    invoke(command, ["report", "--event", event, "--results", report])
    plan_body, report_body = github.bodies()
    assert "| MLX | `quantbot/tiny-llama-MLX` |" in plan_body
    assert "| FP8 | `quantbot/tiny-llama-FP8-dynamic` |" in plan_body
    assert all(f"### [quantbot/{r.name}](" in report_body for r in repos)
