"""The chat template a GGUF carries: the original's, and does it render a tool call?

The converter copies the source's chat template into the file (``tokenizer.chat_template``);
runtimes render it themselves. Before publishing, quantbot reads it back from the file, compares
it with the source's, and renders a conversation with a system message, a tool definition, an
assistant tool call and the tool's answer through llama-cpp-python's own Jinja handling (the
sandboxed ``Jinja2ChatFormatter`` that ``create_chat_completion`` uses), in a fresh process with a
time limit, since the template is the model author's code.

Run as ``python -m runners.gguf.chat_check MODEL.gguf EXPECTED.json``; it prints one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from runners.llamacpp import Toolchain
from runners.proc import ToolFailed, run_tool

TIMEOUT_S = 20
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the weather in Lisbon?"},
    {"role": "assistant", "content": "", "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Lisbon"}}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "22 C, sunny"},
]


@dataclass(frozen=True)
class ChatTemplateCheck:
    """``embedded``: same / different / missing / none in the source; ``tool_calls``: whether a
    tool call and its answer appear in the rendered conversation (None: no template)."""

    embedded: str
    tool_calls: bool | None
    problem: str | None = None

    def describe(self) -> str:
        words = {"same": "the original's chat template, embedded unchanged",
                 "different": "a chat template that differs from the original's",
                 "missing": "no chat template (the original has one)",
                 "none in the source": "no chat template (the original has none)"}[self.embedded]
        if self.tool_calls is None:
            return words
        calls = "renders" if self.tool_calls else "does not render"
        return f"{words}; it {calls} tool calls" + (f" ({self.problem})" if self.problem else "")


def sha256(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text else None


def check_chat_template(tc: Toolchain, model: Path, expected: str | None, bos: str = "",
                        eos: str = "") -> ChatTemplateCheck:
    """Read the file's template back and render the tool conversation through it."""
    request = model.with_suffix(".chat-check.json")
    request.write_text(json.dumps({"sha256": sha256(expected), "bos": bos, "eos": eos}))
    try:
        run = run_tool([sys.executable, "-m", "runners.gguf.chat_check", model, request],
                       env=tc.binding_env())
    except ToolFailed as exc:
        return ChatTemplateCheck("same" if expected else "none in the source", False,
                                 f"the check failed: {exc.problem.strip().splitlines()[-1][:200]}")
    finally:
        request.unlink(missing_ok=True)
    return ChatTemplateCheck(**json.loads(run.output.strip().splitlines()[-1]))


def _render(template: str, bos: str, eos: str) -> tuple[bool, str | None]:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    try:
        prompt = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)(
            messages=CONVERSATION, tools=[TOOL]).prompt
    except Exception as exc:  # the author's template: any error is an answer, not a crash
        return False, f"{type(exc).__name__}: {str(exc)[:160]}"
    return ("get_weather" in prompt and "22 C, sunny" in prompt), None


def main(argv: list[str] | None = None) -> None:
    import resource

    args = sys.argv[1:] if argv is None else argv
    resource.setrlimit(resource.RLIMIT_CPU, (TIMEOUT_S, TIMEOUT_S))
    model, request = Path(args[0]), json.loads(Path(args[1]).read_text())
    from runners.gguf.header import read_header

    template = read_header(model).fields.get("tokenizer.chat_template")
    if not isinstance(template, str):
        template = None
    expected = request["sha256"]
    if expected is None:
        embedded = "none in the source" if not template else "different"
    elif not template:
        embedded = "missing"
    else:
        embedded = "same" if sha256(template) == expected else "different"
    tool_calls, problem = _render(template, request["bos"], request["eos"]) if template else (None, None)
    print(json.dumps({"embedded": embedded, "tool_calls": tool_calls, "problem": problem}))


if __name__ == "__main__":
    main()
