"""The texts a run feeds the tools, as this model sees them: calibration, evaluation and the
answer-agreement prompts, their chat turns rendered through the model's own template in the
bounded sandbox. Apart from the pipeline so that benchmarks use them without the cards."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.cards.prompt import render_conversations
from runners.answers import PromptSet, folded, pick_prompts, plain_text
from runners.answers import prompt_library as answer_library
from runners.calibration_mix import calibration_mix
from runners.evaluation_mix import evaluation_mix
from runners.source import SourceModel

log = logging.getLogger(__name__)


def _rendered(source: SourceModel, chats: list[list[dict[str, str]]], what: str) -> list[str]:
    """``chats`` through the model's own chat template in the bounded sandbox; plain turns when
    the model has none or it fails (logged)."""
    rendered, problem = render_conversations(source.info.chat_template, chats,
                                             source.info.bos_token, source.info.eos_token)
    if problem is not None:
        log.info("%s chats as plain text: %s", what, problem)
        rendered = ["\n".join(turn["content"] for turn in chat) for chat in chats]
    return rendered


def calibration_text(source: SourceModel, work: Path) -> Path:
    """The calibration mix (prose, code, languages, chat) with its chat turns rendered through
    the model's own template in the bounded sandbox; plain turns when the model has none."""
    mix = calibration_mix()
    path = work / "calibration-mix.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(mix.text(_rendered(source, mix.chats, "calibration")), encoding="utf-8")
    return path


def evaluation_text(source: SourceModel, work: Path) -> Path:
    """The evaluation mix by domain (:mod:`runners.evaluation_mix`), its chats rendered through
    the model's own template in the bounded sandbox, as the evaluators read it."""
    mix = evaluation_mix()
    return mix.text(_rendered(source, mix.chats, "evaluation")).write(work / "evaluation-mix.json")


def answer_prompts(source: SourceModel, work: Path, count: int, max_new_tokens: int) -> Path:
    """``count`` of the answer-agreement prompts (spread evenly over the kinds) as this model
    sees them: rendered through its own chat template in the bounded sandbox (system turns
    folded into the user's where the template refuses them), or as plain text when it has no
    usable template."""
    prompts = pick_prompts(answer_library().prompts, count)
    conversations = [p.messages for p in prompts]
    rendering = "the model's chat template"
    texts, problem = render_conversations(source.info.chat_template, conversations,
                                          source.info.bos_token, source.info.eos_token,
                                          add_generation_prompt=True)
    if problem is not None and source.info.chat_template:
        texts, problem = render_conversations(
            source.info.chat_template, [folded(c) for c in conversations],
            source.info.bos_token, source.info.eos_token, add_generation_prompt=True)
        rendering = "the model's chat template, system turns folded into the user's"
    if problem is not None:
        log.info("answer prompts as plain text: %s", problem)
        texts = [plain_text(c) for c in conversations]
        rendering = f"plain text ({problem})"
    return PromptSet(ids=[p.id for p in prompts], texts=texts, rendering=rendering,
                     max_new_tokens=max_new_tokens).write(work / "answer-prompts.json")
