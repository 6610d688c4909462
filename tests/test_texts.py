from runners.texts import _prose, corpus, text_set


def test_splits_are_disjoint_and_cover_the_corpus():
    sets = {s: set(text_set(s).text.strip().split("\n\n"))
            for s in ("train", "calibration", "evaluation")}
    assert not sets["train"] & sets["evaluation"]
    assert not sets["train"] & sets["calibration"]
    assert not sets["calibration"] & sets["evaluation"]
    assert sum(len(v) for v in sets.values()) == len(set(corpus()))


def test_evaluation_text_is_english_prose_of_useful_size():
    text = text_set("evaluation").text
    assert len(text) > 50_000
    words = text.split()
    common = sum(w.lower() in {"the", "a", "is", "of", "to", "and", "in"} for w in words)
    assert common / len(words) > 0.1


def test_sha_is_stable_for_same_text():
    assert text_set("evaluation").sha256 == text_set("evaluation").sha256


def test_prose_filter_drops_code_and_headings():
    assert _prose("   x = 1\n   y = 2", 10) is None
    assert _prose("The if statement\n****************", 10) is None
    assert _prose("This sentence is\nwrapped over lines.", 10) == "This sentence is wrapped over lines."
