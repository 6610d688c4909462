"""What the bot posts: every comment kind, through the real PyGithub to a local GitHub API."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from githubfake import REPO, comment_event, github, read_outputs, write_event  # noqa: F401
from hubfake import hub_http, model_files, model_hub  # noqa: F401

from bot.cli.command import command
from bot.handover import Published, save_published
from bot.plan import Plan
from bot.safetext import code_span as code
from runners.results import EvalSpec, Quality, QuantRun, SourceInfo, Variant


def plan(tmp_path, body, **kw):
    event = write_event(tmp_path, comment_event(body, **kw))
    result = CliRunner().invoke(command, ["plan", "--event", str(event)])
    assert result.exit_code == 0, result.output
    return read_outputs(tmp_path / "github_output")


def test_quantize_acknowledges_and_writes_outputs(github, model_hub, tmp_path):  # noqa: F811
    github.permissions["alice"] = "admin"
    sha = model_hub.add_model("TinyOrg/tiny-llama", model_files(
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    out = plan(tmp_path, "Thanks!\n/quantize gguf=Q4_K_M,Q8_0 gptq bits=8")
    assert out["run"] == "true"
    assert json.loads(out["matrix"]) == {"include": [
        {"method": "gguf", "runner": "cpu", "extra": "gguf"},
        {"method": "gptq", "runner": "gpu", "extra": "gpu"}]}
    assert out["model"] == "TinyOrg/tiny-llama" and out["issue"] == "5"
    made = Plan.from_json(out["plan"])
    assert made.revision == sha  # the commit the Hub named, which every job downloads
    assert made.request.specs["gguf"].types == ("Q4_K_M", "Q8_0")
    assert made.request.specs["gptq"].bits == (8,)
    assert github.reactions == [(4242, "eyes")]
    (body,) = github.bodies()
    assert "@alice" in body and "[TinyOrg/tiny-llama](https://huggingface.co/TinyOrg/tiny-llama)"
    assert "| GGUF | `quantbot/tiny-llama-GGUF` | Q4_K_M, Q8_0 |" in body
    assert "| GPTQ | `quantbot/tiny-llama-GPTQ` | 8-bit, group size auto" in body
    assert "AWQ" not in body
    assert "https://github.com/acme/quant-zoo/actions/runs/777" in body


def test_parse_error_quotes_the_bad_part(github, tmp_path):  # noqa: F811
    github.permissions["alice"] = "write"
    out = plan(tmp_path, "/quantize gguf=Q4_K_M gptq bits=5")
    assert out["run"] == "false"
    assert github.reactions == [(4242, "confused")]
    (body,) = github.bodies()
    assert "> `/quantize gguf=Q4_K_M gptq bits=5`" in body
    assert "the problem is at `bits=5`" in body
    assert "GPTQ bits must be one of 2, 3, 4, 8" in body and "Usage:" in body


@pytest.mark.parametrize("body", [
    "/quantize gguf=Q8_0 " + "x" * 70_000,  # one line past the body's cut
    "/quantize " + "gguf " * 300,  # past the line limit, within the body
    "a" * 65_530 + "\n/quantize gguf" + " " * 3000,  # straddles the cut, blank to its end
])
def test_an_overlong_command_line_is_answered(github, tmp_path, body):  # noqa: F811
    github.permissions["alice"] = "write"
    out = plan(tmp_path, body)
    assert out["run"] == "false"
    assert github.reactions == [(4242, "confused")]
    (reply,) = github.bodies()
    assert "the command line is more than 1000 characters long" in reply
    assert "keep it under 1000 characters" in reply and len(reply) < 5000


@pytest.mark.parametrize(("words", "value"), [
    ("gptq bits=\uff14", "\uff14"), ("gptq group_size=\u0661\u0662\u0668", "\u0661\u0662\u0668"),
    ("gptq damp=\uff10.\uff10\uff15", "\uff10.\uff10\uff15"),
])
def test_digits_of_other_scripts_are_refused_in_the_reply(github, tmp_path, words, value):  # noqa: F811
    github.permissions["alice"] = "write"
    out = plan(tmp_path, f"/quantize {words}")
    assert out["run"] == "false"
    (reply,) = github.bodies()
    assert f"written with the ASCII digits 0-9, not '{value}'" in reply


def test_issue_without_a_model_is_explained(github, tmp_path):  # noqa: F811
    github.permissions["alice"] = "write"
    out = plan(tmp_path, "/quantize", model=None)
    assert out["run"] == "false"
    assert "this issue names no model" in github.bodies()[0]


def test_status_lists_this_issues_runs(github, tmp_path):  # noqa: F811
    github.permissions["alice"] = "write"
    github.add_run(777, "quantize #5", "in_progress")  # this very run: not listed
    github.add_run(700, "quantize #5", "in_progress")
    github.add_run(650, "quantize #5", "completed", "success")
    github.add_run(600, "quantize #6", "in_progress")
    out = plan(tmp_path, "/status")
    assert out["run"] == "false" and github.reactions == [(4242, "+1")]
    (body,) = github.bodies()
    assert "[700](https://github.com/acme/quant-zoo/actions/runs/700) | in_progress" in body
    assert "[650]" in body and "completed (success)" in body
    assert "[777]" not in body and "[600]" not in body


def test_cancel_cancels_only_this_issues_active_runs(github, tmp_path):  # noqa: F811
    github.permissions["alice"] = "maintain"
    github.add_run(777, "quantize #5", "in_progress")
    github.add_run(701, "quantize #5", "queued")
    github.add_run(700, "quantize #5", "in_progress")
    github.add_run(650, "quantize #5", "completed", "success")
    github.add_run(600, "quantize #6", "in_progress")
    plan(tmp_path, "/cancel")
    assert sorted(github.cancelled) == [700, 701]
    (body,) = github.bodies()
    assert "cancelled 2 quantize runs" in body and "[701]" in body


def test_cancel_with_nothing_running_explains(github, tmp_path):  # noqa: F811
    github.permissions["alice"] = "write"
    github.add_run(650, "quantize #5", "completed", "failure")
    plan(tmp_path, "/cancel")
    assert github.cancelled == []
    assert "nothing to cancel" in github.bodies()[0]


def test_fail_names_the_step_and_links_the_log(github, tmp_path):  # noqa: F811
    event = write_event(tmp_path, comment_event("/quantize"))
    result = CliRunner().invoke(command, ["fail", "--event", str(event), "--step", "gguf"])
    assert result.exit_code == 0, result.output
    (body,) = github.bodies()
    assert "`TinyOrg/tiny-llama` failed at step **gguf**" in body
    assert "Run log: https://github.com/acme/quant-zoo/actions/runs/777" in body


def fake_run(method: str, names: list[str]) -> QuantRun:
    q = Quality(ppl=12.5, ppl_err=0.2, kld_mean=0.01, kld_err=0.001, kld_p99=0.1, same_top_p=0.97)
    return QuantRun(
        method=method,
        source=SourceInfo(repo_id="TinyOrg/tiny-llama", architecture="LlamaForCausalLM",
                          license="apache-2.0", n_params=1_100_000_000, context_length=2048,
                          dtype="bfloat16"),
        baseline=Quality(ppl=12.0, ppl_err=0.2),
        evaluation=EvalSpec(text_name="python-docs, evaluation split", text_sha256="ab" * 32,
                            n_tokens=16384, ctx=512, chunks=32,
                            evaluator="llama.cpp llama-perplexity"),
        variants=[Variant(method=method, name=n, files=[f"tiny-llama.{n}.gguf"],
                          size_bytes=700_000_000, bits_per_weight=4.85, ram_bytes=900_000_000,
                          peak_rss_bytes=850_000_000, quality=q, check_output="Hello")
                  for n in names],
        tools={"llama.cpp": "test"}, created="2026-11-25T10:00:00Z",
    )


def test_report_lists_each_repo_with_the_card_table(github, tmp_path):  # noqa: F811
    results = tmp_path / "results"
    folder = results / "quantbot" / "tiny-llama-GGUF"
    folder.mkdir(parents=True)
    fake_run("gguf", ["Q4_K_M", "Q8_0"]).save(folder)
    save_published(results, [Published("quantbot/tiny-llama-GGUF",
                                       "https://huggingface.co/quantbot/tiny-llama-GGUF",
                                       "gguf", "quantbot/tiny-llama-GGUF")])
    event = write_event(tmp_path, comment_event("/quantize gguf"))
    result = CliRunner().invoke(command, ["report", "--event", str(event),
                                          "--results", str(results)])
    assert result.exit_code == 0, result.output
    (body,) = github.bodies()
    assert "### [quantbot/tiny-llama-GGUF](https://huggingface.co/quantbot/tiny-llama-GGUF)" in body
    assert "| Name | Quant method | Bits/weight | Size |" in body
    assert "| Q4_K_M |" in body and "| Q8_0 |" in body and "4.85" in body
    assert github.reactions == [(4242, "+1")]


def test_code_quoting_is_safe():
    assert code("a`b") == "``a`b``"
    assert code("`x`") == "`` `x` ``"
    assert code("@everyone\nhi") == "`@everyone hi`"
    assert len(code("x" * 1000)) < 210
