"""Command lines in hostile comments: only what GitHub shows as ordinary text is a command."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.chatops.markdown import MAX_BODY, MAX_LINE, command_lines, first_command_line

Q = "/quantize gguf=Q4_K_M"


class TestPlainCommands:
    @pytest.mark.parametrize(("body", "expected"), [
        (Q, [Q]),
        (f"{Q}\n", [Q]),
        (f"  {Q}  ", [Q]),
        (f"   {Q}", [Q]),
        (f"please\n{Q}", [Q]),
        (f"please:\n\n{Q}\n\nthanks", [Q]),
        (f"{Q}\n/status", [Q, "/status"]),
        (f"text\n    {Q}", [Q]),  # a paragraph continuation line, not indented code
        (f"a  \n{Q}", [Q]),  # after a hard line break
        (f"a\\\n{Q}", [Q]),
        (f"- {Q}", [Q]),
        (f"* {Q}", [Q]),
        (f"+ {Q}", [Q]),
        (f"1. {Q}", [Q]),
        (f"7) {Q}", [Q]),
        (f"-\t{Q}", [Q]),
        (f"- item\n  - {Q}", [Q]),
        (f"- item\n\n  {Q}", [Q]),
        (f"*{Q}*", []),  # starts with *, not /
        (f"{Q} `code` **bold**", [f"{Q} `code` **bold**"]),
        ("/cancel\n/status\n/quantize", ["/cancel", "/status", "/quantize"]),
    ])
    def test_paragraph_and_list_text(self, body: str, expected: list[str]) -> None:
        assert command_lines(body) == expected

    @pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
    def test_commonmark_line_endings(self, ending: str) -> None:
        assert command_lines(f"hello{ending}{Q}{ending}bye") == [Q]
        assert command_lines(f"```{ending}{Q}{ending}```{ending}/status") == ["/status"]

    def test_empty(self) -> None:
        assert command_lines("") == [] and first_command_line("") is None


class TestFencedCode:
    @pytest.mark.parametrize("body", [
        f"```\n{Q}\n```",
        f"~~~\n{Q}\n~~~",
        f"````\n```\n{Q}\n```\n````",
        f"~~~~~\n~~~\n{Q}\n~~~\n~~~~~",
        f"```bash\n{Q}\n```",
        f"``` shell title=x\n{Q}\n```",
        f"~~~ info `with` backticks\n{Q}\n~~~",
        f"```\n{Q}",  # unclosed: runs to the end
        f"~~~\n{Q}\n```",  # a backtick line does not close a tilde fence
        f"````\n{Q}\n```",  # a shorter fence does not close
        f"   ```\n{Q}\n   ```",
        f"- item\n\n  ```\n  {Q}\n  ```",
        f"text\n```\n{Q}\n```",  # a fence interrupts a paragraph
        f"```\r\n{Q}\r\n```",
        f"```\r{Q}\r```",
    ])
    def test_quoted_in_fences_is_not_a_command(self, body: str) -> None:
        assert command_lines(body) == []

    def test_after_a_closed_fence_is_a_command(self) -> None:
        assert command_lines(f"```\n/status\n```\n{Q}") == [Q]

    def test_backticks_in_info_string_make_no_fence(self) -> None:
        # ``` a`b is not a fence (CommonMark): it is inline code, and the next line is text.
        assert command_lines(f"``` a`b\n{Q}") == [Q]


class TestIndentedCode:
    @pytest.mark.parametrize("body", [
        f"    {Q}",
        f"\t{Q}",
        f"     {Q}",
        f"text\n\n    {Q}",
        f"  \t{Q}",
    ])
    def test_four_columns_is_code(self, body: str) -> None:
        assert command_lines(body) == []


class TestBlockQuotes:
    @pytest.mark.parametrize("depth", [1, 2, 3, 5, 19, 25, 60])
    def test_any_depth(self, depth: int) -> None:
        assert command_lines("> " * depth + Q) == []

    @pytest.mark.parametrize("body", [
        f">{Q}",
        f"   > {Q}",
        f"> someone wrote\n{Q}",  # lazy continuation belongs to the quote
        f"> a\n> b\n{Q}",
        f"- > {Q}",
        f"> - {Q}",
        f"> ```\n> {Q}",
    ])
    def test_quoted(self, body: str) -> None:
        assert command_lines(body) == []

    def test_after_a_quote_ends(self) -> None:
        assert command_lines(f"> /status\n\n{Q}") == [Q]


class TestHtml:
    @pytest.mark.parametrize("body", [
        f"<!--\n{Q}\n-->",
        f"<!-- {Q} -->",
        f"<details>\n{Q}\n</details>",
        f"<div>\n{Q}\n</div>",
        f"<pre>\n{Q}\n</pre>",
        f"<b>\n{Q}",
        f"<script>\n{Q}\n</script>",
        f"text <!--\n{Q} -->",  # inline comment spanning lines
        f'text <a title="x\n{Q}">',  # inside an attribute of inline HTML
    ])
    def test_html_hides_or_wraps(self, body: str) -> None:
        assert command_lines(body) == []


class TestInline:
    @pytest.mark.parametrize("body", [
        f"text `a\n{Q}` b",
        f"text ``a\n{Q}`` b",
        f"[link\n{Q}](https://example.com)",
        "[a](\n/quantize)",
        '[a](\n/quantize "title")',
        f'[a](u "title\n{Q}")',
        f"![alt\n{Q}](img.png)",
        f"[ref\n{Q}]\n\n[ref {Q}]: https://example.com",
    ])
    def test_not_plain_text(self, body: str) -> None:
        assert command_lines(body) == []

    @pytest.mark.parametrize("body", [
        f"*emphasis\n{Q}*",
        f"`code` then\n{Q}",
        f"[a](\n{Q})",  # a space in the destination: no link, all text
        f"[a](u)\n{Q}",
    ])
    def test_plain_text_around_inline_markup(self, body: str) -> None:
        assert len(command_lines(body)) == 1


class TestUnicodeSeparators:
    @pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\u00a0", "\u3000",
                                     "\u2003", "\u200b", "\ufeff"])
    def test_not_a_line_break(self, sep: str) -> None:
        assert command_lines(f"text{sep}{Q}") == []

    @pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u2003", "\u00a0", "\x0c"])
    def test_leading_unicode_space_is_not_stripped(self, sep: str) -> None:
        assert command_lines(f"{sep}{Q}") == []
        assert command_lines(f"hello\n{sep}{Q}") == []

    def test_separator_inside_the_command_line(self) -> None:
        assert command_lines(f"{Q}\u2028/status") == [f"{Q}\u2028/status"]

    def test_nul_bytes(self) -> None:
        assert command_lines(f"\0\n{Q}\0") == [f"{Q}\ufffd"]


class TestEscapes:
    @pytest.mark.parametrize("body", ["\\/quantize", "&#47;quantize", "&sol;quantize", "&#x2F;quantize",
                                      "\uff0fquantize", "\u2215quantize"])
    def test_lookalike_slashes_are_not_commands(self, body: str) -> None:
        assert command_lines(body) == []


class TestOtherBlocks:
    @pytest.mark.parametrize("body", [
        f"# {Q}",
        f"{Q}\n===",
        f"{Q}\n---",
        f"{Q} | x\n--- | ---",
        f"| a |\n|---|\n| {Q} |",
        f"[x]: {Q}",
        f"[^1]: {Q}",
    ])
    def test_not_paragraph_text(self, body: str) -> None:
        assert command_lines(body) == []

    def test_after_a_thematic_break(self) -> None:
        assert command_lines(f"text\n\n---\n{Q}") == [Q]


class TestPathological:
    @pytest.mark.parametrize("body", [
        "[" * 50_000 + "\n" + Q,
        "`" * 50_000 + "\n" + Q,
        "*_" * 25_000 + "\n" + Q,
        "<" * 50_000 + "\n" + Q,
        "- " * 10_000 + Q,
        "> " * 10_000 + Q,
        "![" * 15_000 + "\n" + Q,
        ("a\n" * 30_000) + Q,
        ("/x\n" * 30_000),
        "x" * 60_000 + "\n" + Q,
        "x" * 70_000 + "\n" + Q,  # beyond MAX_BODY: the command after the cut is not read
    ])
    def test_fast_and_no_crash(self, body: str) -> None:
        start = time.perf_counter()
        lines = command_lines(body)
        assert time.perf_counter() - start < 10  # linear, but slow per character; no blow-up
        assert all(line.startswith("/") for line in lines)

    def test_oversized_body_is_cut_at_a_line_end(self) -> None:
        filler = "a" * (MAX_BODY - 50 - len(Q) - 2) + "\n"
        straddling = "/quantize gguf=Q8_0 " + "x" * 100  # this line straddles MAX_BODY
        lines = command_lines(f"{Q}\n{filler}{straddling}\n{Q}")
        assert lines == [Q, straddling]  # the straddling line is read whole, what follows not

    def test_a_line_cut_in_the_middle_is_marked_and_too_long(self) -> None:
        filler = "a" * (MAX_BODY - 50) + "\n"
        lines = command_lines(f"{filler}/quantize gguf " + " " * 5000 + "x")
        assert len(lines) == 1 and lines[0].endswith("\u2026") and len(lines[0]) > MAX_LINE


class TestFirstCommandLine:
    @pytest.mark.parametrize(("body", "expected"), [
        (f"```\n/cancel\n```\n{Q}\n/status", Q),
        ("> /cancel\n\n/status", "/status"),
        ("nothing here", None),
        ("    /cancel", None),
    ])
    def test_first(self, body: str, expected: str | None) -> None:
        assert first_command_line(body) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("/>`~-*#<!\n\r \t[]()q\u2028\u00a0\\&;1.")), max_size=80))
def test_any_body_gives_slash_lines_from_the_body(body: str) -> None:
    lines = command_lines(body)
    assert all(line.startswith("/") and line == line.strip() for line in lines)
    assert all(line.replace("\ufffd", "\0") in body.replace("\r", "\n") or line in body for line in lines)
