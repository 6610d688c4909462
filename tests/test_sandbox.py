"""The make step's sandbox (issue 22, item 6): what a malicious model's files could make a tool
do during `run-job make --isolation bwrap` ends with the step and changes nothing outside its
work and output folders. The command-line policy is checked everywhere; the sandbox itself
where bubblewrap is installed (runners/setup/ installs it on every runner)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hubfake import hub_http, model_hub  # noqa: F401

from bot.cli.run_job import SANDBOX_SETS, forwarded_options, make_cmd
from bot.cli.run_job import command as run_job
from bot.config import config_files
from bot.publish.manifest import file_digest, recorded_files
from runners import sandbox
from runners.errors import QuantbotError
from runners.paths import cache_dir
from runners.results import load_run

needs_bwrap = pytest.mark.skipif(shutil.which(sandbox.BWRAP) is None,
                                 reason="bubblewrap is not installed on this machine "
                                        "(apt-get install bubblewrap); the policy tests still run")
MERGED_USR = {"/usr": None, "/bin": "usr/bin", "/lib": "usr/lib", "/etc": None}


def _pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


# -- the policy (pure) ----------------------------------------------------------------------------
def test_the_command_line_cuts_network_processes_and_privileges():
    policy = sandbox.Policy(readable=(Path("/srv/venv"),), writable=(Path("/w/out"),),
                            cwd=Path("/srv/checkout"))
    argv = sandbox.bwrap_argv(policy, ["quantbot", "run-job", "make"], MERGED_USR)
    head = argv[:argv.index("--")]
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-user", "--unshare-ipc",
                 "--die-with-parent", "--new-session", "--disable-userns"):
        assert flag in head, flag
    assert head[head.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--") + 1:] == ["quantbot", "run-job", "make"]
    assert ("usr/bin", "/bin") in _pairs(argv, "--symlink")  # merged /usr kept as it is
    assert _pairs(argv, "--bind") == [("/w/out", "/w/out")]  # the one writable folder
    assert ("/srv/venv", "/srv/venv") in _pairs(argv, "--ro-bind")
    assert head[head.index("--remount-ro") + 1] == "/"  # the sandbox's own root is read-only
    assert head[head.index("--tmpfs") + 1] == "/tmp"
    assert head[head.index("--chdir") + 1] == "/srv/checkout"


def test_the_most_specific_folder_decides():
    """A work folder inside the read-only cache is mounted after it, so it stays writable;
    the private /tmp comes before folders under it (pytest's tmp_path)."""
    policy = sandbox.Policy(readable=(Path("/c/cache"), Path("/tmp/t/src")),
                            writable=(Path("/c/cache/work/m"),), cwd=Path("/"))
    argv = sandbox.bwrap_argv(policy, ["true"], {})
    order = [argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind", "--tmpfs")]
    assert order.index("/c/cache") < order.index("/c/cache/work/m")
    assert order.index("/tmp") < order.index("/tmp/t/src")


def test_it_starts_in_an_empty_stand_in_of_the_working_folder_unless_one_is_bound():
    alone = sandbox.Policy(readable=(Path("/srv/checkout/quantbot.toml"),), writable=(),
                           cwd=Path("/srv/checkout"))
    argv = sandbox.bwrap_argv(alone, ["true"], MERGED_USR)
    assert argv[argv.index("--dir") + 1] == "/srv/checkout"
    inside = sandbox.Policy(readable=(Path("/srv"),), writable=(), cwd=Path("/srv/checkout"))
    assert "--dir" not in sandbox.bwrap_argv(inside, ["true"], MERGED_USR)


@pytest.mark.parametrize("writable", ["/home/runner", "/srv/checkout", "/srv/venv"])
def test_a_writable_folder_holding_the_install_or_checkout_is_refused(writable):
    policy = sandbox.Policy(readable=(Path("/srv/venv"), Path("/home/runner/hf/models--a--b")),
                            writable=(Path(writable),), cwd=Path("/srv/checkout"))
    with pytest.raises(QuantbotError, match=r"must stay read-only.*--out and --work"):
        sandbox.bwrap_argv(policy, ["true"], MERGED_USR)


def test_no_token_or_runner_file_crosses_into_the_sandbox():
    env = {"HF_TOKEN": "hf_x", "HF_TOKEN_PATH": "/t", "GITHUB_TOKEN": "g", "GH_TOKEN": "g",
           "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "a", "ACTIONS_RUNTIME_TOKEN": "a",
           "AWS_SECRET_ACCESS_KEY": "k", "QUANTBOT_API_KEY": "k", "GITHUB_ENV": "/r/env",
           "GITHUB_PATH": "/r/path", "LD_PRELOAD": "/x.so", "HOME": "/home/runner",
           "HF_HOME": "/srv/hf", "TOKENIZERS_PARALLELISM": "false", "PATH": "/usr/bin",
           "PYTHONPATH": "/src", "CUDA_VISIBLE_DEVICES": "0", "GITHUB_ACTIONS": "true"}
    inside = sandbox.sandbox_env(env, Path("/srv/cache"))
    assert inside == {"HF_HOME": "/srv/hf", "TOKENIZERS_PARALLELISM": "false",
                      "PATH": "/usr/bin", "PYTHONPATH": "/src", "CUDA_VISIBLE_DEVICES": "0",
                      "GITHUB_ACTIONS": "true", "HOME": "/tmp", "TMPDIR": "/tmp",
                      "QUANTBOT_CACHE": "/srv/cache", "HF_HUB_OFFLINE": "1",
                      "HF_HUB_DISABLE_TELEMETRY": "1", sandbox.SANDBOX_ENV: "bwrap"}


def test_make_refuses_to_run_unsandboxed_silently(monkeypatch, tmp_path):
    """Without bubblewrap, `--isolation bwrap` fails with the fix, before any tool runs."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    with pytest.raises(QuantbotError, match=r"sandbox is not available.*apt-get install "
                                            r"bubblewrap.*--isolation none"):
        sandbox.run(sandbox.Policy((), (tmp_path,), tmp_path), ["true"])


def test_the_sandboxed_make_gets_every_option_as_given(tmp_path):
    """The download phase runs `make` again in the sandbox: every option it does not set
    itself (plan, method, folders, owner) crosses as given, whatever options `make` gains."""
    plan = tmp_path / "plan.json"
    plan.write_text("{}")
    base = ["--plan", str(plan), "--method", "gguf", "--out", str(tmp_path / "o")]
    given = make_cmd.make_context("make", [*base, "--ctx", "64", "--chunks", "3", "--device",
                                           "cpu", "--isolation", "bwrap"])
    forwarded = forwarded_options(given, SANDBOX_SETS)
    again = make_cmd.make_context("make", [*base, *forwarded])
    assert "--isolation" not in forwarded
    assert {k: v for k, v in again.params.items() if k not in SANDBOX_SETS} == {
        k: v for k, v in given.params.items() if k not in SANDBOX_SETS}


def test_options_cross_with_flags_and_repeats():
    @click.command()
    @click.option("--cpu/--no-cpu", default=True)
    @click.option("--fast", is_flag=True)
    @click.option("-t", "--tag", multiple=True)
    @click.option("--n", type=int, default=None)
    def cmd(cpu: bool, fast: bool, tag: tuple[str, ...], n: int | None) -> None: ...

    ctx = cmd.make_context("cmd", ["--no-cpu", "--fast", "-t", "a", "-t", "b"])
    assert forwarded_options(ctx, frozenset()) == ["--no-cpu", "--fast", "--tag", "a", "--tag",
                                                   "b"]
    assert forwarded_options(cmd.make_context("cmd", []), frozenset({"tag"})) == ["--cpu"]


# -- the sandbox (bubblewrap) ---------------------------------------------------------------------
def _alive(token: str) -> list[int]:
    """Processes on this machine whose command line holds ``token``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and token.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


#: Started in the sandbox: a daemon in a session of its own that ignores SIGHUP and SIGTERM, says
#: it runs, and would sleep for five minutes; its starter returns at once.
DAEMON = """
import os, subprocess, sys, time
started, token = sys.argv[1], sys.argv[2]
code = ("import signal, sys, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); open(sys.argv[1], 'w').close(); "
        "time.sleep(300)")
subprocess.Popen([sys.executable, "-c", code, started, token], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while not os.path.exists(started):
    time.sleep(0.05)
"""


def _end(token: str) -> None:
    """End what a failing test left running (its own processes, by id)."""
    for pid in _alive(token):
        os.kill(pid, signal.SIGKILL)


@needs_bwrap
def test_no_process_outlives_the_sandbox(tmp_path):
    """A daemon started inside is gone when the sandboxed command returns, so nothing is left
    running when the publish step gets the token."""
    token = f"quantbot-daemon-{uuid.uuid4().hex}"
    policy = sandbox.make_policy(readable=[], writable=[tmp_path])
    started = tmp_path / "started"
    try:
        assert sandbox.run(policy, [sys.executable, "-c", DAEMON, str(started), token]) == 0
        assert started.exists()  # it did run
        time.sleep(0.2)
        assert _alive(token) == []
    finally:
        _end(token)


@needs_bwrap
def test_the_sandbox_writes_only_its_folders_and_reaches_no_network(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("the runner's")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    host_tmp = Path("/tmp") / f"quantbot-{uuid.uuid4().hex}"
    venv = Path(sys.prefix)
    checkout = Path(sandbox.__file__).parents[1]
    probe = f"""
import json, os, socket, sys
tried = {{}}
for name, folder in {{"venv": {str(venv)!r}, "checkout": {str(checkout)!r},
                     "cache": {str(cache_dir())!r}, "outside": {str(outside)!r},
                     "home": {os.path.expanduser("~")!r}, "out": {str(out)!r}}}.items():
    try:
        with open(os.path.join(folder, "hostile-{host_tmp.name}"), "w") as fh:
            fh.write("x")
        tried[name] = "written"
    except OSError as exc:
        tried[name] = exc.strerror
open({str(host_tmp)!r}, "w").write("private")
try:
    tried["read outside"] = open({str(outside / "secret")!r}).read()
except OSError as exc:
    tried["read outside"] = exc.strerror
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3)
    tried["network"] = "connected"
except OSError as exc:
    tried["network"] = exc.strerror
tried["secrets"] = sorted(k for k in os.environ if "TOKEN" in k and "TOKENIZERS" not in k)
open({str(out / "tried.json")!r}, "w").write(json.dumps(tried))
"""
    policy = sandbox.make_policy(readable=[], writable=[out])
    env = {**os.environ, "HF_TOKEN": "hf_secret", "GITHUB_TOKEN": "ghs_secret"}
    try:
        assert sandbox.run(policy, [sys.executable, "-c", probe], env) == 0
        tried = json.loads((out / "tried.json").read_text())
        assert tried.pop("out") == "written"
        assert tried.pop("read outside") == "No such file or directory"
        assert tried.pop("network") != "connected" and tried.pop("secrets") == []
        assert "written" not in tried.values(), tried
        assert not host_tmp.exists()  # its /tmp was its own, and is gone
        assert [f for f in (venv, checkout, cache_dir(), outside, Path.home())
                if (f / f"hostile-{host_tmp.name}").exists()] == []
    finally:
        server.close()
        for folder in (venv, checkout, cache_dir(), outside, Path.home()):
            (folder / f"hostile-{host_tmp.name}").unlink(missing_ok=True)
        host_tmp.unlink(missing_ok=True)


@needs_bwrap
def test_of_the_working_folder_it_sees_the_configuration_only(tmp_path, monkeypatch):
    """The make step reads quantbot.toml from where it runs (the checkout on a runner, maybe a
    home folder elsewhere); nothing else there is visible."""
    (tmp_path / "quantbot.toml").write_text("[hub]\nnamespace = 'qb'\n")
    (tmp_path / ".env").write_text("HF_TOKEN=hf_secret\n")
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)
    policy = sandbox.make_policy(readable=config_files(), writable=[out])
    listing = "import os, sys; open(sys.argv[1], 'w').write(' '.join(sorted(os.listdir('.'))))"
    assert sandbox.run(policy, [sys.executable, "-c", listing, str(out / "seen")]) == 0
    assert (out / "seen").read_text() == "out quantbot.toml"


#: Stands for a malicious model file exploiting a tool: this code runs in every Python process
#: the make step starts inside the sandbox (never outside it, where only quantbot's own code
#: reads the download). The first one leaves a daemon that, a moment later, would swap the
#: quantized file for its own and drop a file beside it, and tries to change the machine.
HOSTILE = """
import json, os, subprocess, sys
if os.environ.get("QUANTBOT_SANDBOX"):
    try:
        os.close(os.open({marker!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        first = True
    except FileExistsError:
        first = False
    if first:
        tamper = ("import glob, time; time.sleep(2); "
                  "[open(p, 'ab').write(b'evil') for p in glob.glob({out!r} + '/*/*/*.gguf')]; "
                  "open({out!r} + '/quantbot/tiny-GGUF/evil.gguf', 'w').write('evil')")
        subprocess.Popen([sys.executable, "-c", tamper, {token!r}], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        tried = {{}}
        for name, folder in {targets!r}.items():
            try:
                with open(os.path.join(folder, {token!r}), "w") as fh:
                    fh.write("changed by a model")
                tried[name] = "written"
            except OSError as exc:
                tried[name] = exc.strerror
        tried["secrets"] = sorted(k for k in os.environ if k.endswith("TOKEN"))
        with open({report!r}, "w") as fh:
            json.dump(tried, fh)
"""


@pytest.mark.slow
@needs_bwrap
def test_a_hostile_make_step_leaves_nothing_for_publish(tmp_path, tiny_model, toolchain):
    """`run-job make --isolation bwrap` as the workflow runs it, with code of the model's
    choosing in every process of the sandboxed phase: it cannot write the venv, the checkout,
    quantbot's cache (the llama.cpp tools later jobs run), the source in the Hub cache or the
    runner's home, sees no token, and its daemon is gone when make returns, so the files the
    publish step checks and uploads are the ones make recorded."""
    token = f"hostile-{uuid.uuid4().hex}"
    out, work, hostile = tmp_path / "results", tmp_path / "work", tmp_path / "hostile"
    hostile.mkdir()
    checkout = Path(sandbox.__file__).parents[1]
    targets = {"venv": str(Path(sys.prefix)), "checkout": str(checkout),
               "cache": str(cache_dir()), "source": str(tiny_model),
               "home": os.path.expanduser("~"), "hostile": str(hostile),
               "other models' work": str(work)}
    (hostile / "sitecustomize.py").write_text(HOSTILE.format(
        marker=str(out / ".hostile-ran"), out=str(out), token=token, targets=targets,
        report=str(out / "tried.json")))
    plan = tmp_path / "plan.json"
    result = CliRunner().invoke(run_job, ["plan", "--model", "org/tiny", "-o", str(plan),
                                          "--comment", "/quantize gguf=Q8_0"])
    assert result.exit_code == 0, result.output
    env = {**os.environ, "HF_TOKEN": "hf_secret", "QUANTBOT_CACHE": str(cache_dir()),
           "PYTHONPATH": os.pathsep.join([str(hostile), str(checkout),
                                          os.environ.get("PYTHONPATH", "")])}
    try:
        make = subprocess.run(
            [str(Path(sys.executable).with_name("quantbot")), "run-job", "make", "--plan",
             str(plan), "--method", "gguf", "--out", str(out), "--work", str(work), "--source",
             str(tiny_model), "--ctx", "64", "--chunks", "4", "--isolation", "bwrap"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert make.returncode == 0, make.stderr[-3000:]
        tried = json.loads((out / "tried.json").read_text())
        assert tried.pop("secrets") == []
        # what it sees of the machine, it sees read-only; the rest (the runner's home, the work
        # folder around its own) is absent or an empty stand-in on its private /tmp
        assert {k: v for k, v in tried.items() if k in ("venv", "checkout", "cache", "source",
                                                        "hostile")} == {
            "venv": "Read-only file system", "checkout": "Read-only file system",
            "cache": "Read-only file system", "source": "Read-only file system",
            "hostile": "Read-only file system"}, tried
        assert [f for f in targets.values() if (Path(f) / token).exists()] == []
        time.sleep(3)  # the daemon's delay, and then some
        assert _alive(token) == []
        repo = out / "quantbot" / "tiny-GGUF"
        assert not (repo / "evil.gguf").exists()
        recorded = recorded_files(load_run(repo))
        assert list(recorded) == ["tiny.Q8_0.gguf"]
        size, sha = file_digest(repo / "tiny.Q8_0.gguf")
        assert recorded["tiny.Q8_0.gguf"] == {"size": size, "sha256": sha}

        hub = tmp_path / "hub"
        published = CliRunner().invoke(run_job, ["publish", "--results", str(out), "--plan",
                                                 str(plan), "--hub-dir", str(hub)])
        assert published.exit_code == 0, published.output
        assert file_digest(hub / "quantbot" / "tiny-GGUF" / "tiny.Q8_0.gguf") == (size, sha)
    finally:
        _end(token)
        for folder in targets.values():
            (Path(folder) / token).unlink(missing_ok=True)


@pytest.mark.slow
@needs_bwrap
def test_make_downloads_outside_then_reads_only_the_pinned_snapshot_inside(
        model_hub, tmp_path, tiny_model, toolchain):  # noqa: F811
    """The download phase fills the Hub cache (network, no token); the sandbox sees that
    model's cache folder read-only (the snapshot's links into its blobs resolve) and records
    the pinned commit, as the unsandboxed make does."""
    pinned = model_hub.add_model("TinyOrg/tiny-llama", {p.name: p.read_bytes()
                                                        for p in tiny_model.iterdir()
                                                        if p.is_file()})
    plan = tmp_path / "plan.json"
    out = tmp_path / "results"
    for args in (["plan", "--model", "TinyOrg/tiny-llama", "--revision", pinned, "--comment",
                  "/quantize gguf=Q8_0", "-o", plan],
                 ["make", "--plan", plan, "--method", "gguf", "--out", out, "--work",
                  tmp_path / "work", "--ctx", 64, "--chunks", 4, "--isolation", "bwrap"],
                 ["publish", "--results", out, "--plan", plan, "--hub-dir", tmp_path / "hub"]):
        result = CliRunner().invoke(run_job, [str(a) for a in args])
        assert result.exit_code == 0, (result.output, result.exception)
    run = load_run(tmp_path / "hub" / "quantbot" / "tiny-llama-GGUF")
    assert run.source.revision == pinned and run.source.repo_id == "TinyOrg/tiny-llama"
    assert "model.safetensors" in run.provenance["source_files"]
