"""Answer agreement (runners/answers.py): the comparison, its intervals and the shipped prompts."""

from __future__ import annotations

import hashlib

import pytest

from runners.answers import (
    compare,
    folded,
    interval,
    pick_prompts,
    plain_text,
    prefix_share,
    prompt_library,
    strip_stop,
    wilson,
)
from runners.calibration_mix import calibration_mix


def test_prefix_share_is_one_only_for_identical_answers() -> None:
    assert prefix_share([1, 2, 3], [1, 2, 3]) == 1.0
    assert prefix_share([1, 2, 3, 4], [1, 2, 9, 9]) == 0.5
    assert prefix_share([1, 2], [1, 2, 3, 4]) == 0.5  # over the longer answer
    assert prefix_share([5], [6]) == 0.0
    assert prefix_share([], []) == 1.0


def test_wilson_interval_is_sound_at_the_edges() -> None:
    low, high = wilson(0, 64)
    assert low == 0.0 and 0.0 < high < 0.1
    low, high = wilson(64, 64)
    assert high == 1.0 and 0.9 < low < 1.0
    low, high = wilson(32, 64)
    assert low < 0.5 < high and high - low == pytest.approx(0.24, abs=0.01)


def test_interval_shrinks_with_more_prompts() -> None:
    few = interval([0.0, 1.0] * 8)
    many = interval([0.0, 1.0] * 64)
    assert few[0] == many[0] == 0.5
    assert (many[2] - many[1]) < (few[2] - few[1]) / 2.5


def test_compare_counts_identical_and_keeps_texts_short() -> None:
    ref = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    got = [[1, 2, 3], [4, 5, 0], [0, 8, 9]]
    answers = compare(["a", "b", "c"], ref, got, ["x" * 500, "y", "z"], 3, "reference")
    assert answers.identical == 1 and answers.prompts == 3
    assert answers.prefix_mean == pytest.approx((1 + 2 / 3 + 0) / 3, abs=1e-4)
    assert answers.prefix_low <= answers.prefix_mean <= answers.prefix_high
    assert [p["identical"] for p in answers.per_prompt] == [True, False, False]
    assert len(answers.per_prompt[0]["text"]) < 500


def test_compare_refuses_mismatched_lists() -> None:
    with pytest.raises(ValueError, match="answers for 2 prompts"):
        compare(["a", "b"], [[1]], [[1], [2]], ["x", "y"], 4, "reference")


def test_clearly_above_needs_separated_intervals() -> None:
    good = compare(list("abcdefgh"), [[1, 2]] * 8, [[1, 2]] * 8, [""] * 8, 2, "r")
    bad = compare(list("abcdefgh"), [[1, 2]] * 8, [[3, 2]] * 8, [""] * 8, 2, "r")
    half = compare(list("ab"), [[1, 2]] * 2, [[1, 2], [3, 2]], [""] * 2, 2, "r")
    assert good.clearly_above(bad)
    assert not bad.clearly_above(good)
    assert not good.clearly_above(half)  # two prompts: the interval covers everything


def test_strip_stop_cuts_at_the_first_end_token() -> None:
    assert strip_stop([5, 6, 2, 7], {2}) == [5, 6]
    assert strip_stop([5, 6], {2}) == [5, 6]


def test_shipped_prompts_cover_what_users_ask() -> None:
    library = prompt_library()
    kinds = {p.kind for p in library.prompts}
    languages = {p.language for p in library.prompts}
    assert len(library.prompts) >= 50
    assert kinds == {"fact", "code", "language", "tool_call"}
    assert len(languages) >= 10
    assert library.license and library.source
    assert len({p.id for p in library.prompts}) == len(library.prompts)


def test_a_smaller_set_keeps_every_kind() -> None:
    picked = pick_prompts(prompt_library().prompts, 16)
    assert len(picked) == 16
    assert {p.kind for p in picked} == {"fact", "code", "language", "tool_call"}


def test_prompts_are_not_calibration_text() -> None:
    """The importance matrix never saw a prompt that files are judged on."""
    mix = calibration_mix()
    seen = {hashlib.sha256(s["text"].encode()).hexdigest() for s in mix.plain}
    seen |= {hashlib.sha256(t["content"].encode()).hexdigest() for c in mix.chats for t in c}
    for prompt in prompt_library().prompts:
        for message in prompt.messages:
            assert hashlib.sha256(message["content"].encode()).hexdigest() not in seen


def test_folded_and_plain_forms() -> None:
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert folded(chat) == [{"role": "user", "content": "S\n\nU"}]
    assert plain_text(chat) == "S\n\nU\n\n"
