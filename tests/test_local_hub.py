import shutil

import pytest
from hubfake import BRANCHES, MAIN_FILES, gptq_folder

from bot.publish.local import LocalHub
from runners.errors import QuantbotError


def _folder(tmp_path, name, files):
    folder = tmp_path / name
    folder.mkdir()
    for rel, text in files.items():
        (folder / rel).write_text(text)
    return folder


def test_publish_places_the_whole_folder(tmp_path):
    src = _folder(tmp_path, "src", {"README.md": "card", "m.Q4_K_M.gguf": "x"})
    result = LocalHub(tmp_path / "hub").publish(src, "quantbot/m-GGUF")
    dest = tmp_path / "hub" / "quantbot" / "m-GGUF"
    assert result.location == str(dest)
    assert sorted(result.uploaded) == ["README.md", "m.Q4_K_M.gguf"]
    assert (dest / "m.Q4_K_M.gguf").read_text() == "x"


def test_republish_replaces_old_files_and_leaves_no_temporaries(tmp_path):
    hub = LocalHub(tmp_path / "hub")
    hub.publish(_folder(tmp_path, "a", {"README.md": "1", "old.gguf": "o"}), "o/r")
    hub.publish(_folder(tmp_path, "b", {"README.md": "2", "new.gguf": "n"}), "o/r")
    dest = tmp_path / "hub" / "o" / "r"
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "new.gguf"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["r"]


def test_folder_without_card_is_refused(tmp_path):
    src = _folder(tmp_path, "src", {"m.gguf": "x"})
    with pytest.raises(QuantbotError, match=r"no README\.md"):
        LocalHub(tmp_path / "hub").publish(src, "o/r")
    assert not (tmp_path / "hub").exists()


@pytest.mark.parametrize("repo_id", ["noslash", "a/b/c", "/x", "o/.hidden"])
def test_bad_repo_ids(tmp_path, repo_id):
    with pytest.raises(QuantbotError):
        LocalHub(tmp_path).repo_path(repo_id)


def _gptq_folder(tmp_path, source="tiny/Tiny-1B"):
    """The default variant at the root, one more in ``.branches/`` (as test_hub_publish's)."""
    return gptq_folder(tmp_path / "out", source)


def test_branches_are_complete_folders_and_republish_as_they_are(tmp_path):
    src = _gptq_folder(tmp_path)
    result = LocalHub(tmp_path / "hub").publish(src, "qb/T-GPTQ")
    main = tmp_path / "hub" / "qb" / "T-GPTQ"
    every = sorted([*MAIN_FILES, "README.md", "quantbot.json"])
    assert sorted(p.name for p in main.iterdir()) == sorted([*every, ".branches"])
    for branch in BRANCHES:
        folder = main / ".branches" / branch  # what `hf download --revision <branch>` gives
        assert sorted(p.name for p in folder.iterdir()) == every
        assert (folder / "model.safetensors").read_bytes() == (
            src / ".branches" / branch / "model.safetensors").read_bytes()
        assert (folder / "README.md").read_text() == (src / "README.md").read_text()
        assert f"{branch}:model.safetensors" in result.uploaded
    assert sorted(p.name for p in main.parent.iterdir()) == ["T-GPTQ"]  # no temporaries

    again = LocalHub(tmp_path / "hub2").publish(main, "qb/T-GPTQ")  # a finished folder itself
    assert sorted(again.uploaded) == sorted(result.uploaded)


def test_another_models_release_is_refused(tmp_path):
    hub = LocalHub(tmp_path / "hub")
    hub.publish(_gptq_folder(tmp_path / "a", "a/Tiny-1B"), "qb/Tiny-1B-GPTQ")
    with pytest.raises(QuantbotError, match=r"already holds a release of a/Tiny-1B.*"
                                            r"--repo-id qb/b_Tiny-1B-GPTQ"):
        hub.publish(_gptq_folder(tmp_path / "b", "b/Tiny-1B"), "qb/Tiny-1B-GPTQ")
    record = tmp_path / "hub" / "qb" / "Tiny-1B-GPTQ" / "quantbot.json"
    assert '"a/Tiny-1B"' in record.read_text()  # untouched
    hub.publish(_gptq_folder(tmp_path / "a2", "a/Tiny-1B"), "qb/Tiny-1B-GPTQ")  # same source


# -- the card-only update ---------------------------------------------------------------------------
CARDS = ["README.md", "quality.png"]
PNG = b"\x89PNG\r\n\x1a\n" + b"plot" * 50


def _cards(tmp_path, published, text="new card", plot=PNG):
    """The record of ``published`` with a card rendered again beside it (as `run-job cards`)."""
    d = tmp_path / "cards"
    d.mkdir(parents=True, exist_ok=True)
    (d / "quantbot.json").write_bytes((published / "quantbot.json").read_bytes())
    (d / "README.md").write_text(text)
    if plot is not None:
        (d / "quality.png").write_bytes(plot)
    return d


def _snapshot(repo):
    """Every file of a local hub repository (branches included): path → (inode, bytes)."""
    return {p.relative_to(repo).as_posix(): (p.stat().st_ino, p.read_bytes())
            for p in sorted(repo.rglob("*")) if p.is_file()}


def test_card_update_replaces_only_the_card_files_on_every_branch(tmp_path):
    hub = LocalHub(tmp_path / "hub")
    src = _gptq_folder(tmp_path)
    hub.publish(src, "qb/T-GPTQ")
    repo = tmp_path / "hub" / "qb" / "T-GPTQ"
    before = _snapshot(repo)
    result = hub.update_cards(_cards(tmp_path, src), "qb/T-GPTQ")
    assert result.uploaded == [*CARDS, *(f"{b}:{p}" for b in BRANCHES for p in CARDS)]
    after = _snapshot(repo)
    branches = ["", *(f".branches/{b}/" for b in BRANCHES)]
    for prefix in branches:
        assert after[f"{prefix}README.md"][1] == b"new card"
        assert after[f"{prefix}quality.png"][1] == PNG
    assert {p: v for p, v in after.items() if p.rsplit("/", 1)[-1] not in CARDS} == {
        p: v for p, v in before.items() if p.rsplit("/", 1)[-1] != "README.md"}  # same inodes
    assert sorted(p.name for p in repo.parent.iterdir()) == ["T-GPTQ"]  # no temporaries
    assert (src / "README.md").read_text() != "new card"  # the published folder's own card kept


def test_card_update_is_idempotent(tmp_path):
    hub = LocalHub(tmp_path / "hub")
    src = _gptq_folder(tmp_path)
    hub.publish(src, "qb/T-GPTQ")
    cards = _cards(tmp_path, src)
    hub.update_cards(cards, "qb/T-GPTQ")
    repo = tmp_path / "hub" / "qb" / "T-GPTQ"
    before, inode = _snapshot(repo), repo.stat().st_ino
    again = hub.update_cards(cards, "qb/T-GPTQ")
    assert again.uploaded == [] and len(again.skipped) == 6
    assert _snapshot(repo) == before and repo.stat().st_ino == inode  # not even swapped


def test_card_update_refusals(tmp_path):
    hub = LocalHub(tmp_path / "hub")
    src = _gptq_folder(tmp_path)
    cards = _cards(tmp_path, src)
    with pytest.raises(QuantbotError, match=r"qb/T-GPTQ does not exist on .*publish the repository"):
        hub.update_cards(cards, "qb/T-GPTQ")
    hub.publish(_folder(tmp_path, "theirs", {"README.md": "theirs", "m.gguf": "x"}), "qb/Theirs")
    with pytest.raises(QuantbotError, match=r"\(branch main\) holds no quantbot.json: quantbot did"):
        hub.update_cards(cards, "qb/Theirs")
    assert (tmp_path / "hub" / "qb" / "Theirs" / "README.md").read_text() == "theirs"

    hub.publish(src, "qb/T-GPTQ")
    other = gptq_folder(tmp_path / "other", "tiny/Tiny-1B", tools={"quantizer": "another run"})
    with pytest.raises(QuantbotError, match=r"holds another quantbot.json than the one this card"):
        hub.update_cards(_cards(tmp_path / "o", other), "qb/T-GPTQ")
    branch = next(iter(BRANCHES))
    shutil.rmtree(tmp_path / "hub" / "qb" / "T-GPTQ" / ".branches" / branch)
    with pytest.raises(QuantbotError, match=rf"\(branch {branch}\) does not exist"):
        hub.update_cards(cards, "qb/T-GPTQ")
    assert (tmp_path / "hub" / "qb" / "T-GPTQ" / "README.md").read_text() == \
        (src / "README.md").read_text()
