"""The comment grammar: every option, every error, every registered method, and no input that
crashes it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.chatops.commands import Kind, command_line, parse
from bot.methods import METHODS, RUNNERS
from bot.plan import Plan
from bot.request import ParseError, QuantizeRequest, usage
from runners.errors import QuantbotError
from runners.fp8.spec import Fp8Spec
from runners.gguf.spec import GgufSpec
from runners.gguf.types import DEFAULT_TYPES
from runners.gptq.spec import AwqSpec, GptqSpec
from runners.mlx.spec import MlxSpec
from runners.nf4.spec import Nf4Spec

ALL_METHODS = ("gguf", "gptq", "awq", "nf4", "fp8", "mlx")


def request_of(text: str) -> QuantizeRequest:
    cmd = parse(text)
    assert cmd is not None and cmd.kind is Kind.QUANTIZE and cmd.request is not None
    return cmd.request


def runners_of(request: QuantizeRequest) -> list[tuple[str, str]]:
    return [(job.method, job.runner) for job in Plan("org/model", 1, request).jobs]


def test_quantize_alone_is_every_method_with_its_defaults():
    req = request_of("/quantize")
    assert req.methods == ALL_METHODS == tuple(METHODS)
    gguf = req.specs["gguf"]
    assert gguf == GgufSpec() and gguf.types == DEFAULT_TYPES and not gguf.imatrix
    # group size "auto": the largest of 128/64/32 that fits the model, chosen by the pipeline
    assert req.specs["gptq"] == GptqSpec(bits=(4,), group_size=(0,), act_order=(True,),
                                         damp=(0.01,))
    assert req.specs["awq"] == AwqSpec(bits=(4,), group_size=(0,), zero_point=(True,))
    assert req.specs["nf4"] == Nf4Spec(double_quant=True, compute_dtype="bfloat16")
    assert req.specs["fp8"] == Fp8Spec()
    assert req.specs["mlx"] == MlxSpec(bits=(4,), group_size=(64,))
    assert runners_of(req) == [("gguf", "cpu"), ("gptq", "gpu"), ("awq", "gpu"), ("nf4", "gpu"),
                               ("fp8", "gpu"), ("mlx", "cpu")]


def test_configured_defaults_make_a_bare_quantize():
    assert parse("/quantize", ("gptq", "gguf")).request.methods == ("gguf", "gptq")
    assert parse("/quantize awq", ("gguf",)).request.methods == ("awq",)


def test_gguf_types_and_methods():
    req = request_of("/quantize gguf=q8_0,Q4_K_M gptq awq")
    assert req.methods == ("gguf", "gptq", "awq")
    assert req.specs["gguf"].types == ("Q4_K_M", "Q8_0")  # default order, upper-cased


def test_methods_are_canonically_ordered_and_only_those_named():
    req = request_of("/quantize awq gguf")
    assert req.methods == ("gguf", "awq") and runners_of(req) == [("gguf", "cpu"), ("awq", "gpu")]
    gpu_only = request_of("/quantize gptq")
    assert gpu_only.methods == ("gptq",) and "gguf" not in gpu_only.specs
    assert runners_of(gpu_only) == [("gptq", "gpu")]


def test_imatrix():
    assert request_of("/quantize gguf imatrix").specs["gguf"].imatrix is True
    assert request_of("/quantize gguf imatrix=false").specs["gguf"].imatrix is False
    only_option = request_of("/quantize imatrix")
    assert only_option.methods == ALL_METHODS and only_option.specs["gguf"].imatrix is True
    assert request_of("/quantize gguf=IQ2_XS imatrix").specs["gguf"].types == ("IQ2_XS",)


def test_gptq_options():
    req = request_of("/quantize gptq bits=8 group_size=32 act_order=false damp=0.05")
    assert req.specs["gptq"] == GptqSpec(bits=(8,), group_size=(32,), act_order=(False,),
                                         damp=(0.05,))
    for size, expect in (("none", -1), ("-1", -1), ("64", 64), ("128", 128)):
        assert request_of(f"/quantize gptq group_size={size}").specs["gptq"].group_size == (expect,)
    for bits in (2, 3, 4, 8):
        assert request_of(f"/quantize gptq bits={bits}").specs["gptq"].bits == (bits,)
    assert request_of("/quantize gptq act_order=yes").specs["gptq"].act_order == (True,)


def test_gptq_lists_make_every_combination():
    spec = request_of("/quantize gptq bits=4,8,4 group_size=none").specs["gptq"]
    assert spec.bits == (4, 8) and spec.group_size == (-1,)  # duplicates dropped
    assert spec.variant_names() == ["gptq-4bit-nogroup-actorder", "gptq-8bit-nogroup-actorder"]


def test_awq_options():
    req = request_of("/quantize awq bits=4 group_size=64 zero_point=off")
    assert req.specs["awq"] == AwqSpec(bits=(4,), group_size=(64,), zero_point=(False,))


def test_nf4_options():
    req = request_of("/quantize nf4 double_quant=false compute_dtype=float16")
    assert req.specs["nf4"] == Nf4Spec(double_quant=False, compute_dtype="float16")


def test_options_apply_to_the_method_before_them():
    req = request_of("/quantize gptq group_size=32 awq group_size=64")
    assert req.specs["gptq"].group_size == (32,) and req.specs["awq"].group_size == (64,)


def test_unambiguous_options_before_any_method():
    assert request_of("/quantize act_order=false").specs["gptq"].act_order == (False,)
    assert request_of("/quantize zero_point=false").specs["awq"].zero_point == (False,)
    assert request_of("/quantize double_quant=false").specs["nf4"].double_quant is False
    assert request_of("/quantize act_order=false gptq").methods == ("gptq",)


def test_cancel_and_status():
    assert parse("  /CANCEL  ").kind is Kind.CANCEL
    assert parse("/cancel").kind is Kind.CANCEL and parse("/cancel").request is None
    assert parse("/status").kind is Kind.STATUS


@pytest.mark.parametrize("text", [
    "", "hello", "please quantize this", "> /quantize", "/quantise", "/quantize-all",
    "/label bug", "/", "```\n/quantize\n```", "text with /quantize inside",
])
def test_not_a_command_is_ignored(text):
    assert parse(text) is None


def test_only_the_first_slash_line_counts():
    assert parse("Looks good!\n/quantize gguf\n/cancel").request.methods == ("gguf",)
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
    ("/quantize nf4=x", "nf4=x", "takes no value"),
    ("/quantize gptq bits=5", "bits=5", "must be one of 2, 3, 4, 8"),
    ("/quantize gptq bits=four", "bits=four", "must be one of"),
    ("/quantize gptq bits=", "bits=", "has no value"),
    ("/quantize gptq group_size=100", "group_size=100", "must be one of 32, 64, 128, none"),
    ("/quantize gptq act_order=maybe", "act_order=maybe", "not true or false"),
    ("/quantize gptq damp=2", "damp=2", "between 0 and 1"),
    ("/quantize gptq damp=nan", "damp=nan", "between 0 and 1"),
    ("/quantize gptq damp=x", "damp=x", "between 0 and 1"),
    ("/quantize gptq bits=4 bits=8", "bits=8", "given twice"),
    ("/quantize gptq bits=2,3,4,8 group_size=32,64,128", "gptq", "at most 8 variants"),
    ("/quantize awq bits=8", "bits=8", "AWQ bits must be one of 4"),
    ("/quantize awq group_size=none", "group_size=none", "must be one of 32, 64, 128"),
    ("/quantize awq act_order=true", "act_order=true", "does not apply after awq"),
    ("/quantize nf4 compute_dtype=float32", "compute_dtype=float32", "unknown NF4 compute_dtype"),
    ("/quantize gguf bits=4", "bits=4", "does not apply after gguf"),
    ("/quantize bits=4", "bits=4", "before any method"),
    ("/quantize gptq imatrix", "imatrix", "does not apply after gptq"),
    ("/quantize gptq zero_point=true", "zero_point=true", "does not apply after gptq"),
    ("/quantize zero_point=false gptq", "zero_point=false",
     "applies to awq, which this request does not include"),
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
    if token not in ("/quantize", "gptq"):
        assert token in info.value.problem


@pytest.mark.parametrize("value", [
    "bits=\uff14",  # full-width 4
    "bits=\U0001d7dc",  # mathematical double-struck 4
    "group_size=\u0661\u0662\u0668",  # Arabic-Indic 128
    "group_size=\u0967\u0968\u096e",  # Devanagari 128
    "group_size=1_28", "group_size=+128", "group_size=128x",
    "damp=\uff10.\uff10\uff15", "damp=0_.05", "damp=1_0e-2", "damp=inf", "damp=0x1p-4",
])
def test_numbers_take_ascii_digits_only(value):
    with pytest.raises(ParseError, match="written with the ASCII digits 0-9") as info:
        parse(f"/quantize gptq {value}")
    assert info.value.token == value


@pytest.mark.parametrize(("value", "expected"), [
    ("damp=0.05", 0.05), ("damp=.05", 0.05), ("damp=5e-2", 0.05), ("damp=5E-2", 0.05),
])
def test_ascii_numbers_still_read(value, expected):
    assert request_of(f"/quantize gptq {value}").specs["gptq"].damp == (expected,)


@pytest.mark.parametrize("body", [
    "/quantize gguf=Q8_0 " + "x" * 70_000,
    "a" * 65_530 + "\n/quantize gguf" + " " * 3000,
    "a" * 65_530 + "\n- - /quantize gguf " + " " * 997 + "x" * 10,
])
def test_a_command_line_past_the_body_cut_is_refused_not_dropped(body):
    with pytest.raises(ParseError, match="more than 1000 characters long"):
        parse(body)


def test_option_for_a_method_left_out_of_the_defaults_is_an_error():
    with pytest.raises(ParseError, match="applies to gguf") as info:
        parse("/quantize imatrix", ("gptq",))
    assert info.value.token == "imatrix"


def test_plan_json_round_trip():
    req = request_of("/quantize gguf=Q4_K_M imatrix gptq bits=3 group_size=none damp=0.1 awq nf4")
    assert QuantizeRequest.from_dict(req.to_dict()) == req
    assert QuantizeRequest.from_dict(json.loads(json.dumps(req.to_dict()))) == req
    plan = Plan(model="org/model", issue=5, request=req, revision="0123456789abcdef" * 2 + "0" * 8)
    assert Plan.from_json(plan.to_json()) == plan
    assert "\n" not in plan.to_json()
    data = json.loads(plan.to_json())
    assert set(data) == {"model", "issue", "revision", "request", "placement"}
    placed = Plan(model="org/model", issue=5, request=req, placement={"gguf": "gpu"})
    assert Plan.from_json(placed.to_json()) == placed
    assert [(j.method, j.runner) for j in placed.jobs][:2] == [("gguf", "gpu"), ("gptq", "gpu")]
    with pytest.raises(QuantbotError, match="puts gptq on a 'cpu' runner"):
        Plan(model="org/model", issue=5, request=req, placement={"gptq": "cpu"})
    assert data["request"] == {name: spec.to_dict() for name, spec in req.specs.items()}
    assert data["request"]["gguf"] == {"types": ["Q4_K_M"], "imatrix": True, "mixes": False,
                                       "mix_minutes": 0}
    assert data["request"]["gptq"]["group_size"] == [-1]
    local = Plan(model="org/model", issue=5, request=req)
    assert Plan.from_json(local.to_json()) == local and local.revision is None


def test_plan_load(tmp_path):
    plan = Plan(model="org/model", issue=7, request=request_of("/quantize gptq"))
    (tmp_path / "plan.json").write_text(plan.to_json())
    assert Plan.load(tmp_path / "plan.json") == plan
    with pytest.raises(QuantbotError):
        Plan.load(tmp_path / "missing.json")


def _plan_json(request) -> str:
    return json.dumps({"model": "org/model", "issue": 1, "revision": None, "request": request})


@pytest.mark.parametrize("text", [
    "", "{}", "[]", '{"methods": ["gguf"]}',
    _plan_json({}), _plan_json([]), _plan_json({"x": {}}),
    _plan_json({"gptq": {"bits": [5]}}),
    _plan_json({"gguf": {"types": ["Q9"]}}),
    _plan_json({"gguf": {"types": ["IQ2_XS"], "imatrix": False}}),
    _plan_json({"gguf": {"imatrix": "yes"}}),
    _plan_json({"gptq": {"damp": [1.0]}}),
    _plan_json({"gptq": {"bits": [True]}}),
    _plan_json({"gptq": {"bits": [2, 3, 4, 8], "group_size": [32, 64, 128]}}),
    _plan_json({"gptq": {"desc_act": [True]}}),
    _plan_json({"awq": {"group_size": [-1]}}),
    _plan_json({"awq": []}),
    _plan_json({"nf4": {"compute_dtype": "float32"}}),
    json.dumps({"model": "org/model", "issue": 1, "revision": "main", "request": {"gptq": {}}}),
    json.dumps({"model": "org/model", "issue": "x", "request": {"gptq": {}}}),
])
def test_from_json_revalidates(text):
    with pytest.raises(QuantbotError):
        Plan.from_json(text)


@pytest.mark.parametrize("data", [
    {}, [], {"x": {}}, {"gptq": {"bits": [5]}}, {"gguf": {"types": ["Q9"]}},
    {"gptq": {"damp": [1.0]}}, {"nf4": {"double_quant": "no"}}, {"awq": {"act_order": [False]}},
])
def test_request_from_dict_revalidates(data):
    with pytest.raises(QuantbotError):
        QuantizeRequest.from_dict(data)


def test_a_request_holds_the_spec_of_its_method():
    with pytest.raises(QuantbotError):
        QuantizeRequest({"gptq": AwqSpec()})
    with pytest.raises(QuantbotError):
        QuantizeRequest({})


def test_plan_rejects_bad_models_and_revisions():
    req = request_of("/quantize")
    for bad in ("no-slash", "a/b/c", "a/$(rm -rf)", "\uff41/b", "../x"):
        with pytest.raises(QuantbotError):
            Plan(model=bad, issue=1, request=req)
    for bad in ("main", "abc123", "G" * 40, "a" * 41):
        with pytest.raises(QuantbotError):
            Plan(model="org/model", issue=1, request=req, revision=bad)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_registered_method_through_the_grammar(name):
    """The registry alone drives the grammar, usage, JSON, matrix, estimates and descriptions."""
    m = METHODS[name]
    spec_type = m.spec_type

    bare = request_of(f"/quantize {name}")
    assert bare.methods == (name,) and bare.specs[name] == m.default_spec()
    assert isinstance(bare.specs[name], spec_type)

    line = usage()
    assert f"[{name}" in line and line.startswith("/quantize ")
    for option in spec_type.OPTIONS:
        if option.name != spec_type.PRIMARY:
            assert option.name in line
        value = option.read(option.example(), spec_type.LABEL)
        req = request_of(f"/quantize {name} {option.name}={option.example()}")
        assert req.methods == (name,) and getattr(req.specs[name], option.name) == value
        if option.flag:
            assert getattr(request_of(f"/quantize {name} {option.name}").specs[name], option.name)
    if spec_type.PRIMARY:
        primary = spec_type.option(spec_type.PRIMARY)
        req = request_of(f"/quantize {name}={primary.example()}")
        assert getattr(req.specs[name], primary.name) == primary.read(primary.example(),
                                                                      spec_type.LABEL)

    assert QuantizeRequest.from_dict(bare.to_dict()) == bare
    assert QuantizeRequest.from_dict(json.loads(json.dumps(bare.to_dict()))) == bare
    plan = Plan("org/model", 1, bare)
    assert m.runner in RUNNERS
    (job,) = plan.matrix()["include"]
    assert job["method"] == name and job["runner"] == m.runner
    assert Plan.from_json(plan.to_json()) == plan

    spec = bare.specs[name]
    estimates = m.estimate(8_000_000_000)
    assert [e.variant for e in estimates] == spec.variant_names() != []
    assert all(e.method == name and e.bytes > 0 for e in estimates)
    assert plan.estimates(8_000_000_000) == estimates
    assert spec.describe().strip()


_TOKENS = st.sampled_from([
    "gguf", "gptq", "awq", "nf4", "imatrix", "gguf=Q4_K_M", "gguf=q8_0,Q2_K", "gguf=IQ2_XS",
    "gguf=", "bits=4", "bits=8", "bits=5", "bits=4,8", "group_size=none", "group_size=64",
    "group_size=7", "act_order=true", "act_order=x", "damp=0.1", "damp=-1", "zero_point=false",
    "double_quant=false", "compute_dtype=float16", "compute_dtype=x", "types=Q8_0", "=", "==",
    "GGUF", "NF4", "bits", "x=y=z",
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
        assert exc.problem and exc.fix
        shown = text.replace("\x00", "\ufffd")  # CommonMark (and GitHub) render NUL as U+FFFD
        assert exc.token == "" or exc.token in shown or exc.token.upper() in shown.upper()
    else:
        assert cmd is not None
        if cmd.request is not None:
            assert QuantizeRequest.from_dict(cmd.request.to_dict()) == cmd.request
            plan = Plan(model="org/model", issue=1, request=cmd.request)
            assert Plan.from_json(plan.to_json()) == plan
