"""A fake GitHub REST API on 127.0.0.1 for issues: list (labels, state, Link pagination),
create, get, edit (close) and comment, answering with GitHub's documented issue JSON."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fakeserver import FakeServer, json_response
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

REPO = r"([\w.-]+/[\w.-]+)"


class FakeGitHub(FakeServer):
    """State: ``issues`` by number (repository-agnostic: tests use one repository)."""

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[str]] = {}
        self.page_cap = 100  # GitHub's per_page maximum
        r = self.route
        r("GET", rf"/repos/{REPO}/issues", self.list_issues)
        r("POST", rf"/repos/{REPO}/issues", self.create_issue)
        r("GET", rf"/repos/{REPO}/issues/(\d+)", self.get_issue)
        r("PATCH", rf"/repos/{REPO}/issues/(\d+)", self.edit_issue)
        r("POST", rf"/repos/{REPO}/issues/(\d+)/comments", self.comment)

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
        self.issues[int(number)]["comments"] += 1
        return json_response({"id": 5000 + len(self.comments), "body": text,
                              "url": f"{self.base}/repos/{repo}/issues/comments/1",
                              "html_url": f"https://github.com/{repo}/issues/{number}#c",
                              "user": {"login": "quantbot[bot]", "id": 1}}, 201)


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
