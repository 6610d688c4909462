"""The comment grammar: every option, every error, and no input that crashes it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commanding.job import JobSpec
from bot.commanding.parser import (
    AwqOptions,
    GptqOptions,
    Kind,
    ParseError,
    QuantizePlan,
    command_line,
    parse,
)
from runners.errors import QuantbotError
from runners.gguf.types import DEFAULT_TYPES


def plan_of(text: str) -> QuantizePlan:
    cmd = parse(text)
    assert cmd is not None and cmd.kind is Kind.QUANTIZE and cmd.plan is not None
    return cmd.plan


def test_quantize_alone_is_the_default_plan():
    plan = plan_of("/quantize")
    assert plan.methods == ("gguf", "gptq", "awq")
    assert plan.gguf_types == DEFAULT_TYPES and not plan.imatrix
    assert plan.gptq == GptqOptions(bits=4, group_size=128, act_order=True, damp=0.01)
    assert plan.awq == AwqOptions(bits=4, group_size=128, zero_point=True)
    assert plan.run_gguf and plan.gpu_methods == ("gptq", "awq")


def test_gguf_types_and_methods():
    plan = plan_of("/quantize gguf=q8_0,Q4_K_M gptq awq")
    assert plan.methods == ("gguf", "gptq", "awq")
    assert plan.gguf_types == ("Q4_K_M", "Q8_0")  # default order, upper-cased


def test_methods_are_canonically_ordered_and_only_those_named():
    plan = plan_of("/quantize awq gguf")
    assert plan.methods == ("gguf", "awq") and plan.gpu_methods == ("awq",)
    gpu_only = plan_of("/quantize gptq")
    assert gpu_only.methods == ("gptq",) and not gpu_only.run_gguf and gpu_only.gguf_types == ()


def test_imatrix():
    assert plan_of("/quantize gguf imatrix").imatrix
    assert plan_of("/quantize gguf imatrix=false").imatrix is False
    assert plan_of("/quantize imatrix").methods == ("gguf", "gptq", "awq")
    assert plan_of("/quantize gguf=IQ2_XS imatrix").gguf_types == ("IQ2_XS",)


def test_gptq_options():
    plan = plan_of("/quantize gptq bits=8 group_size=32 act_order=false damp=0.05")
    assert plan.gptq == GptqOptions(bits=8, group_size=32, act_order=False, damp=0.05)
    for size, expect in (("none", -1), ("-1", -1), ("64", 64), ("128", 128)):
        assert plan_of(f"/quantize gptq group_size={size}").gptq.group_size == expect
    for bits in (2, 3, 4, 8):
        assert plan_of(f"/quantize gptq bits={bits}").gptq.bits == bits
    assert plan_of("/quantize gptq act_order=yes").gptq.act_order is True


def test_awq_options():
    plan = plan_of("/quantize awq bits=4 group_size=64 zero_point=off")
    assert plan.awq == AwqOptions(bits=4, group_size=64, zero_point=False)


def test_options_apply_to_the_method_before_them():
    plan = plan_of("/quantize gptq group_size=32 awq group_size=64")
    assert plan.gptq.group_size == 32 and plan.awq.group_size == 64


def test_unambiguous_options_before_any_method():
    assert plan_of("/quantize act_order=false").gptq.act_order is False
    assert plan_of("/quantize zero_point=false").awq.zero_point is False


def test_cancel_and_status():
    assert parse("  /CANCEL  ").kind is Kind.CANCEL
    assert parse("/cancel").kind is Kind.CANCEL and parse("/cancel").plan is None
    assert parse("/status").kind is Kind.STATUS


@pytest.mark.parametrize("text", [
    "", "hello", "please quantize this", "> /quantize", "/quantise", "/quantize-all",
    "/label bug", "/", "```\n/quantize\n```", "text with /quantize inside",
])
def test_not_a_command_is_ignored(text):
    assert parse(text) is None


def test_only_the_first_slash_line_counts():
    assert parse("Looks good!\n/quantize gguf\n/cancel").plan.methods == ("gguf",)
    assert parse("/label x\n/quantize") is None
    assert parse("```\n/cancel\n```\n/status").kind is Kind.STATUS
    assert command_line("a\r\n  /status  \r\n") == "/status"


@pytest.mark.parametrize(("text", "token", "words"), [
    ("/quantize gguf=Q9_K", "gguf=Q9_K", "unknown GGUF type"),
    ("/quantize gguf=", "gguf=", "names no GGUF type"),
    ("/quantize gguf=,", "gguf=,", "names no GGUF type"),
    ("/quantize gguf=IQ2_XS", "IQ2_XS", "importance matrix"),
    ("/quantize gguf gguf", "gguf", "given twice"),
    ("/quantize gptq=4", "gptq=4", "takes no value"),
    ("/quantize gptq bits=5", "bits=5", "must be one of 2, 3, 4, 8"),
    ("/quantize gptq bits=four", "bits=four", "must be one of"),
    ("/quantize gptq bits=", "bits=", "has no value"),
    ("/quantize gptq group_size=100", "group_size=100", "must be one of 32, 64, 128, none"),
    ("/quantize gptq act_order=maybe", "act_order=maybe", "not true or false"),
    ("/quantize gptq damp=2", "damp=2", "between 0 and 1"),
    ("/quantize gptq damp=nan", "damp=nan", "between 0 and 1"),
    ("/quantize gptq damp=x", "damp=x", "between 0 and 1"),
    ("/quantize gptq bits=4 bits=8", "bits=8", "given twice"),
    ("/quantize awq bits=8", "bits=8", "AWQ bits must be one of 4"),
    ("/quantize awq group_size=none", "group_size=none", "must be one of 32, 64, 128"),
    ("/quantize awq act_order=true", "act_order=true", "does not apply after awq"),
    ("/quantize gguf bits=4", "bits=4", "does not apply after gguf"),
    ("/quantize bits=4", "bits=4", "before any method"),
    ("/quantize gptq imatrix", "imatrix", "does not apply after gptq"),
    ("/quantize gptq zero_point=true", "zero_point=true", "does not apply after gptq"),
    ("/quantize ggfu", "ggfu", "did you mean 'gguf'"),
    ("/quantize --types Q4_K_M", "--types", "unknown option"),
    ("/status now", "now", "takes no arguments"),
    ("/cancel all", "all", "takes no arguments"),
    ("/quantize " + "gguf " * 300, "/quantize", "characters long"),
])
def test_errors_quote_the_bad_token(text, token, words):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert info.value.token == token
    assert words in str(info.value)
    if token != "/quantize":
        assert token in info.value.problem


def test_plan_json_round_trip():
    plan = plan_of("/quantize gguf=Q4_K_M imatrix gptq bits=3 group_size=none damp=0.1 awq")
    assert QuantizePlan.from_json(plan.to_json()) == plan
    job = JobSpec(model="org/model", issue=5, plan=plan)
    assert JobSpec.from_json(job.to_json()) == job
    assert "\n" not in job.to_json()


@pytest.mark.parametrize("text", [
    "", "{}", "[]", '{"methods": ["gguf"]}',
    '{"methods":["x"],"gguf_types":[],"imatrix":false,"gptq":{},"awq":{}}',
    '{"methods":["gptq"],"gguf_types":[],"imatrix":false,"gptq":{"bits":5},"awq":{}}',
    '{"methods":["gguf"],"gguf_types":["Q9"],"imatrix":false,"gptq":{},"awq":{}}',
    '{"methods":["gptq"],"gguf_types":[],"imatrix":false,"gptq":{"damp":1},"awq":{}}',
])
def test_from_json_revalidates(text):
    with pytest.raises(QuantbotError):
        QuantizePlan.from_json(text)


def test_job_spec_rejects_bad_models():
    plan = plan_of("/quantize")
    for bad in ("no-slash", "a/b/c", "a/$(rm -rf)", "\uff41/b", "../x"):
        with pytest.raises(QuantbotError):
            JobSpec(model=bad, issue=1, plan=plan)


_TOKENS = st.sampled_from([
    "gguf", "gptq", "awq", "imatrix", "gguf=Q4_K_M", "gguf=q8_0,Q2_K", "gguf=IQ2_XS", "gguf=",
    "bits=4", "bits=8", "bits=5", "group_size=none", "group_size=64", "group_size=7",
    "act_order=true", "act_order=x", "damp=0.1", "damp=-1", "zero_point=false", "=", "==",
    "GGUF", "bits", "x=y=z",
])


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_parses_or_fails_cleanly(text):
    try:
        result = parse(text)
    except ParseError as exc:
        assert exc.problem and exc.fix
    else:
        assert result is None or result.kind in Kind


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_TOKENS, st.text(min_size=1, max_size=12).filter(
    lambda s: not any(c.isspace() for c in s))), max_size=8),
       st.sampled_from(["/quantize", "/QUANTIZE", "/status", "/cancel"]))
def test_command_shaped_text_parses_or_fails_cleanly(tokens, head):
    text = " ".join([head, *tokens])
    try:
        cmd = parse(text)
    except ParseError as exc:
        assert exc.token == "" or exc.token in text or exc.token.upper() in text.upper()
    else:
        assert cmd is not None
        if cmd.plan is not None:
            assert QuantizePlan.from_json(cmd.plan.to_json()) == cmd.plan
