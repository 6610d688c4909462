"""The prompt template a card shows, rendered from the source model's own chat template.

A chat template is code written by whoever uploaded the model. Jinja's sandbox stops it reading
or changing Python objects, but not from looping for hours, filling memory (``'x' * 10**9``) or
recursing until the interpreter falls over. So it runs in a child Python (``python -I`` on this
file, which imports nothing but the standard library and jinja2) under CPU and memory rlimits
and a wall-clock timeout; inside, a bounded sandbox refuses huge ranges, repetitions, powers and
outputs with a clear reason. Whatever goes wrong, the card gets ``{prompt}`` and a sentence
saying why: rendering never raises and never takes much more than :data:`CPU_LIMIT_S`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

log = logging.getLogger(__name__)
_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON lets lone surrogates through; UTF-8 does not

PLAIN = "{prompt}"
CPU_LIMIT_S = 2  # RLIMIT_CPU is whole seconds
WALL_LIMIT_S = 2.75  # startup (~0.1 s) plus CPU_LIMIT_S, with a little slack for a busy machine
MAX_SOURCE = 256 * 1024  # characters of template source
MAX_OUTPUT = 64 * 1024  # characters of rendered text, and of any one string or list built
MAX_RANGE = 10_000  # range() length; chat templates loop over messages, not millions of numbers
MAX_POWER_BITS = 4096  # 2**4096 is plenty for a template, 10**10**10 is a denial of service
MEMORY_LIMIT = 512 << 20  # address space of the child: jinja2 plus a template need ~60 MB
MAX_PROBLEM = 200  # characters of an error message quoted in a problem

_CONVERSATIONS = (
    [{"role": "system", "content": "{system_message}"}, {"role": "user", "content": "{prompt}"}],
    [{"role": "user", "content": "{prompt}"}],
)


@dataclass(frozen=True)
class PromptTemplate:
    """What the model expects (``{system_message}``/``{prompt}`` placeholders), or why not shown.

    ``problem`` is ``None`` when ``text`` is the rendered template (or ``{prompt}`` for a model
    without one); otherwise ``text`` is ``{prompt}`` and ``problem`` is one sentence starting
    "template not rendered: ". The problem quotes the template's own error messages, so show it
    through ``bot.safetext``.
    """

    text: str
    problem: str | None = None


class _TooBig(Exception):
    """The template asked for more than the budget; the message says what."""


def pick_template(value: object) -> str | None:
    """The template to show from a ``chat_template`` value: a string, or the Hugging Face list.

    The list form is ``[{"name": "default", "template": ...}, {"name": "tool_use", ...}]``
    (a mapping of name to template is also accepted): the one named ``default``, else the first
    usable one. ``None`` when there is no usable string template.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        items = [(k, v) for k, v in value.items() if isinstance(v, str)]
    elif isinstance(value, list | tuple):
        items = [(item.get("name"), item.get("template")) for item in value
                 if isinstance(item, Mapping) and isinstance(item.get("template"), str)]
    else:
        return None
    for name, template in items:
        if name == "default":
            return template
    return items[0][1] if items else None


def _token(value: object) -> str:
    """A special token as a string: tokenizer_config.json may hold an AddedToken mapping."""
    if isinstance(value, Mapping):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def _one_line(text: str) -> str:
    """An error message bounded and on one line, for a problem sentence."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_PROBLEM else line[: MAX_PROBLEM - 1] + "\u2026"


def _problem(reason: str) -> PromptTemplate:
    log.info("chat template not rendered: %s", reason)
    return PromptTemplate(PLAIN, f"template not rendered: {reason}")


def prompt_template(chat_template: object, bos_token: object = "", eos_token: object = "") -> PromptTemplate:
    """The prompt format ``chat_template`` produces for a one-turn conversation.

    Rendered as transformers renders it (sandbox, ``raise_exception``, ``tojson``,
    ``strftime_now``, loop controls, ``{% generation %}``), first with a system turn and, if the
    template refuses one, without. No template at all gives ``{prompt}`` and no problem (the model
    takes plain text). Never raises; see :class:`PromptTemplate`.
    """
    if chat_template is None or chat_template == "" or chat_template == []:
        return PromptTemplate(PLAIN)
    source = pick_template(chat_template)
    if source is None:
        return _problem("chat_template is neither a string nor a list of named templates")
    if not source.strip():
        return PromptTemplate(PLAIN)
    if len(source) > MAX_SOURCE:
        return _problem(f"the template is longer than {MAX_SOURCE // 1024} kB")
    return _render_isolated(source, _token(bos_token), _token(eos_token))


def render_conversations(chat_template: object, conversations: list[list[dict[str, str]]],
                         bos_token: object = "", eos_token: object = "",
                         add_generation_prompt: bool = False) -> tuple[list[str], str | None]:
    """Whole conversations as the model sees them (chat turns for importance-matrix
    calibration; with ``add_generation_prompt``, prompts the model answers), in the same
    isolated, bounded child. ``([], problem)`` when it cannot."""
    source = pick_template(chat_template)
    if not source or not source.strip():
        return [], "the model has no chat template"
    if len(source) > MAX_SOURCE:
        return [], f"the template is longer than {MAX_SOURCE // 1024} kB"
    reply = _run_child({"template": source, "bos_token": _token(bos_token),
                        "eos_token": _token(eos_token), "conversations": conversations,
                        "add_generation_prompt": add_generation_prompt})
    if isinstance(reply, PromptTemplate):
        return [], reply.problem
    texts = reply.get("texts")
    if reply.get("problem") is not None or not isinstance(texts, list):
        return [], f"template not rendered: {reply.get('problem')}"
    return [_SURROGATE.sub("\ufffd", str(t)) for t in texts], None


def _render_isolated(source: str, bos_token: str, eos_token: str) -> PromptTemplate:
    """Render in a child Python under rlimits and a wall-clock timeout; ~0.15 s for most templates."""
    reply = _run_child({"template": source, "bos_token": bos_token, "eos_token": eos_token})
    if isinstance(reply, PromptTemplate):
        return reply
    text, problem = reply["text"], reply["problem"]
    if problem is not None:
        return _problem(_SURROGATE.sub("\ufffd", str(problem)))
    return PromptTemplate(_SURROGATE.sub("\ufffd", str(text)))


def _run_child(request_data: dict[str, Any]) -> dict[str, Any] | PromptTemplate:
    """The child's JSON reply, or a :class:`PromptTemplate` problem when it gave none."""
    request = json.dumps(request_data, ensure_ascii=True)
    try:
        done = subprocess.run([sys.executable, "-I", str(Path(__file__).resolve())],
                              input=request.encode("ascii"), capture_output=True,
                              timeout=WALL_LIMIT_S, check=False)
    except subprocess.TimeoutExpired:
        return _problem(f"took longer than {CPU_LIMIT_S} s")
    except OSError as exc:
        return _problem(f"could not start the renderer ({exc.strerror or exc})")
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return _problem(f"took longer than {CPU_LIMIT_S} s")
    try:
        reply = json.loads(done.stdout)
        if not isinstance(reply, dict) or "problem" not in reply:
            raise ValueError("no reply")
    except (ValueError, KeyError, TypeError):
        if done.returncode < 0:
            return _problem(f"the renderer crashed ({signal.Signals(-done.returncode).name})")
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        return _problem(_one_line(f"the renderer failed: {' '.join(tail) or done.returncode}"))
    return reply


# ---- the child: everything below runs in the isolated interpreter ----


class _Generation(Extension):
    """``{% generation %}...{% endgeneration %}`` (transformers' assistant-mask tag), shown as is."""

    tags = {"generation"}  # noqa: RUF012  (jinja2's own class attribute)

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_passthrough"), [], [], body).set_lineno(lineno)

    def _passthrough(self, caller: Any) -> str:
        return caller()


class _Namespace(Namespace):
    """``namespace()`` that refuses underscore names, as transformers' does (no dunder games)."""

    def __init__(*args: Any, **kwargs: Any) -> None:
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _Namespace._check(name)
        Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _Namespace._check(name)
        Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name: object) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"namespace attribute {name!r} starts with an underscore")


def _sized(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox transformers uses, refusing work far beyond what a prompt format needs.

    Intercepting these operators also stops Jinja folding ``'x' * 10**9`` at compile time.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            seq, count = (left, right) if _sized(left) else (right, left)
            if _sized(seq) and isinstance(count, int) and len(seq) * max(count, 0) > MAX_OUTPUT:
                raise _TooBig(f"a repetition longer than {MAX_OUTPUT // 1024} kB")
        elif operator == "**":
            if (isinstance(left, int) and isinstance(right, int) and abs(left) > 1
                    and right * math.log2(abs(left)) > MAX_POWER_BITS):
                raise _TooBig(f"a power larger than 2**{MAX_POWER_BITS}")
        elif operator == "+" and _sized(left) and _sized(right) and len(left) + len(right) > MAX_OUTPUT:
            raise _TooBig(f"a string or list longer than {MAX_OUTPUT // 1024} kB")
        result = super().call_binop(context, operator, left, right)
        if operator == "%" and _sized(result) and len(result) > MAX_OUTPUT:
            raise _TooBig(f"a formatted string longer than {MAX_OUTPUT // 1024} kB")
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Refuse str methods asked for huge widths (``'x'.ljust(10**9)``, ``center``, ``zfill``)."""
        if isinstance(getattr(__obj, "__self__", None), str) and any(
                isinstance(a, int) and a > MAX_OUTPUT for a in (*args, *kwargs.values())):
            raise _TooBig(f"a string wider than {MAX_OUTPUT // 1024} kB")
        return super().call(__context, __obj, *args, **kwargs)


def _range(*args: int) -> range:
    bounded = range(*args)
    if len(bounded) > MAX_RANGE:
        raise _TooBig(f"range() of more than {MAX_RANGE} numbers")
    return bounded


def _raise(message: object) -> None:
    raise TemplateError(str(message))


def _tojson(value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


def _environment() -> _BoundedSandbox:
    env = _BoundedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals.update(raise_exception=_raise, strftime_now=_strftime_now, range=_range,
                       namespace=_Namespace, dict=dict)
    return env


def _bounded(chunks: Iterator[str]) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise _TooBig(f"output longer than {MAX_OUTPUT // 1024} kB")
        out.append(chunk)
    return "".join(out)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return _one_line(f"syntax error on line {exc.lineno}: {exc.message}")
    if isinstance(exc, _TooBig):
        return f"it asked for {exc}"
    if isinstance(exc, RecursionError):
        return "it recurses too deeply"
    if isinstance(exc, MemoryError):
        return f"it needs more than {MEMORY_LIMIT >> 20} MiB of memory"
    if isinstance(exc, TemplateError):
        return _one_line(f"it raised an error: {exc.message or type(exc).__name__}")
    return _one_line(f"{type(exc).__name__}: {exc}")


def render(source: str, bos_token: str, eos_token: str) -> dict[str, str | None]:
    """Render ``source`` here, in this process (the child's work): ``{"text", "problem"}``."""
    try:
        template = _environment().from_string(source)
    except Exception as exc:  # a template may fail to compile in any way
        return {"text": PLAIN, "problem": _describe(exc)}
    last: BaseException | None = None
    for messages in _CONVERSATIONS:
        try:
            text = _bounded(template.generate(messages=messages, add_generation_prompt=True,
                                              bos_token=bos_token, eos_token=eos_token))
        except (_TooBig, RecursionError, MemoryError) as exc:
            return {"text": PLAIN, "problem": _describe(exc)}
        except Exception as exc:  # a refused system turn, or any other failure
            last = exc
            continue
        if PLAIN in text:
            return {"text": text.strip("\n"), "problem": None}
        last = None
    if last is not None:
        return {"text": PLAIN, "problem": _describe(last)}
    return {"text": PLAIN, "problem": "its output does not contain the user's message"}


def render_all(source: str, conversations: list[Any], bos_token: str,
               eos_token: str, add_generation_prompt: bool = False) -> dict[str, Any]:
    """Render whole conversations here (the child's work): ``{"texts", "problem"}``."""
    try:
        template = _environment().from_string(source)
        texts = [_bounded(template.generate(messages=messages,
                                            add_generation_prompt=add_generation_prompt,
                                            bos_token=bos_token, eos_token=eos_token))
                 for messages in conversations]
    except Exception as exc:  # the author's template: any failure is an answer
        return {"texts": None, "problem": _describe(exc)}
    return {"texts": texts, "problem": None}


def _child_main() -> None:
    """Read one request on stdin, limit this process, render, write the reply on stdout."""
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT_S, CPU_LIMIT_S + 1))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    request = json.loads(sys.stdin.buffer.read())
    try:
        if "conversations" in request:
            reply = render_all(request["template"], request["conversations"],
                               request["bos_token"], request["eos_token"],
                               bool(request.get("add_generation_prompt")))
        else:
            reply = render(request["template"], request["bos_token"], request["eos_token"])
    except (RecursionError, MemoryError) as exc:  # raised while unwinding, outside render's catch
        reply = {"text": PLAIN, "problem": _describe(exc)}
    sys.stdout.write(json.dumps(reply))
    sys.stdout.flush()


if __name__ == "__main__":
    _child_main()
