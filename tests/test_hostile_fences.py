"""Untrusted text inside code blocks stays there: a card's every link, image and HTML node comes
from quantbot's own templates, whatever the model's chat template renders (CommonMark, parsed
with markdown-it-py as the Hub and GitHub parse it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.cards.data import build_card_data
from bot.cards.render import render_card
from bot.safetext import code_block
from runners.results import EvalSpec, Quality, QuantRun, SourceInfo, Variant

MD = MarkdownIt("commonmark").enable("table")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
EVIL = "evil.example"
#: Markdown of its own after every way of leaving a fence: backtick and tilde fences of several
#: lengths, indented, with info strings, and a quote that a shell snippet would open or close.
ESCAPES = "\n".join([
    "'", "```", "````", "~~~", "~~~~~", "   ```", "``` x", "`````````````",
    f"[link](https://{EVIL}/a) ![image](https://{EVIL}/i.png)",
    f"<img src=https://{EVIL}/h.png> <a href='https://{EVIL}/b'>b</a>",
    f"<div>https://{EVIL}/c</div>", "",
    f"[ref]: https://{EVIL}/r", "[ref]", "",
])
#: A chat template whose rendering is the escapes around the prompt placeholder.
HOSTILE_TEMPLATE = ("{{ " + repr(ESCAPES) + " }}{% for m in messages %}{{ m['content'] }}"
                    "{% endfor %}{{ " + repr(ESCAPES) + " }}")
BENIGN_TEMPLATE = "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}"


def nodes(markdown: str) -> list[tuple[str, str]]:
    """Every link, image and HTML node of a Markdown text: (kind, target or HTML)."""
    found: list[tuple[str, str]] = []

    def walk(tokens: list[Token]) -> None:
        for t in tokens:
            if t.type == "link_open":
                found.append(("link", str(t.attrs.get("href"))))
            elif t.type == "image":
                found.append(("image", str(t.attrs.get("src"))))
            elif t.type in ("html_inline", "html_block"):
                found.append(("html", t.content))
            if t.children:
                walk(t.children)

    walk(MD.parse(markdown))
    return found


def body(card: str) -> str:
    """The card without its YAML front matter (the Hub reads that as metadata, not Markdown)."""
    return card.split("\n---\n", 1)[1]


def _run(method: str, chat_template: str) -> QuantRun:
    transformers = method != "gguf"
    variants = [
        Variant(method=method, name=name, files=[f"m.{name}.gguf"] if not transformers
                else ["config.json", "model.safetensors"], size_bytes=size,
                bits_per_weight=4.5, ram_bytes=size + 1000, peak_rss_bytes=size + 500,
                quality=Quality(ppl=10.5, ppl_err=0.1, kld_mean=kld, kld_err=0.001,
                                kld_p99=kld * 5, same_top_p=0.9),
                check_output=ESCAPES, params={"ram_ctx": 4096},
                branch=None if not transformers else ("main" if i == 0 else name))
        for i, (name, size, kld) in enumerate([("Q4_K_M", 500_000, 0.04), ("Q8_0", 800_000, 0.001)])
    ]
    return QuantRun(
        method=method,
        source=SourceInfo(repo_id="acme/Model-7B", architecture="LlamaForCausalLM",
                          license="apache-2.0", n_params=7_000_000_000, context_length=4096,
                          dtype="bfloat16", chat_template=chat_template),
        baseline=Quality(ppl=10.0, ppl_err=0.1),
        evaluation=EvalSpec(text_name="docs", text_sha256="ab" * 32, n_tokens=1024, ctx=512,
                            chunks=2, evaluator="test"),
        variants=variants, tools={"quantizer": "test", "llama.cpp": "test"},
        created="2026-12-04T00:00:00Z")


@pytest.mark.parametrize("method", ["gguf", "gptq", "awq", "nf4"])
def test_a_hostile_chat_template_adds_no_link_image_or_html_to_the_card(method: str) -> None:
    hostile = render_card(build_card_data(_run(method, HOSTILE_TEMPLATE), f"qb/Model-7B-{method}"))
    benign = render_card(build_card_data(_run(method, BENIGN_TEMPLATE), f"qb/Model-7B-{method}"))
    assert ESCAPES in hostile  # the rendering is shown, verbatim, in code
    assert nodes(body(hostile)) == nodes(body(benign))
    assert not [n for n in nodes(body(hostile)) if EVIL in n[1]]


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("`~ \n\t<>[]()!x'\"\\")), max_size=60),
       info=st.sampled_from(["", "shell", "python"]))
def test_code_block_holds_any_text_as_one_block(text: str, info: str) -> None:
    tokens = [t for t in MD.parse(code_block(text, info)) if t.type != "softbreak"]
    assert [t.type for t in tokens] == ["fence"]
    expected = text if not text or text.endswith("\n") else text + "\n"
    assert tokens[0].content == expected and tokens[0].info == info


def test_a_shell_snippet_with_a_hostile_argument_stays_one_block() -> None:
    card = build_card_data(_run("gguf", HOSTILE_TEMPLATE), "qb/Model-7B-GGUF")
    fences = [t for t in MD.parse(body(render_card(card))) if t.type == "fence"]
    cli = [t for t in fences if "llama-cli" in t.content]
    assert len(cli) == 1 and card.cli_prompt in cli[0].content


def test_every_fenced_block_of_every_template_goes_through_the_one_filter() -> None:
    """A literal fence in a template is as long as its author made it, not as the text inside
    needs; ``{% filter code_block(...) %}`` picks the length (bot/safetext.py)."""
    literal = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
    offenders = [p.name for p in sorted(TEMPLATES.glob("*.j2")) if literal.search(p.read_text())]
    assert offenders == []
