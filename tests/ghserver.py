"""A fake GitHub REST API on 127.0.0.1 for the command tests (pytest-httpserver).

It answers the endpoints the bot calls with JSON shaped like GitHub's REST docs and records
every request, so tests assert on what the real PyGithub sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

REPO = "acme/quant-zoo"
BOT = "github-actions[bot]"


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


def _user(login: str, kind: str = "User") -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10**7, "type": kind,
            "url": f"https://api.github.com/users/{login}"}


@dataclass
class FakeGitHub:
    """State of one repository: collaborators' permissions, comments, reactions, runs."""

    server: HTTPServer
    repo: str = REPO
    permissions: dict[str, str] = field(default_factory=dict)  # login -> admin/write/read/none
    comments: list[dict[str, Any]] = field(default_factory=list)
    reactions: list[tuple[int, str]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def install(self) -> FakeGitHub:
        base = f"/repos/{self.repo}"
        routes = [
            ("GET", rf"^{base}/collaborators/([^/]+)/permission$", self._permission),
            ("POST", rf"^{base}/issues/(\d+)/comments$", self._create_comment),
            ("POST", rf"^{base}/issues/comments/(\d+)/reactions$", self._react),
            ("GET", rf"^{base}/actions/workflows/([^/]+)/runs$", self._list_runs),
            ("POST", rf"^{base}/actions/runs/(\d+)/cancel$", self._cancel),
        ]
        for method, pattern, handler in routes:
            self.server.expect_request(re.compile(pattern), method=method).respond_with_handler(
                self._recorded(pattern, handler))
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._unknown)
        return self

    def _recorded(self, pattern: str, handler):
        def respond(request: Request) -> Response:
            self.requests.append((request.method, request.path))
            match = re.match(pattern, request.path)
            assert match is not None
            return handler(request, *match.groups())

        return respond

    def _unknown(self, request: Request) -> Response:
        self.requests.append((request.method, request.path))
        return _json({"message": "Not Found",
                      "documentation_url": "https://docs.github.com/rest"}, 404)

    # -- endpoints ---------------------------------------------------------------------------
    def _permission(self, request: Request, login: str) -> Response:
        if login not in self.permissions:
            return _json({"message": "Not Found"}, 404)
        permission = self.permissions[login]
        legacy = {"maintain": "write", "triage": "read"}.get(permission, permission)
        return _json({"permission": legacy, "role_name": permission, "user": _user(login)})

    def _create_comment(self, request: Request, number: str) -> Response:
        body = request.get_json()["body"]
        comment_id = 9000 + len(self.comments)
        comment = {
            "id": comment_id, "node_id": f"IC_{comment_id}", "body": body,
            "url": f"{self.api_url}/repos/{self.repo}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{self.repo}/issues/{number}#issuecomment-{comment_id}",
            "issue_url": f"{self.api_url}/repos/{self.repo}/issues/{number}",
            "user": _user(BOT, "Bot"), "author_association": "NONE",
            "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z",
            "issue": int(number),
        }
        self.comments.append(comment)
        return _json(comment, 201)

    def _react(self, request: Request, comment_id: str) -> Response:
        content = request.get_json()["content"]
        self.reactions.append((int(comment_id), content))
        return _json({"id": len(self.reactions), "node_id": "R_1", "content": content,
                      "user": _user(BOT, "Bot"), "created_at": "2026-11-25T10:00:00Z"}, 201)

    def _list_runs(self, request: Request, workflow: str) -> Response:
        runs = [r for r in self.runs if r["path"].endswith(f"/{workflow}")]
        return _json({"total_count": len(runs), "workflow_runs": runs})

    def _cancel(self, request: Request, run_id: str) -> Response:
        run = next((r for r in self.runs if r["id"] == int(run_id)), None)
        if run is None or run["status"] == "completed":
            return _json({"message": "Cannot cancel a workflow run that is completed."}, 409)
        self.cancelled.append(int(run_id))
        return _json({}, 202)

    # -- state helpers ----------------------------------------------------------------------
    def add_run(self, run_id: int, title: str, status: str, conclusion: str | None = None,
                workflow: str = "quantize.yml") -> None:
        self.runs.append({
            "id": run_id, "name": "quantize", "node_id": f"WFR_{run_id}",
            "display_title": title, "path": f".github/workflows/{workflow}",
            "event": "issue_comment", "status": status, "conclusion": conclusion,
            "run_number": len(self.runs) + 1, "workflow_id": 77,
            "url": f"{self.api_url}/repos/{self.repo}/actions/runs/{run_id}",
            "html_url": f"https://github.com/{self.repo}/actions/runs/{run_id}",
            "cancel_url": f"{self.api_url}/repos/{self.repo}/actions/runs/{run_id}/cancel",
            "created_at": datetime(2026, 11, 25, 9, run_id % 60, tzinfo=UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": "2026-11-25T10:00:00Z",
        })

    def bodies(self) -> list[str]:
        return [c["body"] for c in self.comments]


def comment_event(body: str, *, login: str = "alice", association: str = "OWNER",
                  user_type: str = "User", action: str = "created", number: int = 5,
                  pull_request: bool = False, model: str | None = "TinyOrg/tiny-llama",
                  comment_id: int = 4242, repo: str = REPO) -> dict[str, Any]:
    """An ``issue_comment`` webhook payload with the fields GitHub sends (abridged)."""
    owner, name = repo.split("/")
    issue_body = (f"<!-- quantbot:model={model} -->\n**{model}** is trending." if model
                  else "Just chatting.")
    issue: dict[str, Any] = {
        "url": f"https://api.github.com/repos/{repo}/issues/{number}",
        "html_url": f"https://github.com/{repo}/issues/{number}",
        "id": 100 + number, "number": number,
        "title": f"Quantize {model}" if model else "A question", "body": issue_body,
        "user": _user(BOT, "Bot"), "labels": [{"name": "candidate"}], "state": "open",
        "locked": False, "comments": 1, "author_association": "NONE",
        "created_at": "2026-11-24T08:00:00Z", "updated_at": "2026-11-25T09:00:00Z",
    }
    if pull_request:
        issue["pull_request"] = {"url": f"https://api.github.com/repos/{repo}/pulls/{number}",
                                 "html_url": f"https://github.com/{repo}/pull/{number}"}
    return {
        "action": action,
        "issue": issue,
        "comment": {
            "url": f"https://api.github.com/repos/{repo}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{repo}/issues/{number}#issuecomment-{comment_id}",
            "id": comment_id, "node_id": "IC_kwDO", "body": body,
            "user": _user(login, user_type), "author_association": association,
            "created_at": "2026-11-25T09:59:00Z", "updated_at": "2026-11-25T09:59:00Z",
        },
        "repository": {"id": 1, "name": name, "full_name": repo, "private": False,
                       "owner": _user(owner, "Organization")},
        "sender": _user(login, user_type),
    }


def write_event(tmp_path: Path, payload: dict[str, Any]) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


@pytest.fixture
def github(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeGitHub:
    """A fresh fake GitHub, with the environment of an Actions job pointing at it."""
    fake = FakeGitHub(httpserver).install()
    monkeypatch.setenv("GITHUB_API_URL", fake.api_url)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_test")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", fake.repo)
    monkeypatch.setenv("GITHUB_RUN_ID", "777")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "github_output"))
    monkeypatch.setenv("QUANTBOT_HUB_OWNER", "quantbot")
    monkeypatch.delenv("QUANTBOT_BOT_LOGIN", raising=False)
    return fake


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a ``$GITHUB_OUTPUT`` file (``name<<DELIM`` blocks)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        name, _, delim = line.partition("<<")
        value = []
        for inner in lines:
            if inner == delim:
                break
            value.append(inner)
        out[name] = "\n".join(value)
    return out
