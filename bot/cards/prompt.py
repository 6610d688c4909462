"""The prompt template a card shows, rendered from the source model's own chat template (pure)."""

from __future__ import annotations

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

PLAIN = "{prompt}"


def _raise(message: str) -> None:
    raise TemplateError(message)


def prompt_template(chat_template: str | None, bos_token: str = "", eos_token: str = "") -> str:
    """What the model expects, with ``{system_message}`` and ``{prompt}`` as placeholders.

    The chat template runs in Jinja's sandbox (as transformers runs it) on a one-turn
    conversation; templates that refuse a system turn are rendered without one. A model with no
    chat template takes plain text: ``{prompt}``.
    """
    if not chat_template:
        return PLAIN
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    try:
        template = env.from_string(chat_template)
    except TemplateError:
        return PLAIN
    conversations = (
        [{"role": "system", "content": "{system_message}"}, {"role": "user", "content": "{prompt}"}],
        [{"role": "user", "content": "{prompt}"}],
    )
    for messages in conversations:
        try:
            text = template.render(messages=messages, add_generation_prompt=True,
                                   bos_token=bos_token, eos_token=eos_token)
        except (TemplateError, TypeError, ValueError, KeyError, IndexError):
            continue
        if "{prompt}" in text:
            return text.strip("\n")
    return PLAIN
