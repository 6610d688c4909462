import pytest

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
