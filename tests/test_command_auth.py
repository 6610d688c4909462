"""Who may command the bot: the pure screen, and the permission API on a local GitHub."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from githubfake import REPO, comment_event, github, read_outputs, write_event  # noqa: F401

from bot.chatops.auth import Decision, Verdict, confirm, decide_permission, screen
from bot.chatops.event import event_from_dict
from bot.cli.command import command
from bot.github.client import connect


def ev(**kw):
    return event_from_dict(comment_event("/quantize", **kw))


def authorise(event, repo, bot_login=None) -> Decision:
    """The final decision as the handlers make it: the pure screen, then (only when it says
    CHECK) the permission API."""
    first = screen(event, bot_login)
    return confirm(event, repo) if first.verdict is Verdict.CHECK else first


@pytest.mark.parametrize(("association", "verdict"), [
    ("OWNER", Verdict.CHECK), ("MEMBER", Verdict.CHECK), ("COLLABORATOR", Verdict.CHECK),
    ("CONTRIBUTOR", Verdict.REFUSE), ("FIRST_TIMER", Verdict.REFUSE),
    ("FIRST_TIME_CONTRIBUTOR", Verdict.REFUSE), ("MANNEQUIN", Verdict.REFUSE),
    ("NONE", Verdict.REFUSE),
])
def test_screen_by_author_association(association, verdict):
    assert screen(ev(association=association)).verdict is verdict


@pytest.mark.parametrize("kw", [
    {"action": "edited"}, {"action": "deleted"}, {"pull_request": True},
    {"user_type": "Bot"}, {"login": "renovate[bot]"}, {"login": "QuantBot"},
])
def test_ignored_comments(kw):
    assert screen(ev(**kw), bot_login="quantbot").verdict is Verdict.IGNORE


@pytest.mark.parametrize(("permission", "verdict"), [
    ("admin", Verdict.ALLOW), ("maintain", Verdict.ALLOW), ("write", Verdict.ALLOW),
    ("triage", Verdict.REFUSE), ("read", Verdict.REFUSE), ("none", Verdict.REFUSE),
    (None, Verdict.REFUSE),
])
def test_decide_permission(permission, verdict):
    assert decide_permission("alice", permission).verdict is verdict


@pytest.mark.parametrize(("association", "permission", "verdict"), [
    ("OWNER", "admin", Verdict.ALLOW),
    ("MEMBER", "maintain", Verdict.ALLOW),  # the API says "write" for maintainers
    ("COLLABORATOR", "write", Verdict.ALLOW),
    ("COLLABORATOR", "triage", Verdict.REFUSE),
    ("MEMBER", "read", Verdict.REFUSE),
    ("MEMBER", None, Verdict.REFUSE),  # 404: not a collaborator
    ("CONTRIBUTOR", "admin", Verdict.REFUSE),  # association alone refuses, no API call
    ("NONE", "write", Verdict.REFUSE),
])
def test_authorise_against_the_api(github, association, permission, verdict):  # noqa: F811
    if permission:
        github.permissions["alice"] = permission
    repo = connect().withLazy(True).get_repo(REPO)
    assert authorise(ev(association=association), repo).verdict is verdict
    asked = ("GET", f"/repos/{REPO}/collaborators/alice/permission") in github.requests
    assert asked == (association in ("OWNER", "MEMBER", "COLLABORATOR"))


@pytest.mark.parametrize(("association", "permission"), [
    ("NONE", None), ("CONTRIBUTOR", None), ("FIRST_TIME_CONTRIBUTOR", None),
    ("COLLABORATOR", "read"), ("MEMBER", "triage"), ("OWNER", None),
])
def test_a_non_writer_runs_nothing(github, tmp_path, association, permission):  # noqa: F811
    if permission:
        github.permissions["mallory"] = permission
    event = write_event(tmp_path, comment_event("/quantize gguf", login="mallory",
                                                association=association))
    result = CliRunner().invoke(command, ["plan", "--event", str(event)])
    assert result.exit_code == 0, result.output
    outputs = read_outputs(tmp_path / "github_output")
    assert outputs["run"] == "false" and json.loads(outputs["matrix"]) == {"include": []}
    assert outputs["plan"] == "" and outputs["model"] == ""
    assert len(github.bodies()) == 1 and "was not run" in github.bodies()[0]
    assert "@mallory" in github.bodies()[0]
    assert github.reactions == []
    assert not any("actions" in path for _, path in github.requests)


def test_outsider_chatter_is_ignored_silently(github, tmp_path):  # noqa: F811
    event = write_event(tmp_path, comment_event("Nice model!", login="eve", association="NONE"))
    result = CliRunner().invoke(command, ["plan", "--event", str(event)])
    assert result.exit_code == 0, result.output
    assert github.requests == [] and read_outputs(tmp_path / "github_output")["run"] == "false"


@pytest.mark.parametrize("kw", [
    {"action": "edited"}, {"pull_request": True}, {"user_type": "Bot", "login": "quantbot"},
])
def test_ignored_events_make_no_request(github, tmp_path, kw):  # noqa: F811
    event = write_event(tmp_path, comment_event("/quantize", **kw))
    result = CliRunner().invoke(command, ["plan", "--event", str(event)])
    assert result.exit_code == 0, result.output
    assert github.requests == []
