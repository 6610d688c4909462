"""Untrusted text rendered through CommonMark (markdown-it-py) shows as itself, and nothing more."""

from __future__ import annotations

import html
import math
import re
import unicodedata
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.safetext import (
    WORD_JOINER,
    actions_safe,
    code_block,
    code_span,
    number,
    plain,
    stop_commands,
)

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u200e\u200f\ufeff\u061c"
#: What GitHub turns into pings, references and links in rendered text (on text nodes, after Markdown).
GITHUB_AUTOLINKS = re.compile(r"@[A-Za-z0-9]|#\d|(?i:\bGH-\d)|://|(?i:\bwww\.)")
HOSTILE = [
    "@octocat", "@org/team", "ping @a and @b", "mail me: a@example.com", "#123", "see #1", "GH-42",
    "gh-42", "owner/repo#7", "https://evil.example/x", "HTTP://X.Y", "ftp://x.y", "www.evil.com",
    "WWW.EVIL.COM", "[click](https://evil)", "![img](https://evil/x.png)", "<img src=x onerror=1>",
    "<script>alert(1)</script>", "<!-- hidden -->", "&lt;already&gt; &amp;", "**bold** __bold__",
    "*em* _em_", "~~strike~~", "# heading", "## h2", "> quote", "- item", "+ item", "1. item",
    "2) item", "---", "===", "a | b | c", "`code`", "```fence```", "$x^2$", "$$math$$",
    "\\*escaped\\*", "line1\nline2", "line1\r\nline2\rline3", "a\u2028b\u2029c\u0085d",
    "tab\there", "\u202eevil\u202c", "zero\u200bwidth", "\x00nul\x07bel\x1b[31mansi",
    "[x]: https://evil", "<https://evil>", "[^1]", "{{ template }}", "\ud800lone surrogate",
    "hidden\U000e0041\U000e0042tags", "soft\u00adhyphen", "\u2066isolate\u2069", "\ufeffbom",
    "Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B", "apache-2.0", "LlamaForCausalLM",
]


def inline_children(markdown: str) -> list[Token]:
    tokens = MD.parse(markdown)
    inlines = [t for t in tokens if t.type == "inline"]
    assert len(inlines) == 1, [t.type for t in tokens]
    return inlines[0].children or []


def visible(tokens: list[Token]) -> str:
    return "".join(t.content if t.type != "softbreak" else "\n" for t in tokens)


def folded(text: str) -> str:
    """What plain/code_span should show for ``text``: one line, controls and format chars gone."""
    text = re.sub("[\ud800-\udfff]", "\ufffd", text)
    text = re.sub("[\n\r\u0085\u2028\u2029\x0b\x0c\t]+", " ", text)
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


class TestPlainRendersAsItself:
    @pytest.mark.parametrize("text", HOSTILE)
    def test_only_text_tokens(self, text: str) -> None:
        children = inline_children(f"Model {plain(text)} here")
        assert {t.type for t in children} <= {"text"}, children
        shown = visible(children).replace(WORD_JOINER, "")
        assert shown == f"Model {folded(text).strip(' ')} here"

    @pytest.mark.parametrize("text", HOSTILE)
    def test_alone_on_a_line_is_one_paragraph(self, text: str) -> None:
        tokens = MD.parse(plain(text))
        if not folded(text).strip(" "):
            assert tokens == []
            return
        assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
        assert {t.type for t in tokens[1].children or []} <= {"text"}

    @pytest.mark.parametrize("text", HOSTILE)
    def test_in_a_table_cell_stays_in_its_cell(self, text: str) -> None:
        tokens = MD.parse(f"| a | b |\n|---|---|\n| {plain(text)} | end |\n")
        cells = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "td_open"]
        assert len(cells) == 2 and cells[-1] == "end"


class TestPlainNoPingsOrReferences:
    @pytest.mark.parametrize("text", HOSTILE)
    def test_nothing_github_would_link(self, text: str) -> None:
        shown = html.unescape(visible(inline_children(plain(text) or "x")))
        assert not GITHUB_AUTOLINKS.search(shown), shown

    @pytest.mark.parametrize(("text", "looks_like"), [
        ("@octocat", "@\u2060octocat"),
        ("#12", "\\#\u206012"),
        ("GH-5", "GH\u2060-5"),
        ("https://x", "https:\u2060//x"),
        ("www.x.org", "www\u2060.x.org"),
    ])
    def test_word_joiner_placement(self, text: str, looks_like: str) -> None:
        assert plain(text) == looks_like


class TestPlainBounds:
    @pytest.mark.parametrize("max_len", [1, 2, 10, 200])
    def test_length_is_bounded(self, max_len: int) -> None:
        shown = visible(inline_children(plain("a" * 1000, max_len=max_len)))
        assert len(shown) == max_len and shown.endswith("\u2026")

    def test_short_text_is_not_cut(self) -> None:
        assert plain("abc", max_len=3) == "abc"

    @pytest.mark.parametrize("value", [None, 42, 3.5, ["a", "b"], {"k": "v"}])
    def test_non_strings(self, value: object) -> None:
        assert isinstance(plain(value), str)

    def test_lone_surrogates_can_be_written_as_utf8(self) -> None:
        for helper in (plain, code_span, code_block, actions_safe):
            helper("x\ud800y\udfff").encode("utf-8")

    def test_bad_max_len(self) -> None:
        with pytest.raises(ValueError, match="max_len"):
            plain("x", max_len=0)


class TestCodeSpan:
    @pytest.mark.parametrize("text", [
        "plain", "`", "``", "a`b", "a``b", "```", "`start", "end`", "`both`", " spaced ", " lead",
        "trail ", "   ", "", "a ` b `` c ``` d", "line1\nline2", "`\n`", "<b>html</b>", "| pipe |",
        "\\backslash\\", "@user #1", "\u202eevil", "``" * 50, "x" * 500, "$x$", "*a*",
    ])
    def test_one_code_span_with_the_text(self, text: str) -> None:
        span = code_span(text)
        children = inline_children(f"see {span} here")
        kinds = [t.type for t in children]
        assert kinds == ["text", "code_inline", "text"], (span, kinds)
        expected = folded(text)
        if len(expected) > 200:
            expected = expected[:199] + "\u2026"
        assert children[1].content == (expected or " ")  # an empty span cannot be written: one space

    @pytest.mark.parametrize("text", ["a|b", "|", "`|`", "x || y"])
    def test_table_cells(self, text: str) -> None:
        tokens = MD.parse(f"| a | b |\n|---|---|\n| {code_span(text, table=True)} | end |\n")
        assert len([t for t in tokens if t.type == "td_open"]) == 2
        codes = [c for t in tokens if t.type == "inline" for c in t.children or [] if c.type == "code_inline"]
        assert [c.content for c in codes] == [text.strip(" ") if text.strip(" ") else text]

    def test_bounded(self) -> None:
        assert len(code_span("y" * 10_000, max_len=50)) <= 50 + 4


class TestCodeBlock:
    @pytest.mark.parametrize("text", [
        "print(1)", "```\nbreak out\n```", "````", "~~~\nx\n~~~", "``` ```` `````", "no newline",
        "ends\n", "\n\nleading blank", "a\r\nb\rc", "<script>x</script>", "    indented", "\u202eevil",
        "`" * 20, "", "{% for m in messages %}{{ m.content }}{% endfor %}",
    ])
    def test_one_block_with_the_text(self, text: str) -> None:
        block = code_block(text, info="jinja")
        tokens = MD.parse(block + "after\n")
        assert [t.type for t in tokens][:1] == ["fence"] and tokens[0].info == "jinja"
        body = re.sub(f"[{BIDI}]", "", text.replace("\r\n", "\n").replace("\r", "\n"))
        assert tokens[0].content == (body + "\n" if body and not body.endswith("\n") else body)
        assert tokens[-2].content == "after"

    @pytest.mark.parametrize("info", ["py`thon", "a b\nc", "```", "<x>", "x" * 100, "\u202e"])
    def test_hostile_info_string(self, info: str) -> None:
        tokens = MD.parse(code_block("body", info=info) + "after\n")
        assert tokens[0].type == "fence" and tokens[0].content == "body\n"
        assert re.fullmatch(r"[A-Za-z0-9_+.#-]*", tokens[0].info)

    def test_bounded(self) -> None:
        block = code_block("z" * 100_000, max_len=1000)
        assert len(block) < 1100 and "\u2026" in block


class TestActionsSafe:
    @pytest.mark.parametrize("line", [
        "::add-mask::secret", "::stop-commands::abc", "::set-output name=x::y", "  ::error::x",
        "\t::warning::x", "\u2028::debug::x", "\u00a0::group::x", "ok\n::add-mask::x", "ok\r::add-mask::x",
        "ok\r\n::endgroup::", "##[set-env name=x]y", "text ##[add-path]/tmp", "::", ":::x",
    ])
    def test_no_line_starts_a_command(self, line: str) -> None:
        for part in re.split(r"\r\n|\r|\n", actions_safe(line)):
            assert not part.lstrip().startswith("::") and "##[" not in part

    @pytest.mark.parametrize("line", ["plain output", "a :: b", "x::y::z", "", "100% done"])
    def test_harmless_lines_unchanged(self, line: str) -> None:
        assert actions_safe(line) == line


class TestStopCommands:
    def test_markers_wrap_the_block(self) -> None:
        lines: list[str] = []
        with stop_commands(lines.append) as token:
            lines.append("::add-mask::x")
        assert lines == [f"::stop-commands::{token}", "::add-mask::x", f"::{token}::"]
        assert re.fullmatch(r"[0-9a-f]{32}", token)

    def test_markers_close_on_error(self) -> None:
        lines: list[str] = []
        with pytest.raises(RuntimeError), stop_commands(lines.append):
            raise RuntimeError("boom")
        assert lines[-1].startswith("::") and lines[-1].endswith("::") and len(lines) == 2

    def test_tokens_differ(self) -> None:
        tokens = set()
        for _ in range(5):
            with stop_commands(lambda _line: None) as token:
                tokens.add(token)
        assert len(tokens) == 5

    @pytest.mark.parametrize("token", ["", "short", "has space in it ok", "a" * 200, "x::y" * 5, "\n" * 20])
    def test_weak_tokens_refused(self, token: str) -> None:
        lines: list[str] = []
        with pytest.raises(ValueError, match="token"), stop_commands(lines.append, lambda: token):
            pass
        assert lines == []


class TestNumber:
    @pytest.mark.parametrize(("value", "expected"), [
        (0, 0), (7, 7), (-3, -3), (2.5, 2.5), (1e300, 1e300), (10**30, 10**30),
        (Fraction(1, 2), 0.5), (Decimal("1.5"), 1.5),
    ])
    def test_numbers(self, value: object, expected: float) -> None:
        result = number(value, what="parameter count")
        assert result == expected and type(result) in (int, float)

    @pytest.mark.parametrize("value", [
        True, False, "7", "7B", "", None, math.nan, math.inf, -math.inf, float("nan"),
        Decimal("NaN"), Decimal("Infinity"), [], {}, 1j, object(), b"1",
    ])
    def test_not_numbers(self, value: object) -> None:
        with pytest.raises(ValueError, match="parameter count"):
            number(value, what="parameter count")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_plain_round_trips_any_text(text: str) -> None:
    children = inline_children(f"a {plain(text)} z")
    assert {t.type for t in children} <= {"text"}
    assert visible(children).replace(WORD_JOINER, "") == f"a {folded(text).strip(' ')} z"
    assert not GITHUB_AUTOLINKS.search(visible(children))


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("` a\n|")), max_size=30))
def test_code_span_round_trips_backticks(text: str) -> None:
    children = inline_children(f"a {code_span(text)} z")
    assert [t.type for t in children] == ["text", "code_inline", "text"]
    assert children[1].content == (folded(text) or " ")
