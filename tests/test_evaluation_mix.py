"""The evaluation mix of real models: four domains with their sources and licences, at least 10
languages, chats in the model's template, disjoint from the calibration mix by content hash, and
a window layout whose every prefix covers the domains evenly."""

from __future__ import annotations

import collections
import hashlib

import pytest

from bot.cards.prompt import render_conversations
from runners.calibration_mix import calibration_mix
from runners.evaluation_mix import (
    DOMAIN_KEYS,
    DOMAINS,
    MIX_FILE,
    EvaluationText,
    docs_text,
    evaluation_mix,
    window_order,
    windows_wanted,
)
from runners.mix_sources import LANGUAGES, content_hashes, po_messages, read_shipped
from runners.texts import text_set


def _plain_chats(chats: list[list[dict[str, str]]]) -> list[str]:
    return ["\n".join(turn["content"] for turn in chat) for chat in chats]


def test_every_domain_ships_with_its_source_and_licence() -> None:
    shipped = read_shipped(MIX_FILE)
    assert shipped["sources"] == {d.key: d.source.record() for d in DOMAINS}
    assert all(what and licence for what, licence in shipped["sources"].values())
    assert {"python", "django"} <= set(shipped["built_from"])
    mix = evaluation_mix()
    text = mix.text(_plain_chats(mix.chats))
    assert [d.domain for d in text.domains] == list(DOMAIN_KEYS) == ["prose", "code", "chat",
                                                                      "languages"]
    assert all(len(d.text) > 50_000 for d in text.domains)
    assert all(chat[0]["role"] == "user" and chat[1]["role"] == "assistant" for chat in mix.chats)
    assert sum("```python" in turn["content"] for chat in mix.chats for turn in chat) >= 50
    assert all("def " in sample for sample in mix.code)


def test_every_licence_ships_its_text() -> None:
    from importlib import resources

    from runners.calibration_mix import SOURCES
    from runners.mix_sources import LICENCE_FILES

    folder = resources.files("runners") / "data" / "licences"
    for source in [*SOURCES.values(), *(d.source for d in DOMAINS)]:
        text = (folder / LICENCE_FILES[source.licence]).read_text(encoding="utf-8")
        holder = "Python Software Foundation" if source.licence == "PSF-2.0" else "Django"
        assert holder in text and "Copyright" in text


def test_at_least_ten_languages_in_their_own_scripts_early_on() -> None:
    blocks = evaluation_mix().languages
    assert len({b["language"] for b in blocks}) == len(LANGUAGES) >= 10
    first = blocks[:len(LANGUAGES)]  # interleaved: the first blocks are one of each language
    assert [b["language"] for b in first] == list(LANGUAGES)
    scripts = "".join(b["text"] for b in first)
    assert any("\u3040" <= c <= "\u30ff" for c in scripts)  # Japanese kana
    assert any("\u0400" <= c <= "\u04ff" for c in scripts)  # Cyrillic
    assert any("\u0600" <= c <= "\u06ff" for c in scripts)  # Arabic script
    assert any("\u0900" <= c <= "\u097f" for c in scripts)  # Devanagari
    assert not any("Project-Id-Version" in b["text"] for b in blocks)  # no catalogue header


def test_disjoint_from_the_calibration_mix_by_content_hash() -> None:
    evaluation, calibration = evaluation_mix(), calibration_mix()
    ours: set[str] = set()
    for sample in [*evaluation.prose, *evaluation.code, *_plain_chats(evaluation.chats),
                   *(b["text"] for b in evaluation.languages)]:
        ours |= content_hashes(sample)
    theirs = content_hashes(calibration.text(_plain_chats(calibration.chats)))
    assert len(ours) > 2000 and len(theirs) > 400  # the check has something to compare
    assert not ours & theirs
    calibration_text = calibration.text(_plain_chats(calibration.chats))
    assert not [p for p in evaluation.prose if len(p) > 40 and p in calibration_text]


def test_content_hashes_see_lines_not_layout() -> None:
    line = "Return the number of items in a container, counting twice."
    assert content_hashes(f"  {line}\n") == content_hashes(line.replace(" ", "  "))
    assert content_hashes("return result\n") == set()  # too short to say anything is shared
    assert len(content_hashes(f"{line}\n\n{line.upper()}")) == 2


def test_catalogue_reading_skips_header_fuzzy_and_plurals(tmp_path) -> None:
    po = tmp_path / "django.po"
    po.write_text('msgid ""\nmsgstr ""\n"Project-Id-Version: django\\n"\n\n'
                  '#, fuzzy\nmsgid "Old"\nmsgstr "Eine unsichere Übersetzung, die lang genug ist"\n\n'
                  'msgid "Long"\nmsgstr ""\n"Eine Nachricht, die über "\n"zwei Zeilen geht."\n\n'
                  'msgid "One"\nmsgid_plural "Many"\nmsgstr[0] "Ein Ding, lang genug für den Filter"\n\n'
                  'msgid "Fmt"\nmsgstr "Mit Platzhalter %(name)s, lang genug"\n\n'
                  'msgid "Single"\nmsgstr "Eine einzeilige Nachricht, lang genug."\n',
                  encoding="utf-8")
    assert po_messages(po, whole=True) == ["Eine Nachricht, die über zwei Zeilen geht.",
                                           "Eine einzeilige Nachricht, lang genug."]
    assert po_messages(po) == ["Eine unsichere Übersetzung, die lang genug ist",
                               "Eine einzeilige Nachricht, lang genug."]


def test_chats_render_through_a_real_template() -> None:
    template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>{% endfor %}"
    mix = evaluation_mix()
    texts, problem = render_conversations(template, mix.chats)
    assert problem is None and len(texts) == len(mix.chats)
    chat = mix.text(texts).domains[DOMAIN_KEYS.index("chat")].text
    assert chat.startswith("<|user|>") and chat.count("<|assistant|>") == 2 * len(mix.chats)
    with pytest.raises(ValueError):
        mix.text(texts[1:])


@pytest.mark.parametrize("max_chunks", [4, 8, 16, 32, 64])
def test_every_adaptive_prefix_covers_the_domains_evenly(max_chunks: int) -> None:
    order = window_order([100] * 4, max_chunks)
    assert len(order) == max_chunks
    for prefix in (4, 8, 16, 32, 64):
        if prefix <= max_chunks:
            counts = collections.Counter(d for d, _ in order[:prefix])
            assert set(counts.values()) == {prefix // 4}
    assert [w for d, w in order if d == 2] == list(range(max_chunks // 4))  # in text order
    assert windows_wanted(4, max_chunks) == [max_chunks // 4] * 4


def test_window_order_stops_where_a_domain_runs_out() -> None:
    assert window_order([3, 1, 5], 9) == [(0, 0), (1, 0), (2, 0), (0, 1)]
    assert window_order([5], 3) == [(0, 0), (0, 1), (0, 2)]
    assert windows_wanted(4, 6) == [2, 2, 1, 1]
    assert window_order([2, 2, 1, 1], 6) == window_order([9, 9, 9, 9], 6)


def test_the_written_file_is_what_its_hash_names(tmp_path) -> None:
    text = docs_text()
    assert text.domains[0].text == text_set("evaluation").text
    path = text.write(tmp_path / "evaluation.json")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == text.sha256
    assert EvaluationText.read(path) == text
