"""A hostile network: every failure of the Hub or GitHub ends in one ``Error: … Fix: …`` line,
never a traceback; ``quantbot command plan`` runs no job when GitHub fails it; and under GitHub
Actions nothing quantbot prints can start a workflow command.

The Hub and GitHub are the local fakes (tests/hubfake.py, tests/githubfake.py) answering the real
clients; "no network" is a closed port, "no DNS" an ``.invalid`` host name.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
import urllib3.util.retry
from click.testing import CliRunner, Result
from fakeserver import fresh, serving
from githubfake import FakeGitHub, comment_event, github, read_outputs, write_event  # noqa: F401
from hubfake import (
    FakeHub,
    FastClock,
    fast_hf_clock,
    isolate_hub_client,
    model_files,
    point_hub_at,
)
from pytest_httpserver import HTTPServer

from bot.cli import ActionsSafeFormatter, main
from bot.plan import Plan
from bot.request import parse_words
from runners.source import load_source

ERROR_LINE = re.compile(r"Error: .+\. Fix: .+")


# -- fixtures -------------------------------------------------------------------------------------

def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hub_server() -> Iterator[HTTPServer]:
    with serving() as server:
        yield server


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> FastClock:
    """Retries stay real and bounded, only their waits are skipped: huggingface_hub's backoff,
    urllib3's (PyGithub's GithubRetry) and PyGithub's pause between requests."""
    import github.Requester

    clock = fast_hf_clock(monkeypatch)
    monkeypatch.setattr(urllib3.util.retry, "time", clock)
    monkeypatch.setattr(github.Requester, "time", clock)
    return clock


@pytest.fixture
def hf_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_hub_client(monkeypatch, tmp_path / "hf-cache")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


@pytest.fixture
def hub(hf_env: None, monkeypatch: pytest.MonkeyPatch, hub_server: HTTPServer) -> FakeHub:
    fake = fresh(FakeHub, hub_server)
    point_hub_at(monkeypatch, fake.base)
    return fake


@pytest.fixture
def dead_hub(hf_env: None, monkeypatch: pytest.MonkeyPatch) -> str:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    point_hub_at(monkeypatch, endpoint)
    return endpoint


def upload(hub: FakeHub, repo_id: str, model: Path) -> None:
    hub.add_repo(repo_id, {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()})


def run(args: list[object], **kw: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], **kw)  # type: ignore[arg-type]


def error_line(result: Result, *words: str) -> str:
    """The one ``Error: … Fix: …`` line a handled failure ends with (exit status 1)."""
    crash = result.exception if not isinstance(result.exception, SystemExit) else None
    assert crash is None, f"unhandled {type(crash).__name__}: {crash}\n{result.output}"
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert ERROR_LINE.fullmatch(last), last
    for word in words:
        assert word in last, (word, last)
    return last


# -- the download: quantbot quantize OWNER/NAME ---------------------------------------------------

def test_no_network(dead_hub: str, tmp_path: Path) -> None:
    line = error_line(run(["quantize", "acme/tiny", "--out", tmp_path / "out"]),
                      "cannot reach the Hub", dead_hub, "Connection refused", "HF_HUB_OFFLINE=1")
    assert "acme/tiny" in line and not (tmp_path / "out").exists()


def test_dns_failure(hf_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    point_hub_at(monkeypatch, "http://hub.quantbot-test.invalid")  # .invalid never resolves
    error_line(run(["quantize", "acme/tiny", "--out", tmp_path / "out"]),
               "cannot reach the Hub", "hub.quantbot-test.invalid", "ConnectError")


def test_offline_mode_without_a_cached_copy(hub: FakeHub, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    error_line(run(["quantize", "acme/tiny", "--out", tmp_path / "out"]),
               "not in the local Hub cache", "HF_HUB_OFFLINE=1", "unset HF_HUB_OFFLINE")
    assert hub.requests == []


def test_offline_mode_uses_the_cached_copy(hub: FakeHub, monkeypatch: pytest.MonkeyPatch,
                                           tiny_model: Path) -> None:
    upload(hub, "acme/tiny", tiny_model)
    online = load_source("acme/tiny")
    seen = len(hub.requests)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    offline = load_source("acme/tiny")
    assert offline.path == online.path and offline.info.n_params == online.info.n_params
    assert len(hub.requests) == seen


def test_gated_repo(hub: FakeHub, tiny_model: Path, tmp_path: Path) -> None:
    upload(hub, "acme/gated", tiny_model)
    hub.fail("GET", r"^/api/models/acme/gated", 401, times=5,
             headers={"X-Error-Code": "GatedRepo",
                      "X-Error-Message": "Access to model acme/gated is restricted."},
             body={"error": "Access to model acme/gated is restricted."})
    error_line(run(["quantize", "acme/gated", "--out", tmp_path / "out"]),
               "acme/gated is gated", "HTTP 401", "accept its terms", "HF_TOKEN")


def test_missing_repo(hub: FakeHub, tmp_path: Path) -> None:
    error_line(run(["quantize", "acme/nothing-here", "--out", tmp_path / "out"]),
               "no such model, or it is private", "HTTP 404", "check the repo id")


def test_missing_revision(hub: FakeHub, tiny_model: Path, tmp_path: Path) -> None:
    upload(hub, "acme/tiny", tiny_model)
    hub.fail("GET", r"^/api/models/acme/tiny/revision/", 404, times=5,
             headers={"X-Error-Code": "RevisionNotFound"}, body={"error": "Invalid rev id: v9"})
    error_line(run(["quantize", "acme/tiny", "--revision", "v9", "--out", tmp_path / "out"]),
               "acme/tiny has no revision 'v9'", "--revision")


def test_hub_server_error_then_resume(hub: FakeHub, fast: FastClock, tiny_model: Path,
                                      tmp_path: Path) -> None:
    """A 5xx on one file mid-download; the rerun fetches only what is still missing."""
    upload(hub, "acme/tiny", tiny_model)
    hub.fail("GET", r"/resolve/[^/]+/model\.safetensors$", 502, times=20)
    error_line(run(["quantize", "acme/tiny", "--out", tmp_path / "out"]),
               "the Hub failed to serve acme/tiny (HTTP 502)", "rerun")
    assert not (tmp_path / "out").exists()
    hub.faults.clear()
    fetched = {p for m, p in hub.requests if m == "GET" and "/resolve/" in p}
    hub.requests.clear()
    model = load_source("acme/tiny")
    again = [p for m, p in hub.requests if m == "GET" and "/resolve/" in p]
    assert [p.rsplit("/", 1)[1] for p in again] == ["model.safetensors"]
    assert len(fetched) > 1 and model.info.n_params > 0


@pytest.mark.parametrize("env", [
    {"HF_ENDPOINT": "http://127.0.0.1:{port}"},
    {"HF_ENDPOINT": "http://hub.quantbot-test.invalid"},
    {"HF_HUB_OFFLINE": "1"},
])
def test_a_real_process_prints_no_traceback(env: dict[str, str], tmp_path: Path) -> None:
    """The same failures in a process of its own: stderr as a user (or the Actions log) sees it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "GITHUB_"))}
    environ.update({k: v.format(port=closed_port()) for k, v in env.items()})
    environ.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "quantize",
                           "acme/tiny", "--out", str(tmp_path / "out")], env=environ,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert ERROR_LINE.fullmatch(proc.stderr.strip().splitlines()[-1]), proc.stderr


# -- quantbot command plan against a failing GitHub -----------------------------------------------

def plan(tmp_path: Path, body: str = "/quantize gguf") -> tuple[Result, dict[str, str]]:
    event = write_event(tmp_path, comment_event(body))
    result = CliRunner().invoke(main, ["command", "plan", "--event", str(event)])
    return result, read_outputs(tmp_path / "github_output")


def no_job(outputs: dict[str, str]) -> None:
    assert outputs["run"] == "false" and json.loads(outputs["matrix"]) == {"include": []}
    assert outputs["plan"] == "" and outputs["model"] == ""


PERMISSION = r"/collaborators/alice/permission$"
#: The issue's model, as the fake Hub serves it to an accepted /quantize.
TINY_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
COMMENTS = r"/issues/5/comments$"


@pytest.mark.parametrize(("status", "body", "words"), [
    (403, {"message": "Resource not accessible by integration"}, "HTTP 403"),
    (502, {"message": "Server Error"}, "kept failing"),
])
def test_permission_api_fails(github: FakeGitHub, fast: FastClock,  # noqa: F811
                              caplog: pytest.LogCaptureFixture, tmp_path: Path,
                              status: int, body: dict, words: str) -> None:
    github.permissions["alice"] = "write"
    github.fail("GET", PERMISSION, status, times=20, body=body)
    with caplog.at_level(logging.ERROR):
        result, outputs = plan(tmp_path)
    error_line(result, "check @alice's permission", words)
    no_job(outputs)
    assert "could not answer the comment of @alice on #5" in caplog.text
    (reply,) = github.bodies()  # the author is told, and nothing ran
    assert "@alice, I could not run that command" in reply and words in reply
    assert "comment the command again later; nothing was run" in reply
    assert github.reactions == []


def test_permission_404_is_a_refusal(github: FakeGitHub, fast: FastClock,  # noqa: F811
                                     tmp_path: Path) -> None:
    result, outputs = plan(tmp_path)  # alice is no collaborator: the API answers 404
    assert result.exit_code == 0, result.output
    no_job(outputs)
    assert "was not run" in github.bodies()[0]


@pytest.mark.parametrize(("status", "words"), [(403, "HTTP 403"), (404, "HTTP 404"),
                                               (503, "kept failing")])
def test_comment_api_fails(github: FakeGitHub, hub: FakeHub, fast: FastClock,  # noqa: F811
                           caplog: pytest.LogCaptureFixture, tmp_path: Path, status: int,
                           words: str) -> None:
    """No reply could be posted, so no job runs: nobody would hear of it."""
    github.permissions["alice"] = "write"
    hub.add_model("TinyOrg/tiny-llama", model_files(TINY_CONFIG))
    github.fail("POST", COMMENTS, status, times=20)
    with caplog.at_level(logging.ERROR):
        result, outputs = plan(tmp_path)
    error_line(result, "comment on acme/quant-zoo#5", words)
    no_job(outputs)
    assert github.bodies() == [] and github.reactions == []
    assert words in caplog.text


def test_reaction_api_fails_but_the_reply_goes_out(github: FakeGitHub, hub: FakeHub,  # noqa: F811
                                                   fast: FastClock,
                                                   caplog: pytest.LogCaptureFixture,
                                                   tmp_path: Path) -> None:
    """A reaction only decorates: the plan comment was posted, so the job runs."""
    github.permissions["alice"] = "write"
    hub.add_model("TinyOrg/tiny-llama", model_files(TINY_CONFIG))
    github.fail("POST", r"/reactions$", 502, times=20)
    with caplog.at_level(logging.WARNING):
        result, outputs = plan(tmp_path)
    assert result.exit_code == 0, result.output
    assert outputs["run"] == "true" and len(github.bodies()) == 1
    assert "no eyes reaction" in caplog.text


def test_runs_api_fails_on_status(github: FakeGitHub, fast: FastClock,  # noqa: F811
                                  tmp_path: Path) -> None:
    github.permissions["alice"] = "write"
    github.fail("GET", r"/actions/workflows/[^/]+/runs$", 503, times=20)
    result, outputs = plan(tmp_path, "/status")
    error_line(result, "GitHub kept failing to answer the comment")
    no_job(outputs)
    assert "GitHub kept failing to answer the comment" in github.bodies()[0]


def test_github_unreachable(github: FakeGitHub, fast: FastClock,  # noqa: F811
                            monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                            tmp_path: Path) -> None:
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{closed_port()}")
    with caplog.at_level(logging.ERROR):
        result, outputs = plan(tmp_path)
    error_line(result, "cannot reach GitHub", "GITHUB_API_URL")
    no_job(outputs)
    assert "could not reply on #5 either" in caplog.text


# -- every verb over a table of expected failures -------------------------------------------------

Setup = Callable[[Path, pytest.MonkeyPatch, FakeHub, FakeGitHub], list[object]]


def _event(tmp: Path) -> Path:
    return write_event(tmp, comment_event("/quantize gguf"))


def _plan_file(tmp: Path) -> Path:
    path = tmp / "plan.json"
    path.write_text(Plan(model="acme/tiny", issue=5,
                         request=parse_words(["gguf"], ("gguf",))).to_json())
    return path


def _repo_folder(tmp: Path) -> Path:
    folder = tmp / "out" / "qb" / "tiny-GGUF"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# tiny\n")
    (folder / "tiny.Q8_0.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    return folder


def _refusing_hub(hub: FakeHub) -> None:
    for method in ("GET", "HEAD", "POST", "PUT"):
        hub.fail(method, "/", 403, times=50, body={"error": "Invalid credentials"})


#: (verb, how the failure is set up → argv, the failure ends in an ``Error: … Fix: …`` line)
VERBS: list[tuple[str, Setup, bool]] = [
    ("quantize: no network", lambda t, mp, h, g: ["quantize", "acme/tiny", "--out", t / "o"], True),
    ("quantize: offline", lambda t, mp, h, g: (
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True),
        ["quantize", "acme/tiny", "--out", t / "o"])[1], True),
    ("run-job make: no network", lambda t, mp, h, g: [
        "run-job", "make", "--plan", _plan_file(t), "--method", "gguf", "--out", t / "o"], True),
    ("run-job publish: nothing made", lambda t, mp, h, g: [
        "run-job", "publish", "--results", t], True),
    ("publish --to hub: refused", lambda t, mp, h, g: (
        point_hub_at(mp, h.base), _refusing_hub(h),
        ["publish", _repo_folder(t), "--to", "hub"])[2], True),
    ("watch: no network", lambda t, mp, h, g: ["watch", "--once", "--dry-run"], True),
    ("watch: GitHub unreachable", lambda t, mp, h, g: (
        point_hub_at(mp, h.base), ["watch", "--once"])[1], True),
    ("command plan: no network", lambda t, mp, h, g: ["command", "plan", "--event", _event(t)], True),
    ("command fail: no network", lambda t, mp, h, g: [
        "command", "fail", "--event", _event(t), "--step", "gguf"], True),
    ("command report: nothing published", lambda t, mp, h, g: [
        "command", "report", "--event", _event(t), "--results", t], True),
    ("doctor: not enough disk", lambda t, mp, h, g: ["doctor", "--min-free-gb", "1e12"], False),
    ("support: offline is fine", lambda t, mp, h, g: ["support", "NoSuchForCausalLM"], False),
    ("demo: bad option", lambda t, mp, h, g: ["demo", "--ctx", "1"], False),
]


@pytest.mark.parametrize(("setup", "sentence"), [(s, e) for _, s, e in VERBS],
                         ids=[name for name, _, _ in VERBS])
def test_every_verb_fails_in_a_sentence(setup: Setup, sentence: bool, dead_hub: str,
                                        hub_server: HTTPServer, github: FakeGitHub,  # noqa: F811
                                        fast: FastClock, monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    """With the Hub and GitHub unreachable (or refusing), no verb prints a traceback."""
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.chdir(tmp_path)  # no quantbot.toml: the defaults
    argv = setup(tmp_path, monkeypatch, fresh(FakeHub, hub_server), github)
    result = run(argv)
    crash = result.exception if not isinstance(result.exception, SystemExit) else None
    assert crash is None, f"unhandled {type(crash).__name__}: {crash}\n{result.output}"
    assert "Traceback" not in result.output
    if sentence:
        error_line(result)
    else:
        assert result.exit_code in (0, 1, 2), result.output


# -- GitHub Actions: no workflow command from anything quantbot prints ----------------------------

HOSTILE = "r\n::error::pwned\n  ::add-mask::x"


def test_actions_run_is_wrapped_in_stop_commands(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """The error line quotes a stranger's text (here a folder name) inside the pause."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    results = tmp_path / HOSTILE
    results.mkdir()
    result = run(["command", "report", "--event", _event(tmp_path), "--results", results])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.splitlines()
    start = re.fullmatch(r"::stop-commands::([0-9a-f]{32})", lines[0])
    assert start, lines[0]
    assert lines[-1] == f"::{start.group(1)}::"
    inner = lines[1:-1]
    assert any(line.startswith("::error::pwned") for line in inner)  # shown, but paused
    assert not any(line.startswith("::") and start.group(1) in line for line in inner)


def test_actions_success_is_wrapped_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = run(["support", "LlamaForCausalLM"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    token = lines[0].removeprefix("::stop-commands::")
    assert lines[0] != token and lines[-1] == f"::{token}::"
    assert run(["--version"]).exit_code == 0


def test_no_stop_commands_outside_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    result = run(["support", "LlamaForCausalLM"])
    assert result.exit_code == 0 and "::" not in result.output


def test_log_formatter_breaks_workflow_commands() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "model %s", (HOSTILE,), None)
    text = ActionsSafeFormatter("%(levelname)s %(message)s").format(record)
    assert text.splitlines() == ["INFO model r", ": :error::pwned", "  : :add-mask::x"]


def test_actions_log_in_a_real_process(github: FakeGitHub, tmp_path: Path) -> None:  # noqa: F811
    """A commenter's login (from the event file) reaches a log line; in a real process, with
    stdout and stderr in one pipe as the runner reads them, no line but the pause's own two
    starts a workflow command."""
    event = write_event(tmp_path, comment_event("/quantize", login="eve\n::add-mask::secret"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    environ.update(GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(tmp_path / "out.txt"))
    proc = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "-v",
                           "command", "plan", "--event", str(event)], env=environ,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    token = lines[0].removeprefix("::stop-commands::")
    assert re.fullmatch(r"[0-9a-f]{32}", token) and lines[-1] == f"::{token}::", proc.stdout
    assert ": :add-mask::secret" in proc.stdout  # the login was logged, defused
    assert not [line for line in lines[1:-1] if line.lstrip().startswith("::")]
    assert github.count("GET", r"/collaborators/[^/]+/permission$") == 1
