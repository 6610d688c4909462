"""Candidate issues on a fake GitHub on 127.0.0.1 through the real PyGithub client: dedupe
listing (pages, PRs, foreign issues), two polls racing, rate limits and 5xx, bad answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakeserver import fresh, serving
from githubfake import FakeGitHub, fast_tracker
from pytest_httpserver import HTTPServer

from bot.config import Config
from bot.github.issue_text import render_issue
from bot.github.issues import IssueTracker
from bot.hub.filters import ModelCandidate
from bot.marker import marker
from runners.errors import QuantbotError

REPO = "org/quantbot"


@pytest.fixture(scope="module")
def gh_server() -> Iterator[HTTPServer]:
    with serving() as server:
        yield server


@pytest.fixture
def gh(gh_server: HTTPServer) -> FakeGitHub:
    return fresh(FakeGitHub, gh_server)


def tracker(gh: FakeGitHub, retries: int = 2) -> IssueTracker:
    return fast_tracker(gh, REPO, retries)


def test_two_runs_at_once_keep_one_issue(gh: FakeGitHub) -> None:
    """Both polls list before either opens: both open; the later issue gets closed."""
    c = Config()
    a, b = tracker(gh), tracker(gh)
    seen_a, seen_b = a.tracked(), b.tracked()
    assert seen_a == seen_b == {}
    text = render_issue(ModelCandidate("meta/Llama-3-8B", "LlamaForCausalLM", 8 * 10**9,
                                       "apache-2.0"), c)
    first, second = a.open(text), b.open(text)
    assert (first.number, second.number) == (1, 2)
    closed_b = b.close_duplicates(b.tracked(), models=[text.model_id])
    closed_a = a.close_duplicates(a.tracked(), models=[text.model_id])
    assert [t.number for t in closed_b + closed_a] == [2]  # idempotent: A finds #2 closed
    assert [i["number"] for i in gh.open_issues_for(marker("meta/Llama-3-8B"))] == [1]
    assert gh.comments[2] == ["Duplicate of #1 (two quantbot polls raced); closing."]
    assert gh.issues[2]["state_reason"] == "not_planned"


def test_issue_listing_follows_pages(gh: FakeGitHub) -> None:
    gh.page_cap = 2
    for n in range(5):
        gh.add_issue(REPO, f"t{n}", f"{marker(f'x/M{n}')}\n", ["candidate"])
    gh.add_issue(REPO, "pr", f"{marker('x/PR')}\n", ["candidate"], pull_request=True)
    gh.add_issue(REPO, "other", "no marker", ["candidate"])
    found = tracker(gh).tracked()
    assert sorted(found) == [f"x/M{n}" for n in range(5)]
    assert gh.count("GET", r"/issues") == 4


@pytest.mark.parametrize(("status", "headers", "body"), [
    (403, {"Retry-After": "0"}, {"message": "You have exceeded a secondary rate limit."}),
    (429, {"Retry-After": "0"}, {"message": "Too many requests"}),
    (502, {}, {"message": "Server Error"}),
])
def test_github_rate_limit_and_5xx_are_retried(gh: FakeGitHub, status: int,
                                               headers: dict, body: dict) -> None:
    gh.fail("GET", r"/issues$", status, headers=headers, body=body)
    assert tracker(gh).tracked() == {}
    assert gh.count("GET", r"/issues") == 2


def test_github_errors_are_clear(gh: FakeGitHub) -> None:
    gh.fail("GET", r"/issues$", 503, times=10)
    with pytest.raises(QuantbotError, match="GitHub kept failing to list"):
        tracker(gh, retries=1).tracked()
    assert gh.count("GET", r"/issues") == 2  # bounded
    gh.faults.clear()
    gh.fail("GET", r"/issues$", 401, body={"message": "Bad credentials"})
    with pytest.raises(QuantbotError, match="GITHUB_TOKEN"):
        tracker(gh).tracked()


def test_github_malformed_listing(gh: FakeGitHub) -> None:
    gh.fail("GET", r"/issues$", 200, body=["not an issue"])
    with pytest.raises(QuantbotError, match="malformed"):
        tracker(gh).tracked()


