"""End to end: an issue_comment event → plan → GGUF job on a tiny model → publish → report."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from githubfake import comment_event, github, read_outputs, write_event  # noqa: F401

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


@pytest.mark.slow
def test_comment_to_published_report(github, tmp_path, tiny_model, toolchain):  # noqa: F811
    github.permissions["alice"] = "write"
    event = write_event(tmp_path, comment_event("/quantize gguf=Q8_0,Q4_K_M"))
    invoke(command, ["plan", "--event", event])
    outputs = read_outputs(tmp_path / "github_output")
    assert outputs["run"] == "true"
    assert [j["method"] for j in json.loads(outputs["matrix"])["include"]] == ["gguf"]
    plan = tmp_path / "plan.json"
    plan.write_text(outputs["plan"])  # as the workflow does, via env, never via a shell word

    results = tmp_path / "results"
    invoke(run_job, ["make", "--plan", plan, "--method", "gguf", "--out", results,
                     "--source", tiny_model, "--work", tmp_path / "work", "--ctx", 64,
                     "--chunks", 4])
    repo = results / "quantbot" / "tiny-llama-GGUF"
    assert [v.name for v in load_run(repo).variants] == ["Q4_K_M", "Q8_0"]

    hub = tmp_path / "hub"
    invoke(run_job, ["publish", "--results", results, "--plan", plan, "--hub-dir", hub])
    assert (hub / "quantbot" / "tiny-llama-GGUF" / "tiny-llama.Q8_0.gguf").is_file()
    published = json.loads((results / PUBLISHED_FILE).read_text())
    assert [p["repo_id"] for p in published] == ["quantbot/tiny-llama-GGUF"]

    invoke(command, ["report", "--event", event, "--results", results])
    plan_body, report_body = github.bodies()
    assert "| GGUF | `quantbot/tiny-llama-GGUF` | Q4_K_M, Q8_0 |" in plan_body
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
def test_quantize_nf4_comment_to_published_report(github, tmp_path, trained_model):  # noqa: F811
    """`/quantize nf4`: the plan's matrix names the gpu runner; the method job makes, measures
    and reload-checks the -bnb-4bit repository (bitsandbytes' CPU backend here), publishes it,
    and the report posts its row."""
    github.permissions["alice"] = "write"
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
                     "--chunks", 4, "--device", "cpu"])
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
