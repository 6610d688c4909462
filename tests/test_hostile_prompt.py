"""Hostile chat templates: every one renders or gives a clear problem, quickly, without raising.

The real-template cases read llama.cpp's collection from the extracted toolchain (or from the
folder in ``$QUANTBOT_TEST_TEMPLATES``) and are skipped when neither exists.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bot.cards.prompt import MAX_SOURCE, PLAIN, PromptTemplate, pick_template, prompt_template

LIMIT_S = 3.0
TEMPLATES = Path(os.environ.get("QUANTBOT_TEST_TEMPLATES") or Path.home().joinpath(
    ".cache/quantbot/llama.cpp/0.3.36/src/llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates"))
CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
NO_SYSTEM = ("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}"
             "{% endif %}{{ bos_token }}[INST] {{ messages[0].content }} [/INST]")


def render(template: object, bos: object = "<s>", eos: object = "</s>") -> PromptTemplate:
    start = time.perf_counter()
    result = prompt_template(template, bos, eos)
    assert time.perf_counter() - start < LIMIT_S
    assert isinstance(result, PromptTemplate)
    if result.problem is None:
        assert PLAIN in result.text
    else:
        assert result.text == PLAIN and result.problem.startswith("template not rendered: ")
        assert "\n" not in result.problem and len(result.problem) < 300
    return result


def problem_of(template: object) -> str:
    problem = render(template).problem
    assert problem is not None
    return problem


class TestNoTemplate:
    @pytest.mark.parametrize("value", [None, "", [], "   \n"])
    def test_plain_text_model(self, value: object) -> None:
        assert render(value) == PromptTemplate(PLAIN, None)

    @pytest.mark.parametrize("value", [42, {"x": 1}, [1, 2], [{"name": "default"}], True, b"{{ x }}"])
    def test_unusable_value_is_a_problem(self, value: object) -> None:
        assert "neither a string nor a list" in problem_of(value)


class TestPickTemplate:
    @pytest.mark.parametrize(("value", "expected"), [
        ("T", "T"),
        ([{"name": "tool_use", "template": "A"}, {"name": "default", "template": "B"}], "B"),
        ([{"name": "tool_use", "template": "A"}, {"name": "rag", "template": "C"}], "A"),
        ([{"name": "default", "template": 5}, {"name": "x", "template": "X"}], "X"),
        ([{"template": "Y"}], "Y"),
        (["not a dict", {"name": "default", "template": "D"}], "D"),
        ({"default": "E", "tool_use": "F"}, "E"),
        ({"tool_use": "F"}, "F"),
        ([], None), ([{}], None), (None, None), (3, None), ({"default": None}, None),
    ])
    def test_pick(self, value: object, expected: str | None) -> None:
        assert pick_template(value) == expected

    def test_list_form_renders_default(self) -> None:
        value = [{"name": "tool_use", "template": "tools {{ messages[-1].content }}"},
                 {"name": "default", "template": CHATML}]
        assert render(value).text.startswith("<|im_start|>system\n{system_message}")


class TestOrdinaryTemplates:
    def test_chatml(self) -> None:
        assert render(CHATML).text == ("<|im_start|>system\n{system_message}<|im_end|>\n<|im_start|>user\n"
                                       "{prompt}<|im_end|>\n<|im_start|>assistant")

    def test_refused_system_turn_renders_without_one(self) -> None:
        assert render(NO_SYSTEM) == PromptTemplate("<s>[INST] {prompt} [/INST]", None)

    @pytest.mark.parametrize(("bos", "shown"), [
        ({"content": "<B>", "lstrip": False}, "<B>"), (None, ""), (123, ""), ("\ud800", "\ufffd"),
    ])
    def test_odd_special_tokens(self, bos: object, shown: str) -> None:
        assert render(NO_SYSTEM, bos=bos).text == f"{shown}[INST] {{prompt}} [/INST]"

    @pytest.mark.parametrize("template", [
        "{{ messages | tojson(indent=2, ensure_ascii=False) }}",
        "{{ strftime_now('%d %b %Y') }} {{ messages[-1].content }}",
        "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}{{ m.content }}"
        "{% endfor %}",
        "{% generation %}{{ messages[-1].content }}{% endgeneration %}",
        "{% set ns = namespace(found=false) %}{{ messages[-1].content }}",
        "{{ dict(a=1).a }}{{ messages[-1]['content'] | trim }}",
    ])
    def test_transformers_extras(self, template: str) -> None:
        assert render(template).problem is None


class TestCpuBombs:
    @pytest.mark.parametrize("template", [
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "{{ lipsum(10**6) }}",
        "{% for i in range(10000) %}{% for j in range(10000) %}{{ '' }}{% endfor %}{% endfor %}{{ x }}",
    ])
    def test_time_budget(self, template: str) -> None:
        assert "took longer than 2 s" in problem_of(template)


class TestSizeBombs:
    @pytest.mark.parametrize(("template", "says"), [
        ("{% for i in range(10**9) %}x{% endfor %}", "range()"),
        ("{{ range(10**12) | list }}", "range()"),
        ("{{ 'x' * 10**9 }}", "repetition"),
        ("{{ 10**9 * 'x' }}", "repetition"),
        ("{{ ['x'] * 10**9 }}", "repetition"),
        ("{{ 'x'.ljust(10**9) }}", "wider"),
        ("{{ 'x'.center(10**9) }}", "wider"),
        ("{{ '0'.zfill(10**9) }}", "wider"),
        ("{{ '%100000d' % 1 }}", "formatted"),
        ("{{ '%1000000000d' % 1 }}", "memory"),  # allocated before it can be measured
        ("{{ 10 ** 100000 }}", "power"),
        ("{{ 7 ** 1000000 }}", "power"),
        ("{{ (7 ** 100) ** 1000 }}", "power"),
        ("{% set ns = namespace(s='x') %}{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
         "longer than 64 kB"),
        ("{% for i in range(10000) %}{{ 'x' * 60000 }}{% endfor %}", "output longer than 64 kB"),
        ("{% for i in range(9000) %}{{ messages[-1].content }}{% endfor %}", "output longer than 64 kB"),
    ])
    def test_refused_with_a_reason(self, template: str, says: str) -> None:
        assert says in problem_of(template)

    @pytest.mark.parametrize("template", [
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{{ 'a\nb' | indent(10**9) }}",
        "{{ messages | tojson(indent=10**8) }}",
        "{{ 'x' | wordwrap(10**9) }}{{ range(9999) | join('x' * 60000) }}",
    ])
    def test_memory_is_bounded(self, template: str) -> None:
        problem_of(template)

    def test_huge_source(self) -> None:
        template = "{{ messages[-1].content }}" + "{# " + "x" * MAX_SOURCE + " #}"
        assert "longer than 256 kB" in problem_of(template)

    def test_huge_literal_within_the_source_limit(self) -> None:
        render("{{ '" + "x" * 200_000 + "' }}{{ messages[-1].content }}")


class TestRecursion:
    @pytest.mark.parametrize("template", [
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
        "{{ " + "[" * 5000 + "]" * 5000 + " }}",
        "{% if 1 %}" * 2000 + "{% endif %}" * 2000,
        "{{ " + "-" * 50_000 + "1 }}",
        "{{ x" + ".y" * 50_000 + " }}",
    ])
    def test_deep_recursion(self, template: str) -> None:
        problem_of(template)


class TestSandbox:
    @pytest.mark.parametrize("template", [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ self.__init__.__globals__ }}",
        "{{ namespace.__init__ }}",
        "{{ raise_exception.__globals__ }}",
        "{{ messages.append(1) }}",
        "{% set x = messages.pop() %}",
        "{{ namespace(_private=1) }}",
        "{% set ns = namespace() %}{% set ns.__class__ = 1 %}",
        "{{ dict.__call__.__globals__ }}",
        "{{ (messages|first).update({'a': 1}) }}",
        "{{ '{0.__class__}'.format('') }}",
        "{% include '/etc/passwd' %}",
        "{% import 'os' as os %}",
        "{% extends 'base' %}",
    ])
    def test_escapes_leak_nothing(self, template: str) -> None:
        result = render(template + "{{ messages[-1].content }}")
        assert "class" not in result.text and "<function" not in result.text and "root:" not in result.text


class TestTemplateErrors:
    @pytest.mark.parametrize(("template", "says"), [
        ("{{ raise_exception('custom refusal') }}", "custom refusal"),
        ("{{ raise_exception('x' * 10000) }}", "\u2026"),
        ("{{ raise_exception('line1\nline2') }}", "line1 line2"),
        ("{{", "syntax error on line 1"),
        ("{% for %}", "syntax error"),
        ("{% raise %}", "syntax error"),
        ("{% endfor %}", "syntax error"),
        ("{{ x.y.z }}", "undefined"),
        ("{{ messages[99].content }}", "no element 99"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ 'a' + 1 }}", "TypeError"),
        ("hello", "does not contain the user's message"),
        ("{{ messages[0].role }}", "does not contain the user's message"),
        ("{{ '\ud800' }}", "does not contain the user's message"),
    ])
    def test_clear_problem(self, template: str, says: str) -> None:
        assert says in problem_of(template)


def real_templates() -> list[Path]:
    return sorted(TEMPLATES.glob("*.jinja")) if TEMPLATES.is_dir() else []


@pytest.mark.skipif(not real_templates(), reason=f"no llama.cpp templates in {TEMPLATES}")
@pytest.mark.parametrize("path", real_templates(), ids=lambda p: p.stem)
def test_real_templates(path: Path) -> None:
    result = render(path.read_text(encoding="utf-8"))
    assert result.problem is None or "not rendered" in result.problem
