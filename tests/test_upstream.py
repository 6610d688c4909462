"""The watcher checks our releases' sources: a source whose weights, tokenizer or chat template
changed gets one comment on its issue (or a new issue) offering /quantize again; a change that
touches none of them, or a second poll, says nothing. Fake Hub and GitHub on 127.0.0.1."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
import yaml
from fakeserver import fresh, json_response, serving
from githubfake import FakeGitHub, fast_tracker
from hubfake import REPO as REPO_PATTERN
from hubfake import FakeHub, git_blob_id
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.config import config_from_dict
from bot.hub.client import hub_api
from bot.hub.poll import poll
from bot.hub.upstream import changed_files
from bot.hub.watcher import HubWatcher
from bot.marker import marker

REPO = "org/quantbot"
SOURCE = "acme/Model-7B"
FILES = {"model.safetensors": b"weights v1", "config.json": b'{"model_type": "llama"}',
         "README.md": b"---\nlicense: apache-2.0\n---\n# Model\n"}


def _etags(files: dict[str, bytes]) -> dict[str, str]:
    return {p: hashlib.sha256(d).hexdigest() if p.endswith(".safetensors") else git_blob_id(d)
            for p, d in files.items() if p != "README.md"}


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    with serving() as s:
        yield s


@pytest.fixture(scope="module")
def gh_server() -> Iterator[HTTPServer]:
    with serving() as s:
        yield s


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, server: HTTPServer) -> FakeHub:
    fake = fresh(FakeHub, server)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setenv("HF_ENDPOINT", fake.base)
    fake.models = []
    fake.add_repo(SOURCE, dict(FILES))
    old = fake.commit_sha(SOURCE)
    card = {"base_model": SOURCE, "quantbot": {"source_revision": old,
                                               "source_files": _etags(FILES)}}
    readme = f"---\n{yaml.safe_dump(card)}---\n# Model-7B - GGUF\n".encode()
    fake.add_repo("qb/Model-7B-GGUF", {"README.md": readme})
    return fake


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch, gh_server: HTTPServer) -> FakeGitHub:
    fake = fresh(FakeGitHub, gh_server)
    monkeypatch.setenv("GITHUB_API_URL", fake.base)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_test")
    return fake


def _poll(gh: FakeGitHub, dry_run: bool = False):
    cfg = config_from_dict({"hub": {"namespace": "qb"}, "github": {"repo": REPO}})
    return poll(cfg, HubWatcher(hub_api(), cfg.hub), fast_tracker(gh, REPO), dry_run=dry_run)


def _change(hub: FakeHub, path: str, data: bytes) -> None:
    hub.repos[SOURCE][path] = data
    if path.endswith(".safetensors"):
        hub.lfs[hashlib.sha256(data).hexdigest()] = data


def test_changed_weights_are_told_once_on_the_models_issue(hub: FakeHub, gh: FakeGitHub) -> None:
    gh.add_issue(REPO, f"Quantize {SOURCE}", f"{marker(SOURCE)}\n", ["candidate"], state="closed")
    assert _poll(gh).upstream == []  # nothing changed yet
    _change(hub, "model.safetensors", b"weights v2")
    report = _poll(gh)
    (change,) = report.upstream
    assert change.source == SOURCE and change.changed == ["model.safetensors"]
    assert change.releases == ["qb/Model-7B-GGUF"] and report.reminded == [1]
    (comment,) = gh.comments[1]
    assert "`model.safetensors`" in comment and "/quantize" in comment
    assert change.new_revision[:12] in comment
    again = _poll(gh)  # same new commit: the issue was already told
    assert again.upstream and again.reminded == [] and len(gh.comments[1]) == 1


def test_a_change_outside_the_watched_files_says_nothing(hub: FakeHub, gh: FakeGitHub) -> None:
    _change(hub, "README.md", b"---\nlicense: mit\n---\n# Better words\n")
    report = _poll(gh)
    assert report.upstream == [] and gh.comments == {}


def test_a_source_without_an_issue_gets_one(hub: FakeHub, gh: FakeGitHub) -> None:
    _change(hub, "tokenizer.json", b'{"added": true}')
    report = _poll(gh)
    assert report.reminded == [1] and marker(SOURCE) in gh.issues[1]["body"]
    assert "tokenizer.json" in gh.issues[1]["body"]


def test_dry_run_reports_and_writes_nothing(hub: FakeHub, gh: FakeGitHub) -> None:
    _change(hub, "config.json", b'{"model_type": "llama", "rope_theta": 1}')
    report = _poll(gh, dry_run=True)
    assert [c.changed for c in report.upstream] == [["config.json"]]
    assert [m for m, _ in gh.requests if m != "GET"] == []


@pytest.mark.parametrize(("recorded", "current", "changed"), [
    ({"a.safetensors": "1"}, {"a.safetensors": "1"}, []),
    ({"a.safetensors": "1"}, {"a.safetensors": "2"}, ["a.safetensors"]),
    ({"a.safetensors": "1"}, {}, ["a.safetensors"]),
    ({}, {"chat_template.jinja": "x"}, ["chat_template.jinja"]),
    ({"README.md": "1"}, {"README.md": "2"}, []),
    ({"sub/model-00001-of-00002.safetensors": "1"}, {"sub/model-00001-of-00002.safetensors": "3"},
     ["sub/model-00001-of-00002.safetensors"]),
])
def test_changed_files(recorded: dict, current: dict, changed: list) -> None:
    from bot.hub.upstream import WATCHED_FILES

    assert changed_files(recorded, current, WATCHED_FILES) == changed


def test_cards_record_what_the_watcher_compares(tmp_path: Path) -> None:
    from dataclasses import replace

    from test_cards import _run

    from bot.cards.data import build_card_data
    from bot.hub.upstream import published_from_card

    run = _run()
    run = replace(run, source=replace(run.source, revision="a" * 40),
                  provenance={"source_files": {"model.safetensors": "e" * 64}})
    meta = yaml.safe_load(build_card_data(run, "qb/Model-7B-GGUF").metadata_yaml)
    found = published_from_card("qb/Model-7B-GGUF", meta)
    assert found is not None and found.revision == "a" * 40
    assert found.files == {"model.safetensors": "e" * 64}


def test_a_source_tree_listing_that_never_ends_is_left_for_the_next_poll(
        hub: FakeHub, gh: FakeGitHub, caplog: pytest.LogCaptureFixture) -> None:
    _change(hub, "model.safetensors", b"weights v2")
    calls = [0]

    def endless(req: Request, repo_id: str, revision: str) -> Response:
        calls[0] += 1  # an empty page pointing to itself, until the test's own guard
        link = {"Link": f'<{hub.base}{req.path}?cursor=x>; rel="next"'} if calls[0] < 60 else {}
        return json_response([], headers=link)

    hub.routes.insert(0, ("GET", re.compile(rf"^/api/models/{REPO_PATTERN}/tree/([^/]+)$"),
                          endless))
    with caplog.at_level(logging.WARNING, logger="bot.hub.upstream"):
        report = _poll(gh, dry_run=True)
    assert report.upstream == [] and calls[0] == 1
    assert f"{SOURCE}: not compared this poll" in caplog.text
    assert "an empty page pointed to another page" in caplog.text
