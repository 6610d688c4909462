"""The candidate filters (pure): each one lets a good model through and stops a bad one."""

from __future__ import annotations

import dataclasses

import pytest

from bot.chatops.commands import Kind, parse
from bot.config import Config, FilterConfig, config_from_dict, load_config
from bot.github.issue_text import render_issue
from bot.hub.filters import Context, ListedModel, ModelCandidate, decide, decide_one, own_repo_ids
from bot.marker import marker, model_in_body
from bot.methods import METHODS, method_of_repo, source_name_of
from bot.plan import Plan
from bot.request import parse_words
from runners.errors import QuantbotError
from runners.units import parse_count

GOOD = ListedModel(repo_id="meta/Llama-3-8B", pipeline_tag="text-generation",
                   library_name="transformers", tags=("transformers", "safetensors"),
                   license="llama3", architectures=("LlamaForCausalLM",), params=8_030_261_248,
                   trending_score=42.0)
CTX = Context(namespace="qb", own_repos=frozenset({"qb/Old-7B-GGUF"}), methods=tuple(METHODS))
F = FilterConfig()


def reason(model: ListedModel, f: FilterConfig = F, ctx: Context = CTX) -> str | None:
    verdict = decide_one(model, f, ctx)
    return None if isinstance(verdict, ModelCandidate) else verdict.reason


def test_good_model_is_a_candidate() -> None:
    verdict = decide_one(GOOD, F, CTX)
    assert isinstance(verdict, ModelCandidate)
    assert dataclasses.replace(verdict, fits=()) == ModelCandidate(
        "meta/Llama-3-8B", "LlamaForCausalLM", 8_030_261_248, "llama3", 42.0,
        methods=tuple(METHODS))
    assert [f.method for f in verdict.fits] == list(METHODS) and all(f.ok for f in verdict.fits)


@pytest.mark.parametrize(("change", "expected"), [
    ({"pipeline_tag": "text-classification", "architectures": ("LlamaForSequenceClassification",)},
     "no method takes architecture LlamaForSequenceClassification"),
    ({"private": True}, "private"),
    ({"gated": "manual"}, "gated (manual)"),
    ({"gated": True}, "gated"),
    ({"quant_method": "gptq"}, "released quantized (quantization_config: gptq) in a format no"),
    ({"quant_method": "fp8", "tags": ("base_model:quantized:meta/Llama-3-8B",)},
     "a quantized derivative"),
    ({"tags": ("gguf",)}, "already quantized (tag gguf)"),
    ({"library_name": "gguf"}, "already quantized (library gguf)"),
    ({"tags": ("base_model:quantized:meta/Llama-3-8B",)}, "already quantized (a quantized"),
    ({"repo_id": "someone/Llama-3-8B-AWQ"}, "already quantized (name says so)"),
    ({"repo_id": "someone/Llama-3-8B-GPTQ"}, "already quantized (name says so)"),
    ({"repo_id": "someone/Llama-3-8B-bnb-4bit"}, "already quantized (name says so)"),
    ({"repo_id": "someone/Llama-3-8B-Q4_K_M"}, "already quantized (name says so)"),
    ({"tags": ("nf4",)}, "already quantized (tag nf4)"),
    ({"library_name": "llama.cpp"}, "already quantized (library llama.cpp)"),
    ({"repo_id": "someone/Old-7B"}, "already published as qb/Old-7B-GGUF"),
    ({"repo_id": "qb/Thing"}, "one of our own repos"),
    ({"tags": ("custom_code",)}, "needs remote code"),
    ({"has_auto_map": True}, "needs remote code"),
    ({"architectures": ("FooForCausalLM",)}, "no method takes architecture FooForCausalLM"),
    ({"architectures": ()}, "no architectures in config.json"),
    ({"params": None}, "parameter count unknown"),
    ({"params": 50_000_000}, "50M parameters, below min_params 100M"),
    ({"license": "cc-by-nc-nd-4.0"}, "licence cc-by-nc-nd-4.0 is on the deny list"),
    ({"license": None, "tags": ()}, "licence unknown is on the deny list"),
])
def test_each_filter_stops_a_bad_model(change: dict, expected: str) -> None:
    got = reason(dataclasses.replace(GOOD, **change))
    assert got is not None and expected in got


@pytest.mark.parametrize(("change", "f"), [
    ({"tags": ("custom_code",)}, FilterConfig(allow_remote_code=True)),
    ({"gated": "auto"}, FilterConfig(allow_gated=True)),
    ({"params": 70_000_000_000}, FilterConfig(max_params=80_000_000_000)),
    ({"license": "cc-by-nc-nd-4.0"}, FilterConfig(license_deny=())),
    ({"license": None, "tags": ("license:mit",)}, F),  # licence from the tags
    ({"repo_id": "someone/Old-7B-Instruct"}, F),  # our Old-7B-GGUF is another model
])
def test_each_filter_is_configurable(change: dict, f: FilterConfig) -> None:
    assert reason(dataclasses.replace(GOOD, **change), f) is None


def test_own_repos_come_from_the_registry() -> None:
    ids = own_repo_ids("meta/Llama-3-8B", "qb")
    assert ids == [f"qb/Llama-3-8B{m.repo_suffix}" for m in METHODS.values()]
    assert ids == ["qb/Llama-3-8B-GGUF", "qb/Llama-3-8B-GPTQ", "qb/Llama-3-8B-AWQ",
                   "qb/Llama-3-8B-bnb-4bit", "qb/Llama-3-8B-FP8-dynamic", "qb/Llama-3-8B-MLX"]
    for repo_id in ids:
        name = repo_id.split("/", 1)[1]
        assert source_name_of(name) == "Llama-3-8B"
        assert method_of_repo(name) is not None
    assert method_of_repo("Llama-3-8B") is None and source_name_of("Llama-3-8B") == "Llama-3-8B"


@pytest.mark.parametrize("name", list(METHODS))
def test_a_model_published_by_any_method_is_skipped(name: str) -> None:
    ours = f"qb/Llama-3-8B{METHODS[name].repo_suffix}"
    got = reason(GOOD, F, dataclasses.replace(CTX, own_repos=frozenset({ours})))
    assert got == f"already published as {ours}"


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_s_hub_tags_mark_a_quantized_model(name: str) -> None:
    for tag in METHODS[name].hub_tags:
        got = reason(dataclasses.replace(GOOD, tags=(tag,)))
        assert got is not None and got.startswith("already quantized")


def test_a_model_is_a_candidate_when_one_configured_method_takes_it() -> None:
    mamba = dataclasses.replace(GOOD, architectures=("MambaForCausalLM",))
    verdict = decide_one(mamba, F, CTX)
    assert isinstance(verdict, ModelCandidate)
    assert verdict.methods and set(verdict.methods) < set(METHODS)
    others = tuple(m for m in METHODS if m not in verdict.methods)
    got = reason(mamba, F, dataclasses.replace(CTX, methods=others))
    assert got is not None and "no method takes architecture MambaForCausalLM" in got


@pytest.mark.parametrize(("architectures", "expected"), [
    (("LlamaForCausalLM", "NoSuchForCausalLM"),
     "no method takes architecture LlamaForCausalLM, NoSuchForCausalLM (NoSuchForCausalLM (one of"),
    (("NoSuchForCausalLM", "LlamaForCausalLM"), "no method takes architecture NoSuchForCausalLM,"),
    (("Llama ForCausalLM",), "malformed architecture name 'Llama ForCausalLM' in config.json"),
    (("LlamaForCausalLM", "<img src=x>"), "malformed architecture name '<img src=x>'"),
    (("LlamaForCausalLM\u202e",), "malformed architecture name 'LlamaForCausalLM\\u202e'"),
    (("",), "malformed architecture name ''"),
])
def test_every_declared_architecture_is_screened_by_name(architectures: tuple[str, ...],
                                                         expected: str) -> None:
    got = reason(dataclasses.replace(GOOD, architectures=architectures, model_type="llama"))
    assert got is not None and got.startswith(expected), got


def test_a_malformed_text_config_architecture_is_screened_too() -> None:
    model = dataclasses.replace(GOOD, text_architecture="Llama<b>ForCausalLM")
    assert reason(model) == ("malformed architecture name 'Llama<b>ForCausalLM' in config.json "
                             "(not a Python class name)")


@pytest.mark.parametrize("architecture", ["EvilForCausalLM", "Qwen3ForCausalLM"])
def test_a_gpu_method_does_not_take_a_model_by_model_type_alone(architecture: str) -> None:
    # model_type llama is GPTQModel's and transformers', but the class is unknown or another one.
    model = dataclasses.replace(GOOD, architectures=(architecture,), model_type="llama")
    gpu = dataclasses.replace(CTX, methods=("gptq", "awq", "nf4"))
    got = reason(model, F, gpu)
    assert got is not None and got.startswith(f"no method takes architecture {architecture}")
    assert "GPTQModel" in got


QWEN35_VL = dataclasses.replace(
    GOOD, repo_id="Qwen/Qwen3.5-27B", pipeline_tag="image-text-to-text",
    architectures=("Qwen3_5ForConditionalGeneration",), model_type="qwen3_5",
    params=27_000_000_000)
MINISTRAL3 = dataclasses.replace(
    GOOD, repo_id="mistralai/Ministral-3-8B-Instruct-2512", pipeline_tag="image-text-to-text",
    architectures=("Mistral3ForConditionalGeneration",), model_type="mistral3",
    params=8_900_000_000)


@pytest.mark.parametrize("model", [QWEN35_VL, MINISTRAL3])
def test_a_multimodal_model_is_decided_by_the_registry_not_its_pipeline_tag(
        model: ListedModel) -> None:
    verdict = decide_one(model, F, CTX)
    assert isinstance(verdict, ModelCandidate), verdict
    assert verdict.methods == tuple(METHODS) and verdict.multimodal and verdict.mmproj
    body = render_issue(verdict, Config()).body
    assert ("| GGUF | the text model, plus the vision projector as separate mmproj files "
            "(F16 and Q8_0) |") in body
    for label in ("GPTQ", "AWQ", "NF4", "FP8"):
        assert (f"| {label} | the text model quantized, with the vision tower kept in 16-bit in "
                "the same checkpoint |") in body
    assert "| MLX | the text model only: MLX keeps no vision part, so no image input |" in body


def test_a_multimodal_model_without_a_projector_converter_says_gguf_is_text_only() -> None:
    chameleon = dataclasses.replace(QWEN35_VL, architectures=("ChameleonForConditionalGeneration",),
                                    model_type="chameleon")
    verdict = decide_one(chameleon, F, CTX)
    # mlx-lm has no chameleon module; NF4 and FP8 load through transformers' class
    assert isinstance(verdict, ModelCandidate) and verdict.methods == ("gguf", "nf4", "fp8")
    assert verdict.multimodal and not verdict.mmproj
    body = render_issue(verdict, Config()).body
    assert "| GGUF | the text model only: llama.cpp's converter has no projector" in body
    assert "| NF4 | the text model quantized, with the vision tower kept" in body


def test_a_text_model_s_issue_has_no_parts_section() -> None:
    verdict = decide_one(GOOD, F, CTX)
    assert isinstance(verdict, ModelCandidate) and not verdict.multimodal
    assert "### Parts" not in render_issue(verdict, Config()).body


def test_a_multimodal_model_too_big_for_the_runners_is_skipped_with_the_numbers() -> None:
    huge = dataclasses.replace(QWEN35_VL, params=400_000_000_000)
    got = reason(huge)
    assert got is not None and "no runner can hold it" in got


def test_decide_keeps_order_and_drops_repeats() -> None:
    bad = dataclasses.replace(GOOD, repo_id="x/Tiny", params=1000)
    d = decide([GOOD, bad, GOOD], F, CTX)
    assert [c.repo_id for c in d.candidates] == ["meta/Llama-3-8B"]
    assert [s.repo_id for s in d.skipped] == ["x/Tiny"]


def test_config_file_and_pyproject(tmp_path) -> None:
    assert load_config(cwd=tmp_path) == Config()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.quantbot.filters]\nmax_params = "13B"\nallow_remote_code = true\n')
    cfg = load_config(cwd=tmp_path)
    assert cfg.filters.max_params == 13 * 10**9 and cfg.filters.allow_remote_code
    (tmp_path / "quantbot.toml").write_text('[hub]\nnamespace = "me"\nmax_file_bytes = "2GiB"\n')
    cfg = load_config(cwd=tmp_path)  # quantbot.toml wins
    assert cfg.hub.namespace == "me" and cfg.hub.max_file_bytes == 2 * 2**30
    assert cfg.filters == FilterConfig()


@pytest.mark.parametrize("data", [
    {"hub": {"namspace": "x"}}, {"hubb": {}}, {"filters": {"min_params": "lots"}},
    {"filters": {"min_params": "9B", "max_params": "1B"}}, {"quant": {"methods": ["exl2"]}},
    {"filters": {"allow_remote_code": "yes"}}, {"github": {"repo": "no-slash"}},
])
def test_bad_config_is_a_clear_error(data: dict) -> None:
    with pytest.raises(QuantbotError, match="Fix:"):
        config_from_dict(data)


def test_parse_count() -> None:
    assert parse_count("1.5B", "k") == 1_500_000_000
    assert parse_count("500M", "k") == 500_000_000
    assert parse_count(7, "k") == 7


def test_issue_text_has_marker_sizes_and_trigger() -> None:
    cand = decide_one(GOOD, F, CTX)
    assert isinstance(cand, ModelCandidate)
    text = render_issue(cand, Config())
    assert model_in_body(text.body) == "meta/Llama-3-8B"
    assert marker("meta/Llama-3-8B") in text.body
    assert "https://huggingface.co/meta/Llama-3-8B" in text.body
    assert "8.03B" in text.body and "`LlamaForCausalLM`" in text.body and "`llama3`" in text.body
    assert "| GGUF | Q4_K_M | 4.91 GB |" in text.body
    assert "| GPTQ | gptq-4bit-autog-actorder |" in text.body and "| AWQ |" in text.body
    assert "| NF4 |" in text.body
    for m in METHODS.values():
        assert f"{Config().hub.namespace}/Llama-3-8B{m.repo_suffix}" in text.body
    # every trigger line the issue offers is one the comment grammar takes
    block = text.body.split("```\n")[1].split("```")[0]
    lines = block.strip().splitlines()
    assert lines[0] == "/quantize" and len(lines) == 1 + len(METHODS)
    for line in lines:
        cmd = parse(line)
        assert cmd is not None and cmd.kind is Kind.QUANTIZE, line
    assert parse(lines[0]).request.methods == tuple(METHODS)
    assert text.labels == ("candidate", "gguf", "gptq", "awq", "nf4", "fp8", "mlx")
    assert text.title == "Quantize meta/Llama-3-8B (8.03B, LlamaForCausalLM)"


def test_estimates_follow_the_plan() -> None:
    plan = Plan("meta/Llama-3-8B", 1, parse_words(["gguf=Q8_0,Q4_K_M"]))
    est = plan.estimates(1_000_000_000)
    # the spec orders types like the default set: smallest first
    assert [(e.variant, e.bytes) for e in est] == [("Q4_K_M", 611_250_000),
                                                    ("Q8_0", 1_062_500_000)]


def test_originals_released_quantized_are_originals() -> None:
    """DeepSeek's FP8 and gpt-oss's MXFP4 releases are candidates for the methods whose tool reads
    the format (llama.cpp's converter); a gptq derivative is not."""
    for fmt in ("fp8", "mxfp4"):
        verdict = decide_one(dataclasses.replace(GOOD, quant_method=fmt, tags=("fp8",)), F, CTX)
        assert isinstance(verdict, ModelCandidate), verdict
        assert verdict.methods == ("gguf",) and verdict.quant_method == fmt


def test_size_limits_come_from_the_runners() -> None:
    """80B: GGUF fits the default CPU runner, the GPU methods do not fit one 80 GB card (they
    score the 16-bit baseline on it) and the issue says so with the numbers; a bigger GPU runner
    in the config takes them."""
    big = dataclasses.replace(GOOD, params=80_000_000_000)
    verdict = decide_one(big, F, CTX)
    assert isinstance(verdict, ModelCandidate) and verdict.methods == ("gguf",)
    lacking = {f.method: f.lacks for f in verdict.fits if not f.ok}
    assert set(lacking) == {"gptq", "awq", "nf4", "fp8", "mlx"}
    assert all("GPU memory (the gpu runner has 85.90 GB)" in " ".join(v)
               for m, v in lacking.items() if m != "mlx")
    # MLX loads the 16-bit source whole on the CPU runner (mlx_lm.convert, the shared baseline)
    assert "RAM (the cpu runner has 137.44 GB)" in " ".join(lacking["mlx"])
    cfg = config_from_dict({"runners": {"gpu": {"gpu_memory": "80GiB", "gpus": 4, "ram": "1TiB"},
                                        "cpu": {"ram": "512GiB"}}})
    roomy = Context(namespace="qb", own_repos=frozenset(), methods=tuple(METHODS),
                    runners=cfg.runners)
    assert decide_one(big, F, roomy).methods == tuple(METHODS)
    text = render_issue(verdict, Config())
    assert "Not offered: GPTQ, AWQ, NF4, FP8, MLX" in text.body and "GPU memory" in text.body


@pytest.mark.parametrize("bad", [{"cpu": {"disk": "lots"}}, {"tpu": {"disk": "1TB"}},
                                 {"gpu": {"vram": "80GB"}}, "x"])
def test_bad_runner_settings_name_the_fix(bad: object) -> None:
    with pytest.raises(QuantbotError, match="Fix:"):
        config_from_dict({"runners": bad})


def test_an_explicit_max_params_still_caps() -> None:
    got = reason(dataclasses.replace(GOOD, params=70_000_000_000), FilterConfig(max_params=40 * 10**9))
    assert got == "70B parameters, above max_params 40B"

