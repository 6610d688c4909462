"""The quantize-jobs workflow's hand-over of records, run as the workflow runs it: a method job's
"Keep the record" step (its own script, read from the workflow file) and the folder layout the
report job's ``download-artifact`` gives (one ``report-<method>/`` folder per artifact)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "quantize-jobs.yml"
KEEP_RECORD = "Keep the record for the report"


def keep_record_script() -> str:
    """The ``run:`` script of the make job's record step."""
    steps = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["make"]["steps"]
    return next(s["run"] for s in steps if s.get("name") == KEEP_RECORD)


def hand_over(runner_temp: Path, report: Path, method: str) -> Path:
    """Run the record step in ``runner_temp`` (whose ``results/`` a method job filled), then lay
    its artifact out as the report job downloads it: ``report/report-<method>/``, without
    hidden files (upload-artifact leaves them out)."""
    subprocess.run(["bash", "-e", "-c", keep_record_script()], check=True, timeout=60,
                   env={**os.environ, "RUNNER_TEMP": str(runner_temp)})
    dest = Path(report) / f"report-{method}"
    shutil.copytree(Path(runner_temp) / "report", dest, ignore=shutil.ignore_patterns(".*"))
    return dest
