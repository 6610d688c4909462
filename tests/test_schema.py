"""quantbot.json follows its versioned JSON Schema (runners/quantbot.schema.json) wherever it is
written or read; a record that does not is refused with the place and the fix."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict

import pytest
from test_cards import _run

from runners.errors import QuantbotError
from runners.results import SCHEMA_VERSION, load_run, run_from_dict, validate_run


def _doc() -> dict:
    return asdict(_run())


def test_a_run_round_trips_through_the_schema(tmp_path) -> None:
    run = _run()
    run.save(tmp_path)
    data = json.loads((tmp_path / "quantbot.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert load_run(tmp_path) == run


def _set(doc: dict, path: str, value: object) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize(("path", "value", "where"), [
    ("schema_version", 2, "schema_version"),
    ("method", "GG UF", "method"),
    ("source.repo_id", "a/b/c", "source/repo_id"),
    ("source.n_params", -1, "source/n_params"),
    ("evaluation.text_sha256", "not-a-hash", "evaluation/text_sha256"),
    ("variants", [], "variants"),
    ("variants.0.name", "../escape", "variants/0/name"),
    ("variants.0.quality.same_top_p", 1.5, "variants/0/quality/same_top_p"),
    ("variants.0.size_bytes", "big", "variants/0/size_bytes"),
    ("created", "yesterday", "created"),
    ("baseline", KeyError, "the top level"),
    ("surprise", 1, "the top level"),
])
def test_records_that_break_the_schema_are_refused(path: str, value: object, where: str) -> None:
    with pytest.raises(QuantbotError, match="does not follow its schema at") as info:
        run_from_dict(_set(_doc(), path, value))
    assert where in str(info.value) and "Fix:" in str(info.value)


def test_validate_accepts_what_save_writes() -> None:
    validate_run(json.loads(json.dumps(_doc())))
