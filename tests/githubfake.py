"""The one fake GitHub REST API of the tests, on 127.0.0.1, answering with GitHub's documented
JSON: issues (list with labels, state and Link pagination; create, get, edit, comment),
collaborator permissions, reactions, workflow runs (list, cancel). It records every request and
takes injected faults (:mod:`fakeserver`), so tests assert on what the real PyGithub sent.
Also the ``issue_comment`` event payloads and the ``github`` fixture of an Actions job."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fakeserver import FakeServer, fresh, json_response
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

REPO_RE = r"([\w.-]+/[\w.-]+)"
REPO = "acme/quant-zoo"
BOT = "github-actions[bot]"


def _user(login: str, kind: str = "User") -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10**7, "type": kind,
            "url": f"https://api.github.com/users/{login}"}


class FakeGitHub(FakeServer):
    """State (repository-agnostic: tests use one repository): ``issues`` by number, comments by
    issue number and in posting order, collaborators' permissions, reactions, workflow runs."""

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.repo = REPO
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[str]] = {}
        self.posted: list[dict[str, Any]] = []  # every comment created, in order
        self.permissions: dict[str, str] = {}  # login -> admin/maintain/write/triage/read
        self.reactions: list[tuple[int, str]] = []
        self.runs: list[dict[str, Any]] = []
        self.cancelled: list[int] = []
        self.page_cap = 100  # GitHub's per_page maximum
        r = self.route
        r("GET", rf"/repos/{REPO_RE}/issues", self.list_issues)
        r("POST", rf"/repos/{REPO_RE}/issues", self.create_issue)
        r("GET", rf"/repos/{REPO_RE}/issues/(\d+)", self.get_issue)
        r("PATCH", rf"/repos/{REPO_RE}/issues/(\d+)", self.edit_issue)
        r("POST", rf"/repos/{REPO_RE}/issues/(\d+)/comments", self.comment)
        r("GET", rf"/repos/{REPO_RE}/issues/(\d+)/comments", self.list_comments)
        r("GET", rf"/repos/{REPO_RE}/collaborators/([^/]+)/permission", self.permission)
        r("POST", rf"/repos/{REPO_RE}/issues/comments/(\d+)/reactions", self.react)
        r("GET", rf"/repos/{REPO_RE}/actions/workflows/([^/]+)/runs", self.list_runs)
        r("POST", rf"/repos/{REPO_RE}/actions/runs/(\d+)/cancel", self.cancel)

    @property
    def api_url(self) -> str:
        return self.base

    def add_issue(self, repo: str, title: str, body: str, labels: list[str],
                  state: str = "open", pull_request: bool = False) -> dict[str, Any]:
        number = len(self.issues) + 1
        issue = {
            "id": 1000 + number, "node_id": f"I_{number}", "number": number, "title": title,
            "body": body, "state": state, "state_reason": None, "locked": False,
            "labels": [{"id": i, "name": name, "color": "ededed", "default": False,
                        "url": f"{self.base}/repos/{repo}/labels/{name}"}
                       for i, name in enumerate(labels)],
            "url": f"{self.base}/repos/{repo}/issues/{number}",
            "html_url": f"https://github.com/{repo}/{'pull' if pull_request else 'issues'}/{number}",
            "comments_url": f"{self.base}/repos/{repo}/issues/{number}/comments",
            "repository_url": f"{self.base}/repos/{repo}",
            "user": {"login": "quantbot[bot]", "id": 1, "type": "Bot"},
            "comments": 0, "created_at": f"2026-01-01T00:00:{number % 60:02d}Z",
            "updated_at": "2026-01-01T00:00:00Z", "closed_at": None,
        }
        if pull_request:
            issue["pull_request"] = {"url": f"{self.base}/repos/{repo}/pulls/{number}"}
        self.issues[number] = issue
        return issue

    def open_issues_for(self, marker: str) -> list[dict[str, Any]]:
        return [i for i in self.issues.values() if marker in (i["body"] or "")
                and i["state"] == "open"]

    def list_issues(self, req: Request, repo: str) -> Response:
        args = req.args
        state = args.get("state", "open")
        wanted = {x for x in args.get("labels", "").split(",") if x}
        items = [i for i in self.issues.values()
                 if (state == "all" or i["state"] == state)
                 and wanted <= {label["name"] for label in i["labels"]}]
        items.sort(key=lambda i: i["number"], reverse=args.get("direction", "desc") == "desc")
        per_page = min(int(args.get("per_page", 30)), self.page_cap)
        page = int(args.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            query = urlencode([*((k, v) for k, v in args.items() if k != "page"),
                               ("page", str(page + 1))])
            headers["Link"] = f'<{self.base}/repos/{repo}/issues?{query}>; rel="next"'
        return json_response(chunk, headers=headers)

    def create_issue(self, req: Request, repo: str) -> Response:
        body = req.get_json()
        issue = self.add_issue(repo, body["title"], body.get("body", ""), body.get("labels", []))
        return json_response(issue, 201)

    def get_issue(self, req: Request, repo: str, number: str) -> Response:
        issue = self.issues.get(int(number))
        return json_response(issue, 200) if issue else json_response({"message": "Not Found"}, 404)

    def edit_issue(self, req: Request, repo: str, number: str) -> Response:
        issue = self.issues[int(number)]
        body = req.get_json()
        if "state" in body:
            issue["state"] = body["state"]
            issue["state_reason"] = body.get("state_reason")
            issue["closed_at"] = "2026-01-01T00:01:00Z" if body["state"] == "closed" else None
        return json_response(issue)

    def comment(self, req: Request, repo: str, number: str) -> Response:
        text = req.get_json()["body"]
        self.comments.setdefault(int(number), []).append(text)
        if int(number) in self.issues:
            self.issues[int(number)]["comments"] += 1
        comment_id = 9000 + len(self.posted)
        comment = {
            "id": comment_id, "node_id": f"IC_{comment_id}", "body": text,
            "url": f"{self.base}/repos/{repo}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{repo}/issues/{number}#issuecomment-{comment_id}",
            "issue_url": f"{self.base}/repos/{repo}/issues/{number}",
            "user": _user(BOT, "Bot"), "author_association": "NONE",
            "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z",
        }
        self.posted.append(comment)
        return json_response(comment, 201)

    def list_comments(self, req: Request, repo: str, number: str) -> Response:
        mine = [c for c in self.posted if c["issue_url"].endswith(f"/issues/{number}")]
        return json_response(mine)

    def bodies(self) -> list[str]:
        """Every comment posted, in order."""
        return [c["body"] for c in self.posted]

    def permission(self, req: Request, repo: str, login: str) -> Response:
        if login not in self.permissions:
            return json_response({"message": "Not Found"}, 404)
        permission = self.permissions[login]
        legacy = {"maintain": "write", "triage": "read"}.get(permission, permission)
        return json_response({"permission": legacy, "role_name": permission,
                              "user": _user(login)})

    def react(self, req: Request, repo: str, comment_id: str) -> Response:
        content = req.get_json()["content"]
        self.reactions.append((int(comment_id), content))
        return json_response({"id": len(self.reactions), "node_id": "R_1", "content": content,
                              "user": _user(BOT, "Bot"), "created_at": "2026-11-25T10:00:00Z"},
                             201)

    def list_runs(self, req: Request, repo: str, workflow: str) -> Response:
        runs = [r for r in self.runs if r["path"].endswith(f"/{workflow}")]
        return json_response({"total_count": len(runs), "workflow_runs": runs})

    def cancel(self, req: Request, repo: str, run_id: str) -> Response:
        run = next((r for r in self.runs if r["id"] == int(run_id)), None)
        if run is None or run["status"] == "completed":
            return json_response({"message": "Cannot cancel a workflow run that is completed."},
                                 409)
        self.cancelled.append(int(run_id))
        return json_response({}, 202)

    def add_run(self, run_id: int, title: str, status: str, conclusion: str | None = None,
                workflow: str = "quantize.yml") -> None:
        self.runs.append({
            "id": run_id, "name": "quantize", "node_id": f"WFR_{run_id}",
            "display_title": title, "path": f".github/workflows/{workflow}",
            "event": "issue_comment", "status": status, "conclusion": conclusion,
            "run_number": len(self.runs) + 1, "workflow_id": 77,
            "url": f"{self.base}/repos/{self.repo}/actions/runs/{run_id}",
            "html_url": f"https://github.com/{self.repo}/actions/runs/{run_id}",
            "cancel_url": f"{self.base}/repos/{self.repo}/actions/runs/{run_id}/cancel",
            "created_at": datetime(2026, 11, 25, 9, run_id % 60, tzinfo=UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": "2026-11-25T10:00:00Z",
        })


def fast_tracker(gh: FakeGitHub, repo: str, retries: int = 2):
    """connect()'s client, minus PyGithub's politeness pauses between requests (0.25 s, 1 s
    between writes) that would only slow the tests down, tracking ``repo``'s candidate issues."""
    from github import Github

    from bot.github.client import connect
    from bot.github.issues import IssueTracker

    g = connect("ghs_test", gh.base, retries=retries)
    fast = Github(**{**g.requester.kwargs, "seconds_between_requests": None,
                     "seconds_between_writes": None})
    return IssueTracker(fast, repo, "candidate")


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
    fake = fresh(FakeGitHub, httpserver)
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
