"""Every registered method is known everywhere, with no special case: the command line, the
/quantize grammar, the plan (comment, matrix, estimates, capacity), the watcher's own-repo and
already-quantized checks, the cards (template, columns, tags) and the support registry."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from bot.capacity import DEFAULT_RUNNERS, footprint
from bot.cards.columns import COLUMNS
from bot.cards.data import build_card_data
from bot.cards.render import render_card
from bot.chatops.commands import parse
from bot.chatops.messages import plan_comment
from bot.cli import main
from bot.hub.filters import Context, ListedModel, decide_one, own_repo_ids
from bot.methods import METHODS, RUNNERS, SUPPORT_SOURCES, method_of_repo, source_name_of
from bot.plan import Plan
from bot.templating import environment
from runners.results import EvalSpec, Quality, QuantRun, SourceInfo, Variant
from runners.support.registry import support

NAMES = list(METHODS)


def _run(name: str) -> QuantRun:
    spec = METHODS[name].default_spec()
    q = Quality(ppl=10.2, ppl_err=0.1, kld_mean=0.01, kld_err=0.001, kld_p99=0.1, same_top_p=0.97)
    variants = [Variant(method=name, name=v, files=[f"{v}/model.safetensors"], size_bytes=1000 + i,
                        bits_per_weight=4.5, ram_bytes=2000, peak_rss_bytes=1500, quality=q,
                        check_output="ok", params={"bits": 4})
                for i, v in enumerate(spec.variant_names())]
    return QuantRun(method=name, source=SourceInfo(
        repo_id="acme/Model-7B", architecture="LlamaForCausalLM", license="apache-2.0",
        n_params=7_000_000_000, context_length=4096, dtype="bfloat16"),
        baseline=Quality(ppl=10.0, ppl_err=0.1),
        evaluation=EvalSpec("text", "ab" * 32, 16384, 512, 32, "evaluator"),
        variants=variants, tools={"quantizer": "tool 1.0"}, created="2026-11-25T00:00:00Z")


@pytest.mark.parametrize("name", NAMES)
def test_the_command_line_knows_it(name: str) -> None:
    result = CliRunner().invoke(main, ["quantize", "--help"])
    assert result.exit_code == 0 and f"[{name}" in result.output.replace("\n", " ")


@pytest.mark.parametrize("name", NAMES)
def test_the_grammar_and_the_plan_know_it(name: str) -> None:
    m = METHODS[name]
    command = parse(f"/quantize {name}")
    assert command is not None and command.request is not None
    plan = Plan("acme/Model-7B", 3, command.request)
    assert plan.matrix() == {"include": [{"method": name, "runner": m.runner, "extra": m.extra}]}
    assert m.runner in RUNNERS
    estimates = plan.estimates(7_000_000_000)
    assert [e.variant for e in estimates] == m.default_spec().variant_names()
    assert all(e.bytes > 0 for e in estimates)
    comment = plan_comment(plan, "alice", "qb")
    assert f"| {m.label} | `qb/{m.repo_name('Model-7B')}` |" in comment


@pytest.mark.parametrize("name", NAMES)
def test_the_watcher_knows_its_repos_and_its_tags(name: str) -> None:
    m = METHODS[name]
    ours = m.repo_name("Model-7B")
    assert f"qb/{ours}" in own_repo_ids("acme/Model-7B", "qb")
    assert method_of_repo(ours) is m and source_name_of(ours) == "Model-7B"
    listed = ListedModel(repo_id="acme/Model-7B", pipeline_tag="text-generation",
                         license="apache-2.0", architectures=("LlamaForCausalLM",),
                         params=7_000_000_000, tags=(m.hub_tags[0],))
    ctx = Context(namespace="qb", own_repos=frozenset({f"qb/{ours}"}), methods=tuple(METHODS))
    assert "already quantized" in decide_one(listed, _filters(), ctx).reason  # its own tag
    clean = dataclasses.replace(listed, tags=())
    assert "already published" in decide_one(clean, _filters(), ctx).reason


def _filters():
    from bot.config import FilterConfig

    return FilterConfig()


@pytest.mark.parametrize("name", NAMES)
def test_the_card_knows_it(name: str) -> None:
    m = METHODS[name]
    assert environment().get_template(m.card_template)  # it exists and compiles
    assert all(c in COLUMNS for c in m.columns)
    card = build_card_data(_run(name), f"qb/{m.repo_name('Model-7B')}")
    text = render_card(card)
    assert f"# Model-7B - {m.label}" in text
    assert all(f"- {tag}" in text for tag in m.hub_tags)
    header = "| " + " | ".join(COLUMNS[c].header for c in m.columns) + " |"
    assert header in text


@pytest.mark.parametrize("name", NAMES)
def test_support_and_capacity_know_it(name: str) -> None:
    m = METHODS[name]
    assert support("LlamaForCausalLM", "llama", SUPPORT_SOURCES)[name].supported
    need = footprint(m, 7_000_000_000, None)
    assert need.runner == m.runner and need.disk > need.outputs > 0
    assert m.runner in DEFAULT_RUNNERS
