"""``quantbot watch`` against fake Hub and GitHub servers on 127.0.0.1 (real huggingface_hub and
PyGithub clients): listing pages, dedupe across runs, races and crashes, retries, bad answers."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from click.testing import CliRunner
from fakeserver import fresh, json_response, serving
from githubfake import FakeGitHub, fast_tracker
from hubfake import FakeHub, FastClock, fast_hf_clock, model_entry
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.cli.watch import command as watch_command
from bot.config import Config, config_from_dict
from bot.github.issues import IssueTracker
from bot.hub.client import hub_api
from bot.hub.poll import poll
from bot.hub.watcher import HubWatcher
from bot.marker import marker
from bot.methods import METHODS
from runners.errors import QuantbotError

REPO = "org/quantbot"
CONFIG = """
[hub]
namespace = "qb"
max_models = 20
[github]
repo = "org/quantbot"
"""


@pytest.fixture(scope="module")
def hub_server() -> Iterator[HTTPServer]:
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def gh_server() -> Iterator[HTTPServer]:
    with serving() as server:
        yield server


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, hub_server: HTTPServer) -> Iterator[FakeHub]:
    fake = fresh(FakeHub, hub_server)
    # huggingface_hub's user-agent telemetry would fetch {import-time endpoint}/api/agent-harnesses
    # (huggingface.co): keep every request on 127.0.0.1, as HF_HUB_DISABLE_TELEMETRY=1 does.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setenv("HF_ENDPOINT", fake.base)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    fake.models = [
        model_entry("meta/Llama-3-8B", trending=100),
        model_entry("qwen/Qwen3-4B", arch="Qwen3ForCausalLM", params=4_022_468_096,
                    trending=90),
        model_entry("someone/Llama-3-8B-GGUF", library_name="gguf", tags=["gguf"],
                    trending=80),
        model_entry("org/Remote-7B", tags=["custom_code"], trending=70,
                    config_extra={"auto_map": {"AutoModelForCausalLM": "m.M"}}),
        model_entry("big/Huge-400B", params=400_000_000_000, trending=60),
        model_entry("nd/NoDerivs-3B", license="cc-by-nd-4.0", params=3_000_000_000,
                    trending=50),
        model_entry("gate/Gated-8B", gated="manual", trending=40),
        model_entry("ssm/Odd-2B", arch="OddNetForCausalLM", params=2_000_000_000,
                    trending=30),
        model_entry("old/Done-7B", trending=20),
    ]
    fake.add_repo("qb/Done-7B-GGUF")
    yield fake


@pytest.fixture
def gh(monkeypatch: pytest.MonkeyPatch, gh_server: HTTPServer) -> Iterator[FakeGitHub]:
    fake = fresh(FakeGitHub, gh_server)
    monkeypatch.setenv("GITHUB_API_URL", fake.base)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_test")
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    yield fake


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FastClock:
    return fast_hf_clock(monkeypatch)


def cfg(**hub: object) -> Config:
    return config_from_dict({"hub": {"namespace": "qb", **hub}, "github": {"repo": REPO}})


def tracker(gh: FakeGitHub, retries: int = 2) -> IssueTracker:
    return fast_tracker(gh, REPO, retries)


def run_poll(c: Config, gh: FakeGitHub, dry_run: bool = False, retries: int = 2):
    return poll(c, HubWatcher(hub_api(), c.hub), tracker(gh, retries), dry_run=dry_run)


EXPECTED_SKIPS = {
    "someone/Llama-3-8B-GGUF": "already quantized (library gguf)",
    "org/Remote-7B": "needs remote code",
    "big/Huge-400B": "400B parameters: no runner can hold it (GGUF: needs 4.65 TB disk",
    "nd/NoDerivs-3B": "licence cc-by-nd-4.0 is on the deny list",
    "gate/Gated-8B": "gated (manual)",
    "ssm/Odd-2B": "no method takes architecture OddNetForCausalLM",
    "old/Done-7B": "already published as qb/Done-7B-GGUF",
}


def test_dry_run_lists_candidates_and_reasons(hub: FakeHub, gh: FakeGitHub,
                                              tmp_path: Path) -> None:
    (tmp_path / "quantbot.toml").write_text(CONFIG)
    gh.add_issue(REPO, "old", f"{marker('qwen/Qwen3-4B')}\n", ["candidate"], state="closed")
    result = CliRunner().invoke(watch_command, ["--once", "--dry-run", "--config",
                                                str(tmp_path / "quantbot.toml")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2 candidate(s), 7 skipped" in out
    assert "would open: Quantize meta/Llama-3-8B (8.03B, LlamaForCausalLM)" in out
    assert "already tracked: qwen/Qwen3-4B -> #1 (closed)" in out
    for repo_id, why in EXPECTED_SKIPS.items():
        assert f"skipped {repo_id}: {why}" in out
    # one listing per pipeline tag + our repos on the Hub, then config.json (its MoE shape) of
    # the one candidate without an issue; one issue listing on GitHub; no writes anywhere
    assert hub.requests[0][0] == "GET" and "expand=safetensors" in hub.requests[0][1]
    assert "sort=trendingScore" in hub.requests[0][1] and "limit=20" in hub.requests[0][1]
    assert "pipeline_tag=text-generation" in hub.requests[0][1]
    assert "pipeline_tag=image-text-to-text" in hub.requests[1][1]
    assert [m for m, _ in hub.requests] == ["GET", "GET", "GET", "HEAD"]
    assert hub.requests[3][1] == "/meta/Llama-3-8B/resolve/main/config.json"
    assert hub.count("GET", r"^/api/models\?.*author=qb") == 1
    assert [m for m, _ in gh.requests] == ["GET"]
    assert "state=all" in gh.requests[0][1] and "labels=candidate" in gh.requests[0][1]
    assert "per_page=100" in gh.requests[0][1]


def test_dry_run_without_github_repo(hub: FakeHub, gh: FakeGitHub) -> None:
    result = CliRunner().invoke(watch_command, ["--once", "--dry-run"],
                                env={"GITHUB_REPOSITORY": ""})
    assert result.exit_code == 0, result.output
    assert "existing issues not checked" in result.output
    assert gh.requests == []


def test_listing_follows_pages_up_to_max_models(hub: FakeHub, gh: FakeGitHub) -> None:
    hub.page_size = 3  # the server pages; the client follows Link headers
    models, bad = HubWatcher(hub_api(), cfg(max_models=7).hub).trending()
    assert len(models) == 7 and bad == []
    # 3 + 3 + 1 of the third page, no 4th; the image-text-to-text listing is empty here
    assert hub.count("GET", r"^/api/models\?.*pipeline_tag=text-generation") == 3
    assert models[0].repo_id == "meta/Llama-3-8B" and models[0].params == 8_030_261_248


def test_opens_once_across_runs(hub: FakeHub, gh: FakeGitHub) -> None:
    first = run_poll(cfg(), gh)
    assert sorted(t.model_id for t in first.opened) == ["meta/Llama-3-8B", "qwen/Qwen3-4B"]
    issue = gh.issues[1]
    assert [label["name"] for label in issue["labels"]] == ["candidate", *METHODS]
    assert marker("meta/Llama-3-8B") in issue["body"]
    # requests for one poll of 9 models, 2 new: Hub 3 (2 tags, our repos) + each new one's
    # config.json (absent here: the fake lists them only); GitHub list + 2 creates + re-list
    assert len(hub.requests) == 5
    assert [m for m, _ in gh.requests] == ["GET", "POST", "POST", "GET"]

    gh.requests.clear()
    second = run_poll(cfg(), gh)
    assert second.opened == [] and len(second.already_tracked) == 2
    assert [m for m, _ in gh.requests] == ["GET"]
    assert len(gh.issues) == 2


def test_lost_create_response_is_deduplicated(hub: FakeHub, gh: FakeGitHub) -> None:
    """GitHub creates the issue but the answer is a 502; the retried POST creates another."""
    gh.fail("POST", r"/issues$", 502, after=True)
    report = run_poll(cfg(), gh)
    assert len(gh.issues) == 3  # 2 for the first model (one lost answer), 1 for the second
    assert [t.number for t in report.duplicates_closed] == [2]  # #1 is kept
    for model in ("meta/Llama-3-8B", "qwen/Qwen3-4B"):
        assert len(gh.open_issues_for(marker(model))) == 1


def test_crash_between_search_and_create(hub: FakeHub, gh: FakeGitHub) -> None:
    """GitHub keeps failing the create: the poll stops with a clear error, nothing is opened;
    the next poll (no local state) opens each issue exactly once."""
    gh.fail("POST", r"/issues$", 500, times=100)
    with pytest.raises(QuantbotError, match="GitHub kept failing to open an issue"):
        run_poll(cfg(), gh, retries=1)
    assert gh.issues == {}
    gh.faults.clear()
    report = run_poll(cfg(), gh)
    assert len(report.opened) == 2 and len(gh.issues) == 2


def test_crash_after_create_leaves_no_duplicate(hub: FakeHub, gh: FakeGitHub) -> None:
    """The issue got created but every answer was lost and the poll died: the next poll finds
    it (it carries label + marker), opens nothing new for it and closes the extra copies."""
    gh.fail("POST", r"/issues$", 503, times=2, after=True)
    with pytest.raises(QuantbotError):
        run_poll(cfg(), gh, retries=1)
    assert len(gh.issues) == 2  # both for the first model
    report = run_poll(cfg(), gh)
    assert [t.model_id for t in report.already_tracked] == ["meta/Llama-3-8B"]
    assert [t.model_id for t in report.opened] == ["qwen/Qwen3-4B"]
    assert [t.number for t in report.duplicates_closed] == [2]
    for model in ("meta/Llama-3-8B", "qwen/Qwen3-4B"):
        assert len(gh.open_issues_for(marker(model))) == 1


@pytest.mark.parametrize(("status", "headers"), [(429, {"Retry-After": "0"}), (503, {})])
def test_hub_rate_limit_and_5xx_are_retried(hub: FakeHub, clock: FastClock, status: int,
                                            headers: dict) -> None:
    hub.fail("GET", r"^/api/models$", status, headers=headers)
    models, _ = HubWatcher(hub_api(), cfg().hub).trending()
    assert len(models) == 9
    assert hub.count("GET", r"^/api/models\?.*pipeline_tag=text-generation") == 2
    assert clock.slept == [1.0]  # Retry-After 0 (+1s margin) or the first backoff step


def test_hub_keeps_failing_is_a_clear_bounded_error(hub: FakeHub, clock: FastClock) -> None:
    hub.fail("GET", r"^/api/models$", 503, times=100)
    with pytest.raises(QuantbotError, match=r"kept failing to list trending models \(HTTP 503\)"):
        HubWatcher(hub_api(), cfg().hub).trending()
    assert hub.count("GET", r"^/api/models") == 6  # 1 + huggingface_hub's 5 retries
    assert clock.slept == [1, 2, 4, 8, 8]


@pytest.mark.parametrize("body", [
    {"error": "not a list"},
    b"<html>Bad gateway</html>",
])
def test_hub_malformed_listing(hub: FakeHub, body: object) -> None:
    hub.fail("GET", r"^/api/models$", 200, body=body)
    with pytest.raises(QuantbotError, match="malformed"):
        HubWatcher(hub_api(), cfg().hub).trending()


GOOD = {"id": "meta/Llama-3-8B", "pipeline_tag": "text-generation",
        "config": {"architectures": ["LlamaForCausalLM"]},
        "safetensors": {"parameters": {"BF16": 8_000_000_000}, "total": 8_000_000_000}}


@pytest.mark.parametrize(("entry", "why"), [
    ({"modelId": "no-id-key"}, "not a Hub repo id"),
    ({"id": "a/b", "config": {"architectures": "LlamaForCausalLM"}}, "not a list of names"),
    ({"id": "a/b/c"}, "not a Hub repo id"),
    ({"id": "evil/x\n/quantize"}, "not a Hub repo id"),
    ({"id": "a/b", "safetensors": {"parameters": {}, "total": "8B"}}, "safetensors.total"),
    ({"id": "a/b", "safetensors": {"parameters": {}, "total": True}}, "safetensors.total"),
    ({"id": "a/b", "safetensors": {"total": 1}}, "parameters"),
    ({"id": "a/b", "trendingScore": "NaN"}, "trendingScore"),
])
def test_one_malformed_entry_is_skipped_and_the_poll_goes_on(hub: FakeHub, entry: dict,
                                                             why: str) -> None:
    hub.fail("GET", r"^/api/models$", 200, body=[entry, GOOD])
    models, bad = HubWatcher(hub_api(), cfg().hub).trending()
    assert [m.repo_id for m in models] == ["meta/Llama-3-8B"]
    (skipped,) = bad
    assert skipped.reason.startswith("malformed listing entry") and why in skipped.reason
    assert "\n" not in skipped.repo_id


def test_watch_opens_issues_from_the_cli(hub: FakeHub, gh: FakeGitHub, tmp_path: Path) -> None:
    (tmp_path / "quantbot.toml").write_text(CONFIG)
    args = ["--once", "--config", str(tmp_path / "quantbot.toml")]
    result = CliRunner().invoke(watch_command, args)
    assert result.exit_code == 0, result.output
    assert "opened: #1 meta/Llama-3-8B https://github.com/org/quantbot/issues/1" in result.output
    again = CliRunner().invoke(watch_command, args)
    assert "already tracked: meta/Llama-3-8B -> #1 (open)" in again.output
    assert len(gh.issues) == 2


def test_trending_multimodal_models_are_listed_and_offered(hub: FakeHub, gh: FakeGitHub) -> None:
    hub.models.append(model_entry(
        "Qwen/Qwen3.5-27B", arch="Qwen3_5ForConditionalGeneration", params=27_000_000_000,
        pipeline_tag="image-text-to-text", trending=95,
        config_extra={"model_type": "qwen3_5",
                      "text_config": {"architectures": ["Qwen3_5ForCausalLM"]}}))
    c = cfg()
    report = poll(c, HubWatcher(hub_api(), c.hub), None, dry_run=True)
    ids = [x.repo_id for x in report.decision.candidates]
    assert ids == ["meta/Llama-3-8B", "Qwen/Qwen3.5-27B", "qwen/Qwen3-4B"]  # most trending first
    vl = report.decision.candidates[1]
    assert vl.methods == tuple(METHODS) and vl.multimodal and vl.mmproj
    body = next(t.body for t in report.to_open if t.model_id == "Qwen/Qwen3.5-27B")
    assert "| GGUF | the text model, plus the vision projector as separate mmproj files" in body
    assert "| GPTQ | the text model quantized, with the vision tower kept in 16-bit" in body


# -- listings that never end ----------------------------------------------------------------------

#: Requests after which the hostile listings below give up by themselves (a guard for the test
#: itself: without the watcher's bounds, it would otherwise poll until the job's timeout).
GIVE_UP = 60


def endless(hub: FakeHub, page: Callable[[int], list], link: Callable[[int], str]) -> list[int]:
    """Answer ``GET /api/models`` with ``page(n)`` and a next link ``link(n)`` for the n-th
    request, until :data:`GIVE_UP` requests; the request counter, for the test to read."""
    count = [0]

    def handler(req: Request) -> Response:
        count[0] += 1
        n = count[0]
        headers = {"Link": f'<{hub.base}{link(n)}>; rel="next"'} if n < GIVE_UP else {}
        return json_response(page(n), headers=headers)

    hub.routes.insert(0, ("GET", re.compile("^/api/models$"), handler))
    return count


@pytest.mark.parametrize(("page", "link", "why"), [
    (lambda n: [], lambda n: "/api/models?cursor=same", "an empty page pointed to another page"),
    (lambda n: [], lambda n: f"/api/models?cursor={n}", "an empty page pointed to another page"),
    (lambda n: [model_entry("meta/Llama-3-8B")], lambda n: "/api/models?cursor=same",
     "repeats a page already read"),
])
def test_a_trending_listing_that_never_ends_is_bounded_and_says_why(
        hub: FakeHub, caplog: pytest.LogCaptureFixture, page: Callable[[int], list],
        link: Callable[[int], str], why: str) -> None:
    count = endless(hub, page, link)
    with caplog.at_level(logging.INFO, logger="bot.hub.pages"):
        models, _ = HubWatcher(hub_api(), cfg().hub).trending()
    assert [m.repo_id for m in models] == [e["id"] for e in page(1)]
    assert count[0] <= 2 * 2  # two tags, at most two requests each
    assert why in caplog.text and "stopped:" in caplog.text


def test_a_listing_of_new_entries_on_every_page_stops_at_its_limits(
        hub: FakeHub, caplog: pytest.LogCaptureFixture) -> None:
    count = endless(hub, lambda n: [model_entry(f"m/M{n}")], lambda n: f"/api/models?cursor={n}")
    with caplog.at_level(logging.INFO, logger="bot.hub.pages"):
        models, _ = HubWatcher(hub_api(), cfg(max_models=5, max_pages=4).hub).trending()
    assert len(models) == 5 and count[0] == 8  # 4 pages per tag: the page bound, not the limit
    assert "read 4 pages, the most one listing may request" in caplog.text


def test_our_own_repos_listing_that_never_ends_fails_the_poll_clearly(hub: FakeHub) -> None:
    count = [0]

    def handler(req: Request) -> Response:
        if "author" not in req.args:
            return hub.list_models(req)
        count[0] += 1
        link = {"Link": f'<{hub.base}/api/models?author=qb&cursor=x>; rel="next"'}
        return json_response([], headers=link if count[0] < GIVE_UP else {})

    hub.routes.insert(0, ("GET", re.compile("^/api/models$"), handler))
    with pytest.raises(QuantbotError, match="listing of qb's repos stopped early: an empty page"):
        HubWatcher(hub_api(), cfg().hub).own_repos()
    assert count[0] == 1
