"""The importance-matrix calibration mix: prose, code, chat and 20 languages, with sources and
licences, rendered through the model's template, and never a sentence of the evaluation text."""

from __future__ import annotations

import collections
import gzip
import json
from importlib import resources

from bot.cards.prompt import render_conversations
from runners.calibration_mix import LANGUAGES, MIX_FILE, SOURCES, calibration_mix
from runners.texts import text_set


def test_the_mix_has_every_kind_with_its_source_and_licence() -> None:
    mix = calibration_mix()
    kinds = collections.Counter(s["kind"] for s in mix.plain)
    assert kinds["prose"] >= 100 and kinds["code"] >= 40 and kinds["languages"] == len(LANGUAGES)
    assert len(mix.chats) >= 50 and all(c[0]["role"] == "user" for c in mix.chats)
    data = resources.files("runners") / "data" / MIX_FILE
    with gzip.open(data.open("rb"), "rt", encoding="utf-8") as fh:
        shipped = json.load(fh)
    assert shipped["sources"] == {k: v.record() for k, v in SOURCES.items()}
    assert all(licence for _, licence in shipped["sources"].values())
    scripts = "".join(s["text"] for s in mix.plain if s["kind"] == "languages")
    assert any("\u3040" <= c <= "\u30ff" for c in scripts)  # Japanese kana
    assert any("\u0400" <= c <= "\u04ff" for c in scripts)  # Cyrillic
    assert any("\u0600" <= c <= "\u06ff" for c in scripts)  # Arabic script


def test_no_evaluation_paragraph_is_in_the_mix() -> None:
    mix = calibration_mix()
    text = mix.text(["\n".join(turn["content"] for turn in chat) for chat in mix.chats])
    evaluation = [p for p in text_set("evaluation").text.split("\n\n") if len(p) > 40]
    assert evaluation and not [p for p in evaluation if p in text]


def test_chats_render_through_a_real_template() -> None:
    template = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>{% endfor %}")
    texts, problem = render_conversations(template, calibration_mix().chats[:3])
    assert problem is None and len(texts) == 3
    assert texts[0].startswith("<|user|>Explain") and "<|assistant|>" in texts[0]
    none, why = render_conversations(None, calibration_mix().chats[:1])
    assert none == [] and why == "the model has no chat template"
