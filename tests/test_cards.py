import dataclasses
import json

import yaml

from bot.cards.data import build_card_data
from bot.cards.prompt import PLAIN, prompt_template
from bot.cards.quality import name_notes, quality_band
from bot.cards.render import render_card
from runners.answers import compare
from runners.results import EvalSpec, Quality, QuantRun, SourceInfo, Variant, run_from_dict
from runners.units import human_bytes, human_params

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
NO_SYSTEM = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system') }}"
    "{% endif %}{{ bos_token }}[INST] {{ m['content'] }} [/INST]{% endfor %}"
)


def _variant(name: str, size: int, kld: float, files: list[str] | None = None) -> Variant:
    return Variant(
        method="gguf", name=name, files=files or [f"m.{name}.gguf"], size_bytes=size,
        bits_per_weight=size * 8 / 1e6, ram_bytes=size + 1000, peak_rss_bytes=size + 500,
        quality=Quality(ppl=10 + kld, ppl_err=0.1, kld_mean=kld, kld_err=0.001, kld_p99=kld * 5,
                        same_top_p=1 - kld),
        check_output=" hello", params={"ram_ctx": 4096},
    )


def _run(chat_template: str | None = CHATML, license: str | None = "apache-2.0") -> QuantRun:
    return QuantRun(
        method="gguf",
        source=SourceInfo(repo_id="acme/Model-7B", architecture="LlamaForCausalLM",
                          license=license, n_params=7_000_000_000, context_length=4096,
                          dtype="bfloat16", chat_template=chat_template),
        baseline=Quality(ppl=10.0, ppl_err=0.1),
        evaluation=EvalSpec(text_name="docs", text_sha256="ab" * 32, n_tokens=1024, ctx=512,
                            chunks=2, evaluator="llama.cpp llama-perplexity"),
        variants=[_variant("Q8_0", 800_000, 0.001), _variant("Q2_K", 300_000, 0.5),
                  _variant("Q4_K_M", 500_000, 0.04), _variant("Q3_K_M", 400_000, 0.1)],
        tools={"llama.cpp": "test"}, created="2026-11-25T00:00:00Z",
    )


def test_card_has_every_row_and_valid_hub_metadata():
    text = render_card(build_card_data(_run(), "quantbot/Model-7B-GGUF"))
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["base_model"] == "acme/Model-7B"
    assert meta["base_model_relation"] == "quantized"
    assert meta["license"] == "apache-2.0"
    assert {"gguf", "quantized"} <= set(meta["tags"])
    assert meta["quantized_by"] == "quantbot"
    assert meta["pipeline_tag"] == "text-generation"
    table = [line for line in text.splitlines() if line.startswith("| [m.")]
    assert len(table) == 4
    assert table[0].startswith("| [m.Q2_K.gguf]")  # smallest first
    assert "hf download quantbot/Model-7B-GGUF --include \"m.Q4_K_M.gguf\"" in text
    assert "<|im_start|>user\n{prompt}<|im_end|>" in text


def test_use_case_follows_measurements():
    card = build_card_data(_run(), "quantbot/Model-7B-GGUF")
    by_name = {r.name: r for r in card.rows}
    assert card.recommended.name == "Q4_K_M"  # smallest with KLD ≤ 0.06
    assert by_name["Q8_0"].use_case.startswith("near-lossless")
    assert "closest to the original" in by_name["Q8_0"].use_case
    assert by_name["Q2_K"].use_case.startswith("high quality loss")
    assert "smallest file" in by_name["Q2_K"].use_case
    assert quality_band(0.03) == "low quality loss"
    assert quality_band(None) == "not measured"


def test_recommendation_falls_back_to_lowest_kld():
    run = _run()
    worse = [_variant(v.name, v.size_bytes, v.quality.kld_mean + 1) for v in run.variants]
    card = build_card_data(QuantRun(**{**run.__dict__, "variants": worse}), "o/r")
    assert card.recommended.name == "Q8_0"


def test_split_files_listed_as_parts():
    run = _run()
    parts = [f"m.Q8_0-0000{i}-of-00002.gguf" for i in (1, 2)]
    run.variants[0] = _variant("Q8_0", 800_000, 0.001, files=parts)
    text = render_card(build_card_data(run, "o/r"))
    assert all(p in text for p in parts)
    assert "download all parts" in text


def test_missing_license_and_template():
    text = render_card(build_card_data(_run(chat_template=None, license=None), "o/r"))
    assert "no chat template" in text
    assert "states no licence" in text
    assert yaml.safe_load(text.split("---\n")[1])["license"] == "other"


def test_prompt_template_rendering():
    assert prompt_template(None).text == PLAIN and prompt_template(None).problem is None
    broken = prompt_template("{% broken")
    assert broken.text == PLAIN and broken.problem.startswith("template not rendered: ")
    assert prompt_template(NO_SYSTEM, bos_token="<s>").text == "<s>[INST] {prompt} [/INST]"
    assert "{system_message}" in prompt_template(CHATML).text


def test_run_round_trips_through_json(tmp_path):
    run = _run()
    run.save(tmp_path)
    import json

    assert run_from_dict(json.loads((tmp_path / "quantbot.json").read_text())) == run


def test_human_bytes():
    assert human_bytes(4_920_000_000) == "4.92 GB"
    assert human_bytes(512) == "512 B"
    assert human_params(8_030_261_248) == "8.03B" and human_params(494_032_768) == "494M"


def test_untrusted_chat_template_cannot_reach_a_shell_in_the_card():
    evil = "{{ '$(touch /tmp/pwned) `id` \"' + messages[0]['content'] }}"
    card = build_card_data(_run(chat_template=evil), "o/r")
    line = next(x for x in render_card(card).splitlines() if x.startswith("llama-cli"))
    import shlex

    argv = shlex.split(line)
    assert argv[argv.index("-p") + 1] == card.prompt_template  # one literal argument
    assert "$(touch /tmp/pwned)" in card.prompt_template


def test_a_hostile_chat_template_never_costs_the_card(tmp_path):
    """The measurements are saved first; a template that would hang or explode is reported on
    the card in one line, and `quantbot card` renders it again from quantbot.json alone."""
    from click.testing import CliRunner

    from bot.cli import main

    bomb = "{% for i in range(10**9) %}{{ i }}{% endfor %}{{ 'x' * 10**9 }}"
    folder = tmp_path / "qb" / "Model-7B-GGUF"
    folder.mkdir(parents=True)
    _run(chat_template=bomb).save(folder)
    result = CliRunner().invoke(main, ["card", str(folder)])
    assert result.exit_code == 0, result.output
    text = (folder / "README.md").read_text()
    assert "could not be shown: `template not rendered:" in text
    assert "{prompt}" in text


def test_recommendation_sentence_is_true_when_no_file_meets_the_bar():
    """The real model's AWQ card once said "at most low" above a row saying "moderate"."""
    run = _run()
    worse = [_variant(v.name, v.size_bytes, v.quality.kld_mean + 0.1) for v in run.variants]
    text = render_card(build_card_data(QuantRun(**{**run.__dict__, "variants": worse}), "o/r"))
    line = next(t for t in text.splitlines() if t.startswith("**Recommended:**"))
    assert "at most" not in line
    assert 'no file here measured "low" quality loss or better' in line
    assert "moderate quality loss" in line


def test_a_file_standing_for_several_names_says_so_once():
    run = _run()
    q2 = dataclasses.replace(run.variants[1], params={
        "ram_ctx": 4096, "stands_for": ["Q2_K", "Q3_K_S"],
        "content_note": "none of its quantized weights are Q2_K-family (Q4_0 100 %)"})
    run = QuantRun(**{**run.__dict__, "variants": [run.variants[0], q2, *run.variants[2:]]})
    text = render_card(build_card_data(run, "o/r"))
    rows = [line for line in text.splitlines() if line.startswith("| [m.")]
    assert sum("Q2_K = Q3_K_S" in row for row in rows) == 1
    assert "`Q2_K` also stands for Q3_K_S" in text
    assert "`Q2_K`: none of its quantized weights are Q2_K-family" in text


def test_a_larger_file_measured_worse_is_explained_only_beyond_the_intervals():
    run = _run()
    noisy = dataclasses.replace(run.variants[0], quality=Quality(
        ppl=10, ppl_err=0.1, kld_mean=0.05, kld_err=0.01, kld_p99=0.2, same_top_p=0.9))
    clear = dataclasses.replace(run.variants[0], quality=Quality(
        ppl=10, ppl_err=0.1, kld_mean=0.09, kld_err=0.001, kld_p99=0.2, same_top_p=0.9))
    for q8, expect in ((noisy, False), (clear, True)):
        notes = name_notes([q8, *run.variants[1:]])
        assert any("`Q8_0` is larger than `Q4_K_M` but measured further" in n
                   for n in notes) is expect


def test_answer_agreement_and_reference_caveat_on_the_card():
    run = _run()
    answers = compare(["a", "b"], [[1, 2], [3]], [[1, 5], [3]], ["x", "y"], 8, "the BF16 GGUF")
    variants = [dataclasses.replace(v, answers=answers) for v in run.variants]
    source = dataclasses.replace(run.source, reference="a model dequantized from Q4_1")
    run = QuantRun(**{**run.__dict__, "variants": variants, "source": source})
    text = render_card(build_card_data(run, "o/r"))
    assert "Answers like the original" in text
    assert "75 % (26-100), 1/2 identical" in text
    assert "**Reference:** a model dequantized from Q4_1." in text
    assert "and so did the BF16 GGUF" in text
    assert run_from_dict(json.loads(json.dumps(dataclasses.asdict(run)))).variants[0].answers == answers


def test_a_slightly_larger_file_clearly_closer_is_recommended_instead():
    """On small real models the stock mixes are erratic; the card follows the front."""
    run = _run()
    q4ks = _variant("Q4_K_S", 505_000, 0.012)  # 1 % larger than Q4_K_M (KLD 0.04 ± 0.002)
    noisy = dataclasses.replace(q4ks, quality=dataclasses.replace(q4ks.quality, kld_err=0.02))
    for extra, picked in ((q4ks, "Q4_K_S"), (noisy, "Q4_K_M")):
        card = build_card_data(QuantRun(**{**run.__dict__, "variants": [*run.variants, extra]}),
                               "o/r")
        assert card.recommended.name == picked
    assert "not `Q4_K_M`" in build_card_data(
        QuantRun(**{**run.__dict__, "variants": [*run.variants, q4ks]}), "o/r").recommended_reason


def test_ppl_row_shows_its_paired_change_against_the_original():
    """Rows measured on different windows compare by the paired change, not by raw PPL."""
    run = _run()
    q8 = run.variants[0]
    paired = dataclasses.replace(q8.quality, ppl=17.646, ppl_err=1.54, ppl_ratio=1.048,
                                 ppl_ratio_err=0.0056, ppl_base=16.84, ppl_base_err=1.5)
    run = dataclasses.replace(run, variants=[dataclasses.replace(q8, quality=paired),
                                             *run.variants[1:]])
    text = render_card(build_card_data(run, "quantbot/Model-7B-GGUF"))
    row = next(line for line in text.splitlines() if line.startswith("| [m.Q8_0"))
    assert "17.646 ± 3.018 (+4.8 ± 1.1 %)" in row
    assert "paired token by token" in text
    other = next(line for line in text.splitlines() if line.startswith("| [m.Q2_K"))
    assert "10.500 ± 0.196 |" in other  # no ratio measured: PPL alone


def test_card_shows_the_recommended_file_per_domain():
    """A run on the evaluation mix: the recommended file's KLD per kind of text, each with its
    95 % interval, its tokens and its source; a one-domain run shows no such table."""
    from dataclasses import replace

    from runners.results import DomainQuality

    run = _run()
    domains = [DomainQuality("prose", 2, 510, 9.0, 0.5, 0.031, 0.002, 0.91, 0.01),
               DomainQuality("code", 2, 510, 3.0, 0.1, 0.012, 0.001, 0.95, 0.008),
               DomainQuality("chat", 2, 510, 5.0, 0.2, 0.045, 0.004, 0.89, 0.012),
               DomainQuality("languages", 2, 510, 7.0, 0.3, 0.090, 0.006, 0.80, 0.015)]
    variants = [replace(v, quality=replace(v.quality, domains=domains)) if v.name == "Q4_K_M"
                else v for v in run.variants]
    text = render_card(build_card_data(replace(run, variants=variants), "quantbot/M-GGUF"))
    assert "**Per domain**: `Q4_K_M`" in text
    rows = [line for line in text.splitlines() if line.startswith("| Python code |")]
    assert rows == ["| Python code | 510 | 0.0120 ± 0.0020 | 95.0 ± 1.6 | CPython 3.11 standard "
                    "library source: functions of modules the calibration mix does not use, "
                    "docstrings removed (PSF-2.0) |"]
    assert "| 20 languages | 510 | 0.0900 ± 0.0118 |" in text and "BSD-3-Clause" in text
    assert "source and licence.\n- **Evaluator**" in text
    assert "Per domain" not in render_card(build_card_data(run, "quantbot/M-GGUF"))


def test_the_pareto_front_drops_only_files_clearly_beaten_by_one_no_larger():
    from runners.ranking import pareto_front

    small, mid, big = (_variant("Q3_K_M", 400_000, 0.10), _variant("Q4_K_M", 500_000, 0.04),
                       _variant("Q5_K_M", 520_000, 0.06))
    close = _variant("Q5_K_S", 510_000, 0.0405)  # within Q4_K_M's interval: not ranked
    assert [v.name for v in pareto_front([big, small, mid, close])] == ["Q3_K_M", "Q4_K_M",
                                                                        "Q5_K_S"]


def test_a_card_tells_the_mix_search_and_marks_the_front(tmp_path):
    from bot.cards.render import write_card

    run = _run()
    mix = dataclasses.replace(_variant("QB-Q4_K_M", 480_000, 0.02), params={
        "ram_ctx": 4096, "mix": {"command": "llama-quantize --tensor-type "
                                            "'^token_embd\\.weight$=q8_0' m.F16.gguf "
                                            "m.QB-Q4_K_M.gguf Q4_K_M"}})
    run = dataclasses.replace(run, variants=[*run.variants, mix], mix_search={
        "tuning_windows": 8, "tuning_tokens": 2040, "seconds": 90.0, "stopped_by_budget": False,
        "sizes": [{"base": "Q4_K_M", "base_tuning_kld": 0.04, "candidates": [], "sweep": [
            {"group": "token_embd", "type": "Q8_0"}, {"group": "attn_v.0-9", "type": "Q8_0"}]}],
        "mixes": [{"name": "QB-Q4_K_M", "stock": "Q4_K_M", "published": True,
                   "why": "50 % lower held-out KLD than Q4_K_M"},
                  {"name": "QB-Q3_K_M", "stock": "Q3_K_M", "published": False,
                   "why": "held-out KLD 0.1000 ± 0.0100 does not lie below Q3_K_M's"}]})
    text = render_card(build_card_data(run, "quantbot/Model-7B-GGUF"))
    assert "**quantbot mixes**" in text and "2 groups of tensors" in text
    assert "![KL divergence against size: stock types, quantbot mixes" in text
    write_card(run, "quantbot/Model-7B-GGUF", tmp_path)  # one format: the plot is drawn anyway
    assert (tmp_path / "quality.png").read_bytes().startswith(b"\x89PNG")
    assert "- `QB-Q4_K_M`, at the size of Q4_K_M: published; 50 % lower held-out KLD" in text
    assert "- `QB-Q3_K_M`, at the size of Q3_K_M: not published;" in text
    assert "llama-quantize --tensor-type '^token_embd\\.weight$=q8_0'" in text
    rows = [line for line in text.splitlines() if line.startswith("| [m.")]
    front = {line.split("]")[0].removeprefix("| [m.").removesuffix(".gguf"): "| yes |" in line
             for line in rows}
    # QB-Q4_K_M (480 kB, 0.02) beats Q4_K_M (500 kB, 0.04): off the front; Q2_K is smallest
    assert front == {"Q2_K": True, "Q3_K_M": True, "QB-Q4_K_M": True, "Q4_K_M": False,
                     "Q8_0": True}
    assert "The sweep stopped" not in text
    # Cut by the default time on a GPU (runners.gguf.mixes.sweep_budget), the card says so.
    cut = dataclasses.replace(run, mix_search={**run.mix_search, "stopped_by_budget": True,
                                               "planned_probes": 5, "budget_from": "stock set"})
    text = render_card(build_card_data(cut, "quantbot/Model-7B-GGUF"))
    assert ("three quarters of the time the stock files took" in text
            and "2 of the 5 files it planned were measured" in text)
    asked = dataclasses.replace(cut, mix_search={**cut.mix_search, "budget_from": "mix_minutes"})
    text = render_card(build_card_data(asked, "quantbot/Model-7B-GGUF"))
    assert "stopped at the time asked for (`mix_minutes`), after 2 of the 5 files" in text
