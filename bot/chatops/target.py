"""Which model an issue is about: one identity, trusted only from trusted authors (pure).

The watcher's issues carry the hidden marker of :mod:`bot.marker`, which is trusted only in
issues the bot itself opened (anyone can type a marker). Any other issue is about the model its
title names (``Quantize OWNER/NAME``). Ids are validated whole, never extracted from a larger
word or repaired, and an issue that names two different models is refused naming both.
"""

from __future__ import annotations

from bot.marker import model_in_body
from runners.errors import QuantbotError
from runners.source import is_repo_id

#: Punctuation a title may put around an id: ``Quantize (org/model)``, ``org/model:``.
_AROUND = "()[]<>{},;:!?\"'`*_"


def models_in_title(title: str) -> list[str]:
    """The distinct words of the title that are whole Hub repo ids, in order."""
    found: list[str] = []
    for word in (title or "").split():
        word = word.strip(_AROUND)
        if "/" in word and is_repo_id(word) and word not in found:
            found.append(word)
    return found


def model_of_issue(title: str, body: str, opened_by_bot: bool) -> str:
    """The Hub repo id an issue is about; :class:`QuantbotError` if it names none or two."""
    named = models_in_title(title)
    marked = model_in_body(body) if opened_by_bot else None
    if marked is not None and not is_repo_id(marked):
        marked = None
    candidates = list(dict.fromkeys([*([marked] if marked else []), *named]))
    if len(candidates) > 1:
        shown = " and ".join(f"`{c}`" for c in candidates[:2])
        raise QuantbotError(f"this issue names two models, {shown}",
                            "open one issue per model, with one repo id in its title")
    if not candidates:
        raise QuantbotError("this issue names no model",
                            "comment on an issue opened by `quantbot watch`, or put the model's "
                            "repo id (OWNER/NAME) in the issue title")
    return candidates[0]
