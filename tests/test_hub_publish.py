"""``quantbot publish`` to a fake Hub on 127.0.0.1 through the real huggingface_hub client:
one commit per branch, resume after a failure, size limit and splitting, token hygiene, branches
of a transformers-family folder, and no release ever overwritten by another model's; the
card-only update and ``run-job cards``, which put every format of a release on each card."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from click.testing import CliRunner
from fakeserver import fresh, serving
from hubfake import (
    BRANCHES,
    CARD,
    MAIN_FILES,
    RELEASE,
    FakeHub,
    FastClock,
    fast_hf_clock,
    gptq_folder,
    release_jobs,
)
from pytest_httpserver import HTTPServer
from workflowjobs import hand_over

from bot.cli.publish import command as publish_command
from bot.cli.run_job import command as run_job
from bot.hub.client import hub_api
from bot.publish.hub import HubPublisher
from runners.errors import QuantbotError

TOKEN = "hf_TestSecretToken1234567890abcdef"
REPO = "qb/Tiny-1B-GGUF"


@pytest.fixture(scope="module")
def hub_server() -> Iterator[HTTPServer]:
    with serving() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_xet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where hf_xet is installed huggingface_hub would upload through Xet storage, which the fake
    does not speak; HF_HUB_DISABLE_XET (read at import) selects the classic LFS protocol."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, hub_server: HTTPServer) -> FakeHub:
    fake = fresh(FakeHub, hub_server)
    # huggingface_hub's user-agent telemetry would fetch {import-time endpoint}/api/agent-harnesses
    # (huggingface.co): keep every request on 127.0.0.1, as HF_HUB_DISABLE_TELEMETRY=1 does.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setenv("HF_ENDPOINT", fake.base)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return fake


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FastClock:
    return fast_hf_clock(monkeypatch)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A repo folder as `quantbot quantize` leaves it: OUT/<owner>/<name>-GGUF/."""
    d = tmp_path / "out" / "tiny" / "Tiny-1B-GGUF"
    d.mkdir(parents=True)
    (d / "README.md").write_text(CARD.format(base="tiny/Tiny-1B", title="Tiny-1B GGUF"))
    (d / "tiny-1b.Q4_K_M.gguf").write_bytes(b"GGUF" + b"\x01" * 300)
    (d / "tiny-1b.Q8_0.gguf").write_bytes(b"GGUF" + b"\x02" * 500)
    (d / ".cache").mkdir()
    (d / ".cache" / "junk").write_text("not published")
    return d


def publisher(**kw: object) -> HubPublisher:
    kw.setdefault("retry_wait_s", 0)
    kw.setdefault("sleep", lambda s: None)
    return HubPublisher(hub_api(), **kw)  # type: ignore[arg-type]


ALL = ["README.md", "tiny-1b.Q4_K_M.gguf", "tiny-1b.Q8_0.gguf"]


def test_one_commit_per_repo(hub: FakeHub, folder: Path) -> None:
    result = publisher(private=True).publish(folder, REPO)
    assert result.uploaded == ALL and result.skipped == []
    assert result.location == f"{hub.base}/{REPO}"
    assert hub.visibility[REPO] == "private"
    assert hub.commits[REPO] == [ALL]  # one commit, the whole set
    assert hub.repos[REPO]["tiny-1b.Q8_0.gguf"] == (folder / "tiny-1b.Q8_0.gguf").read_bytes()
    # create, tree, validate README yaml, preupload, LFS batch, 2 x (PUT + verify), commit
    calls = [(m, p.split("?")[0]) for m, p in hub.requests]
    oids = [hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in ALL[1:]]
    assert calls[:5] == [
        ("POST", "/api/repos/create"), ("GET", f"/api/models/{REPO}/tree/main"),
        ("POST", "/api/validate-yaml"), ("POST", f"/api/models/{REPO}/preupload/main"),
        ("POST", f"/{REPO}.git/info/lfs/objects/batch")]
    assert sorted(calls[5:9]) == sorted([*(("PUT", f"/fake-lfs/{o}") for o in oids),
                                         ("POST", "/fake-lfs-verify"),
                                         ("POST", "/fake-lfs-verify")])
    assert calls[9:] == [("POST", f"/api/models/{REPO}/commit/main")]
    assert len(hub.requests) == 10


def test_rerun_uploads_only_what_changed(hub: FakeHub, folder: Path) -> None:
    publisher().publish(folder, REPO)
    hub.requests.clear()
    same = publisher().publish(folder, REPO)
    assert same.uploaded == [] and same.skipped == ALL
    assert len(hub.commits[REPO]) == 1  # no empty commit
    # create (409), tree, the card's base_model (same source): nothing else
    assert [(m, p.split("?")[0]) for m, p in hub.requests] == [
        ("POST", "/api/repos/create"), ("GET", f"/api/models/{REPO}/tree/main"),
        ("GET", f"/api/models/{REPO}")]

    (folder / "README.md").write_text(CARD.format(base="tiny/Tiny-1B", title="Tiny-1B GGUF v2"))
    (folder / "tiny-1b.Q6_K.gguf").write_bytes(b"GGUF" + b"\x03" * 400)
    changed = publisher().publish(folder, REPO)
    assert changed.uploaded == ["README.md", "tiny-1b.Q6_K.gguf"]
    assert changed.skipped == ["tiny-1b.Q4_K_M.gguf", "tiny-1b.Q8_0.gguf"]
    assert hub.commits[REPO][-1] == ["README.md", "tiny-1b.Q6_K.gguf"]
    assert hub.count("PUT", "/fake-lfs/") == 1  # the two unchanged GGUFs were not re-sent


def test_failure_in_the_middle_then_resume(hub: FakeHub, folder: Path) -> None:
    oid = hashlib.sha256((folder / "tiny-1b.Q8_0.gguf").read_bytes()).hexdigest()
    hub.fail("PUT", f"/fake-lfs/{oid}", 403, body=b"<Error>Request has expired</Error>")
    with pytest.raises(QuantbotError, match=f"publish {REPO}"):
        publisher().publish(folder, REPO)
    assert hub.commits[REPO] == []  # nothing half-done: the repo shows no part of the set
    assert set(hub.repos[REPO]) == {".gitattributes"}

    result = publisher().publish(folder, REPO)
    assert result.uploaded == ALL and hub.commits[REPO] == [ALL]
    q4 = hashlib.sha256((folder / "tiny-1b.Q4_K_M.gguf").read_bytes()).hexdigest()
    assert hub.count("PUT", f"/fake-lfs/{q4}") == 1  # sent by the first run, reused


def test_transient_commit_failure_is_retried(hub: FakeHub, folder: Path) -> None:
    hub.fail("POST", "/commit/", 503)
    hub.fail("POST", "/api/repos/create", 429, headers={"Retry-After": "0"})
    result = publisher().publish(folder, REPO)
    assert result.uploaded == ALL and hub.commits[REPO] == [ALL]


def test_lost_commit_answer_does_not_commit_twice(hub: FakeHub, folder: Path) -> None:
    hub.fail("POST", "/commit/", 502, after=True)  # committed, but the answer is lost
    result = publisher().publish(folder, REPO)
    assert hub.commits[REPO] == [ALL]  # the retry re-read the tree and found it all there
    assert result.uploaded == [] and result.skipped == ALL


def test_persistent_5xx_is_a_clear_bounded_error(hub: FakeHub, folder: Path,
                                                 clock: FastClock) -> None:
    hub.fail("POST", "/commit/", 500, times=100)
    slept: list[float] = []
    with pytest.raises(QuantbotError, match=r"kept failing to publish .*HTTP 500.*rerun resumes"):
        HubPublisher(hub_api(), retries=2, retry_wait_s=1, sleep=slept.append).publish(folder, REPO)
    assert slept == [1, 2] and hub.count("POST", "/commit/") == 3
    assert hub.commits[REPO] == []


@pytest.mark.parametrize("name", ["weights.bin", "big.gguf"])
def test_oversized_file_is_refused_before_any_request(hub: FakeHub, folder: Path,
                                                      name: str) -> None:
    (folder / name).write_bytes(b"\0" * 2000)
    with pytest.raises(QuantbotError, match=rf"{name} is 2\.00 kB, over the Hub's per-file limit of 1\.00"
                                            rf" kB. Fix: quantize again with --split-size"):
        publisher(max_file_bytes=1000).publish(folder, REPO)
    assert hub.requests == []


def test_collection(hub: FakeHub, folder: Path) -> None:
    publisher(collection=True).publish(folder, REPO)
    publisher(collection=True).publish(folder, REPO)  # idempotent
    (coll,) = hub.collections.values()
    assert coll["title"] == "Tiny-1B quantized" and coll["namespace"] == "qb"
    assert [i["id"] for i in coll["items"]] == [REPO]


def test_no_token_is_refused_before_any_request(hub: FakeHub, folder: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.delenv("HF_TOKEN")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(c, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    with pytest.raises(QuantbotError, match="set HF_TOKEN"):
        publisher().publish(folder, REPO)
    assert hub.requests == []


def test_token_is_never_printed_or_logged(hub: FakeHub, folder: Path,
                                          caplog: pytest.LogCaptureFixture,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    hub.fail("POST", "/commit/", 401, body={"error": "Invalid credentials"})
    result = CliRunner().invoke(publish_command, [str(folder), "--to", "hub"])
    assert isinstance(result.exception, QuantbotError)  # bot.cli's group prints it in one line
    assert "HTTP 401" in str(result.exception) and "set HF_TOKEN" in str(result.exception)
    ok = CliRunner().invoke(publish_command, [str(folder), "--to", "hub", "--collection"])
    assert ok.exit_code == 0, ok.output
    assert f"uploaded 3: {', '.join(ALL)}" in ok.output
    captured = capsys.readouterr()
    for text in (result.output, str(result.exception), ok.output, caplog.text, captured.out,
                 captured.err):
        assert TOKEN not in text and TOKEN[3:12] not in text
    assert any(h.get("Authorization") == f"Bearer {TOKEN}" for h in hub.headers_seen)


def test_cli_publish_to_hub_uses_namespace(hub: FakeHub, folder: Path, tmp_path: Path) -> None:
    (tmp_path / "quantbot.toml").write_text('[hub]\nnamespace = "my-org"\n')
    result = CliRunner().invoke(publish_command, [str(folder), "--to", "hub", "--private",
                                                  "--config", str(tmp_path / "quantbot.toml")])
    assert result.exit_code == 0, result.output
    assert "my-org/Tiny-1B-GGUF -> " in result.output
    assert hub.visibility["my-org/Tiny-1B-GGUF"] == "private"
    again = CliRunner().invoke(publish_command, [str(folder.parent), "--to", "hub",
                                                 "--config", str(tmp_path / "quantbot.toml")])
    assert "skipped 3 (already there, unchanged)" in again.output


def test_cli_publish_to_local_folder(folder: Path, tmp_path: Path) -> None:
    dest = tmp_path / "localhub"
    result = CliRunner().invoke(publish_command, [str(folder), "--to", str(dest)])
    assert result.exit_code == 0, result.output
    assert (dest / "tiny" / "Tiny-1B-GGUF" / "tiny-1b.Q8_0.gguf").is_file()
    other = CliRunner().invoke(publish_command, [str(folder), "--to", str(dest),
                                                 "--repo-id", "me/Renamed-GGUF"])
    assert other.exit_code == 0 and (dest / "me" / "Renamed-GGUF" / "README.md").is_file()


def test_real_gguf_split_by_llama_cpp_and_listed_in_card(hub: FakeHub, tmp_path: Path,
                                                         tiny_model: Path, toolchain) -> None:
    """The real pipeline splits with llama-gguf-split where it makes the file (--split-size 1M);
    the publisher publishes the parts under a 1 MB limit as they are, the card listing them."""
    import json

    from bot.cli import main

    made = CliRunner().invoke(main, [
        "quantize", str(tiny_model), "--out", str(tmp_path / "local"), "--work",
        str(tmp_path / "work"), "--repo-id", "t/tiny", "gguf=Q8_0", "--ctx", "64",
        "--chunks", "4", "--answers", "2", "--answer-tokens", "4", "--split-size", "1M"])
    assert made.exit_code == 0, made.output
    folder = tmp_path / "local" / "quantbot" / "tiny-GGUF"
    assert not (folder / "tiny.Q8_0.gguf").exists()
    result = publisher(max_file_bytes=1_000_000).publish(folder, REPO)
    parts = [p for p in result.uploaded if p.endswith(".gguf")]
    assert len(parts) >= 2 and all("tiny.Q8_0-0000" in p for p in parts)
    assert "tiny.Q8_0.gguf" not in hub.repos[REPO]
    card = hub.repos[REPO]["README.md"].decode()
    assert all(p in card for p in parts) and "download all parts" in card
    record = json.loads(hub.repos[REPO]["quantbot.json"])
    assert record["variants"][0]["files"] == parts


# -- branches: a transformers-family folder -------------------------------------------------------
GPTQ = "qb/Tiny-1B-GPTQ"
SHARED = ["README.md", "quantbot.json"]


def test_branches_one_commit_each_from_the_initial_commit(hub: FakeHub, tmp_path: Path) -> None:
    folder = gptq_folder(tmp_path)
    result = publisher().publish(folder, GPTQ)
    assert hub.branches(GPTQ) == ["main", *BRANCHES]
    assert hub.commits[GPTQ] == [sorted([*MAIN_FILES, *SHARED])]  # one commit on main
    for branch, fill in BRANCHES.items():
        key = f"{GPTQ}@{branch}"
        assert hub.commits[key] == [sorted([*MAIN_FILES, *SHARED])]  # one commit per branch
        assert hub.deleted[key] == [[]]  # started empty: never showed main's files
        assert set(hub.repos[key]) == {".gitattributes", *MAIN_FILES, *SHARED}
        assert hub.repos[key]["model.safetensors"] == b"model.safetensors" + bytes([fill]) * 200
        assert hub.repos[key]["README.md"] == hub.repos[GPTQ]["README.md"]  # the same card
        assert hub.lineage[key][:-1] == hub.lineage[GPTQ][:1]  # from the initial commit
    assert hub.repos[GPTQ]["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    assert "gptq-8bit-128g-actorder:model.safetensors" in result.uploaded
    assert len(result.uploaded) == 3 * 5 and result.skipped == [] and result.deleted == []
    assert hub.count("GET", "/refs$") == 1 and hub.count("GET", "/commits/main$") == 1


def test_branches_rerun_uploads_nothing_then_only_what_changed(hub: FakeHub,
                                                               tmp_path: Path) -> None:
    folder = gptq_folder(tmp_path)
    publisher().publish(folder, GPTQ)
    hub.requests.clear()
    again = publisher().publish(folder, GPTQ)
    assert again.uploaded == [] and again.deleted == [] and len(again.skipped) == 15
    assert hub.count("POST", "/commit/") == 0 and hub.count("PUT", "/fake-lfs/") == 0
    assert hub.count("POST", "/branch/") == 0  # the branches exist

    branch = "gptq-8bit-128g-actorder"
    (folder / ".branches" / branch / "model.safetensors").write_bytes(b"requantized" * 30)
    (folder / ".branches" / branch / "tokenizer.json").unlink()
    changed = publisher().publish(folder, GPTQ)
    assert changed.uploaded == [f"{branch}:model.safetensors"]
    assert changed.deleted == [f"{branch}:tokenizer.json"]
    assert [len(hub.commits[k]) for k in (GPTQ, *(f"{GPTQ}@{b}" for b in BRANCHES))] == [1, 1, 2]
    assert "tokenizer.json" not in hub.repos[f"{GPTQ}@{branch}"]


def test_branch_failure_leaves_it_empty_and_the_rerun_resumes(hub: FakeHub,
                                                              tmp_path: Path) -> None:
    folder = gptq_folder(tmp_path)
    branch = "gptq-8bit-128g-actorder"
    hub.fail("POST", f"/commit/{branch}$", 500, times=100)
    with pytest.raises(QuantbotError, match=f"publish {GPTQ}"):
        publisher(retries=1).publish(folder, GPTQ)
    assert set(hub.repos[f"{GPTQ}@{branch}"]) == {".gitattributes"}  # nothing of another variant
    hub.faults.clear()
    result = publisher().publish(folder, GPTQ)
    assert all(p.startswith(f"{branch}:") for p in result.uploaded) and len(result.uploaded) == 5
    assert len(hub.commits[f"{GPTQ}@{branch}"]) == 1 and len(hub.commits[GPTQ]) == 1


def test_main_mirrors_the_folder(hub: FakeHub, folder: Path) -> None:
    publisher().publish(folder, REPO)
    (folder / "tiny-1b.Q8_0.gguf").unlink()
    result = publisher().publish(folder, REPO)
    assert result.deleted == ["tiny-1b.Q8_0.gguf"] and result.uploaded == []
    assert set(hub.repos[REPO]) == {".gitattributes", "README.md", "tiny-1b.Q4_K_M.gguf"}


@pytest.mark.parametrize("bad", ["main", "-x", "a b", "x.lock"])
def test_bad_branch_folder_is_refused_before_any_request(hub: FakeHub, tmp_path: Path,
                                                         bad: str) -> None:
    folder = gptq_folder(tmp_path)
    (folder / ".branches" / bad).mkdir()
    (folder / ".branches" / bad / "config.json").write_text("{}")
    with pytest.raises(QuantbotError, match="is not a branch folder"):
        publisher().publish(folder, GPTQ)
    assert hub.requests == []


def test_oversized_file_in_a_branch_is_named_with_its_branch(hub: FakeHub,
                                                             tmp_path: Path) -> None:
    folder = gptq_folder(tmp_path)
    (folder / ".branches" / "gptq-4bit-32g-actorder" / "model.safetensors").write_bytes(
        b"\0" * 20_000)
    with pytest.raises(QuantbotError, match=r"gptq-4bit-32g-actorder:model\.safetensors is 20\.00 kB"):
        publisher(max_file_bytes=10_000).publish(folder, GPTQ)
    assert hub.requests == []


# -- a release is never overwritten by another model's ----------------------------------------------
def test_another_models_release_is_refused_with_the_fix(hub: FakeHub, tmp_path: Path) -> None:
    hub.add_repo(GPTQ, {"README.md": CARD.format(base="a/Tiny-1B", title="A's").encode(),
                        "model.safetensors": b"theirs"})
    folder = gptq_folder(tmp_path, source="b/Tiny-1B")
    with pytest.raises(QuantbotError) as err:
        publisher().publish(folder, GPTQ)
    text = str(err.value)
    assert f"{GPTQ} already holds a release of a/Tiny-1B; this is a release of b/Tiny-1B" in text
    assert "Fix: publish it as qb/b_Tiny-1B-GPTQ: `quantbot publish FOLDER --to hub --repo-id " \
           "qb/b_Tiny-1B-GPTQ`" in text
    assert hub.count("POST", "/commit/") == 0 and hub.count("POST", "/branch/") == 0
    assert hub.repos[GPTQ]["model.safetensors"] == b"theirs"
    assert hub.count("POST", "/api/repos/create") == 1  # refused, not retried

    ok = publisher().publish(folder, "qb/b_Tiny-1B-GPTQ")  # the fix works
    assert len(ok.uploaded) == 15


def test_files_without_a_card_are_not_overwritten(hub: FakeHub, folder: Path) -> None:
    hub.add_repo(REPO, {"notes.txt": b"someone's"})
    with pytest.raises(QuantbotError, match=r"files whose card names no base_model.*"
                                            r"qb/tiny_Tiny-1B-GGUF"):
        publisher().publish(folder, REPO)
    assert hub.commits[REPO] == []


def test_same_source_and_empty_repo_are_published(hub: FakeHub, folder: Path) -> None:
    hub.add_repo(REPO)  # created by an earlier run whose commit failed: .gitattributes only
    assert publisher().publish(folder, REPO).uploaded == ALL
    assert hub.count("GET", f"^/api/models/{REPO}$") == 0  # nothing there to compare with
    hub.add_repo("qb/Other-GGUF", {"README.md": CARD.format(base="tiny/Tiny-1B", title="x")
                                   .encode()})
    assert publisher().publish(folder, "qb/Other-GGUF").uploaded == ALL


# -- the card-only update: README.md and quality.png on every branch, nothing else ----------------
CARD_FILES = ["README.md", "quality.png"]
PNG = b"\x89PNG\r\n\x1a\n" + b"plot" * 50


def card_folder(tmp_path: Path, published: Path, text: str = "new card",
                plot: bytes | None = PNG) -> Path:
    """The record of ``published`` with a card rendered again beside it (as `run-job cards`)."""
    d = tmp_path / "cards" / published.name
    d.mkdir(parents=True, exist_ok=True)
    (d / "quantbot.json").write_bytes((published / "quantbot.json").read_bytes())
    (d / "README.md").write_text(CARD.format(base="tiny/Tiny-1B", title=text))
    if plot is not None:
        (d / "quality.png").write_bytes(plot)
    return d


def _keys(repo_id: str) -> list[str]:
    return [repo_id, *(f"{repo_id}@{b}" for b in BRANCHES)]


def test_card_update_keeps_every_file_and_branch_in_one_commit_each(hub: FakeHub,
                                                                   tmp_path: Path) -> None:
    folder = gptq_folder(tmp_path)
    publisher().publish(folder, GPTQ)
    before = {k: dict(hub.repos[k]) for k in _keys(GPTQ)}
    hub.requests.clear()
    result = publisher().update_cards(card_folder(tmp_path, folder), GPTQ)
    assert result.uploaded == [*CARD_FILES, *(f"{b}:{p}" for b in BRANCHES for p in CARD_FILES)]
    assert result.skipped == [] and result.deleted == []
    assert hub.branches(GPTQ) == ["main", *BRANCHES]
    for key in _keys(GPTQ):
        assert hub.commits[key][-1] == CARD_FILES and hub.deleted[key][-1] == []
        assert len(hub.commits[key]) == 2  # the publish, then one card commit
        assert hub.repos[key]["quality.png"] == PNG
        assert "# new card" in hub.repos[key]["README.md"].decode()
        kept = {p: d for p, d in hub.repos[key].items() if p not in CARD_FILES}
        assert kept == {p: d for p, d in before[key].items() if p != "README.md"}
    assert hub.count("POST", "/commit/") == 3 and hub.count("PUT", "/fake-lfs/") == 0
    assert hub.count("POST", "/branch/") == 0 and hub.count("POST", "/api/repos/create") == 0


def test_card_update_is_idempotent_and_commits_only_what_changed(hub: FakeHub,
                                                                 tmp_path: Path) -> None:
    folder = gptq_folder(tmp_path)
    publisher().publish(folder, GPTQ)
    cards = card_folder(tmp_path, folder)
    publisher().update_cards(cards, GPTQ)
    hub.requests.clear()
    again = publisher().update_cards(cards, GPTQ)
    assert again.uploaded == [] and len(again.skipped) == 6
    assert hub.count("POST", "/commit/") == 0 and [len(hub.commits[k]) for k in _keys(GPTQ)] == [2] * 3
    # refs, then one top-level listing per branch: nothing else
    assert [m for m, _ in hub.requests] == ["GET"] * 4

    card_folder(tmp_path, folder, text="newer card")  # the plot is the same
    changed = publisher().update_cards(cards, GPTQ)
    assert changed.uploaded == ["README.md", *(f"{b}:README.md" for b in BRANCHES)]
    assert all(hub.commits[k][-1] == ["README.md"] for k in _keys(GPTQ))


def test_card_update_without_a_plot_leaves_the_published_one(hub: FakeHub, tmp_path: Path) -> None:
    """A card of one format shows no plot: only README.md is put, nothing is deleted."""
    publisher().publish(gptq_folder(tmp_path), GPTQ)
    folder = tmp_path / "Tiny-1B-GPTQ"
    result = publisher().update_cards(card_folder(tmp_path / "a", folder, plot=None), GPTQ)
    assert result.uploaded == ["README.md", *(f"{b}:README.md" for b in BRANCHES)]
    assert all("quality.png" not in hub.repos[k] for k in _keys(GPTQ))


def test_card_update_commit_answer_lost_commits_once(hub: FakeHub, tmp_path: Path) -> None:
    folder = gptq_folder(tmp_path)
    publisher().publish(folder, GPTQ)
    hub.fail("POST", "/commit/main$", 502, after=True)  # committed, but the answer is lost
    result = publisher().update_cards(card_folder(tmp_path, folder), GPTQ)
    assert [len(hub.commits[k]) for k in _keys(GPTQ)] == [2, 2, 2]  # the retry found main done
    assert result.skipped == CARD_FILES


def test_card_update_refuses_a_missing_repository(hub: FakeHub, tmp_path: Path) -> None:
    folder = gptq_folder(tmp_path)
    with pytest.raises(QuantbotError, match=r"qb/Tiny-1B-GPTQ does not exist on the Hub.*"
                                            r"Fix: publish the repository first"):
        publisher().update_cards(card_folder(tmp_path, folder), GPTQ)
    assert GPTQ not in hub.repos and hub.count("POST", "") == 0


def test_card_update_refuses_a_repository_quantbot_did_not_publish(hub: FakeHub,
                                                                    tmp_path: Path) -> None:
    hub.add_repo(GPTQ, {"README.md": CARD.format(base="tiny/Tiny-1B", title="theirs").encode(),
                        "model.safetensors": b"theirs"})
    cards = card_folder(tmp_path, gptq_folder(tmp_path))
    with pytest.raises(QuantbotError, match=r"\(branch main\) holds no quantbot.json: quantbot did "
                                            r"not publish it.*Fix: "):
        publisher().update_cards(cards, GPTQ)
    assert hub.commits[GPTQ] == [] and b"theirs" in hub.repos[GPTQ]["README.md"]


def test_card_update_refuses_another_run_or_a_missing_branch(hub: FakeHub, tmp_path: Path) -> None:
    folder = gptq_folder(tmp_path)
    publisher().publish(folder, GPTQ)
    other = gptq_folder(tmp_path / "other", source="tiny/Tiny-1B", tools={"quantizer": "x"})
    with pytest.raises(QuantbotError, match=r"holds another quantbot.json than the one this card"):
        publisher().update_cards(card_folder(tmp_path / "o", other), GPTQ)
    branch = next(iter(BRANCHES))
    del hub.repos[f"{GPTQ}@{branch}"]
    with pytest.raises(QuantbotError, match=rf"\(branch {branch}\) does not exist.*run-job publish"):
        publisher().update_cards(card_folder(tmp_path, folder), GPTQ)
    assert [len(hub.commits[k]) for k in _keys(GPTQ) if k in hub.repos] == [1, 1]  # untouched


def test_card_update_needs_a_record_and_a_card(hub: FakeHub, tmp_path: Path) -> None:
    cards = card_folder(tmp_path, gptq_folder(tmp_path))
    (cards / "README.md").unlink()
    with pytest.raises(QuantbotError, match=r"has no README.md.*quantbot card FOLDER"):
        publisher().update_cards(cards, GPTQ)
    (cards / "quantbot.json").unlink()
    with pytest.raises(QuantbotError, match=r"has no quantbot.json"):
        publisher().update_cards(cards, GPTQ)
    assert hub.requests == []


def test_run_job_cards_puts_every_format_on_every_card_of_a_release(hub: FakeHub,
                                                                    tmp_path: Path) -> None:
    """A three-format /quantize on GitHub: each method job publishes its own repository, whose
    card knows one format, and hands over its records as the workflow does; the report job's
    `run-job cards` renders every card again from those records alone, with the table of all
    formats and the plot, the very cards one local run of the three makes, and commits only
    README.md and quality.png, one commit per branch, once."""
    from bot.pipeline import write_release_cards

    jobs = release_jobs(tmp_path / "jobs")
    report = tmp_path / "report"
    for method, results in jobs.items():
        ok = CliRunner().invoke(run_job, ["publish", "--results", str(results)])
        assert ok.exit_code == 0, ok.output
        hand_over(results.parent, report, method)
    repos = {m: f"qb/{name}" for m, (name, _) in RELEASE.items()}
    keys = [repos["gguf"], *_keys(repos["gptq"]), repos["nf4"]]
    assert not any(b"## Every format" in hub.repos[k]["README.md"] for k in keys)
    before = {k: dict(hub.repos[k]) for k in keys}

    ok = CliRunner().invoke(run_job, ["cards", "--results", str(report)])
    assert ok.exit_code == 0, (ok.output, ok.exception)
    local = [(repos[m], results / repos[m]) for m, results in jobs.items()]
    write_release_cards(local)  # what `quantbot quantize ... gguf gptq nf4` renders in one run
    for key in keys:
        card = hub.repos[key]["README.md"].decode()
        assert "## Every format of this release" in card
        assert "![KL divergence against file size for every variant of this release]" \
               "(quality.png)" in card
        for method, (_, variants) in RELEASE.items():
            label = {"gguf": "GGUF", "gptq": "GPTQ", "nf4": "NF4"}[method]
            assert all(f"| {label} | [{v}](" in card for v in variants), (label, card)
            assert f"[{repos[method]}](https://huggingface.co/{repos[method]})" in card
        assert hub.repos[key]["quality.png"].startswith(b"\x89PNG\r\n")
        repo_id = key.split("@")[0]
        folder = dict(local)[repo_id]
        assert card == (folder / "README.md").read_text()
        assert hub.repos[key]["quality.png"] == (folder / "quality.png").read_bytes()
        assert hub.commits[key][-1] == CARD_FILES and len(hub.commits[key]) == 2
        assert {p: d for p, d in hub.repos[key].items() if p not in CARD_FILES} == {
            p: d for p, d in before[key].items() if p != "README.md"}
    assert hub.branches(repos["gptq"]) == ["main", *BRANCHES]

    again = CliRunner().invoke(run_job, ["cards", "--results", str(report)])
    assert again.exit_code == 0 and again.output.count("unchanged") == 3, again.output
    assert all(len(hub.commits[k]) == 2 for k in keys)


def test_run_job_cards_of_one_format_changes_nothing(hub: FakeHub, tmp_path: Path) -> None:
    results = release_jobs(tmp_path / "jobs")["gptq"]
    CliRunner().invoke(run_job, ["publish", "--results", str(results)])
    hand_over(results.parent, tmp_path / "report", "gptq")
    hub.requests.clear()
    ok = CliRunner().invoke(run_job, ["cards", "--results", str(tmp_path / "report")])
    assert ok.exit_code == 0 and "the only format of its release" in ok.output
    assert hub.requests == []
