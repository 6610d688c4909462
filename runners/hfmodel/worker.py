"""The request/result protocol of quantbot's GPU worker processes (quantize, check).

The caller writes ``<name>.request.json`` in the work folder and runs
``python -m MODULE REQUEST RESULT`` there (GPTQModel writes its own ``logs/`` into the current
directory); the worker answers with ``<name>.result.json``. Each variant thus starts in a clean
process whose peak memory is its own.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from runners.errors import QuantbotError
from runners.proc import ToolRun, run_tool


def call(module: str, name: str, request: dict[str, Any], work_dir: Path,
         env: Mapping[str, str], log_file: Path | None = None) -> tuple[dict[str, Any], ToolRun]:
    """Run ``module`` on ``request``; its JSON result and the process record.

    Raises :class:`runners.proc.ToolFailed` when the worker exits non-zero.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    request_file = work_dir / f"{name}.request.json"
    result_file = work_dir / f"{name}.result.json"
    result_file.unlink(missing_ok=True)
    request_file.write_text(json.dumps(request))
    run = run_tool([sys.executable, "-m", module, request_file, result_file], env=env,
                   log_file=log_file, cwd=work_dir)
    return json.loads(result_file.read_text()), run


def serve(module: str, handler: Callable[[dict[str, Any]], dict[str, Any]],
          argv: list[str] | None = None) -> int:
    """A worker's ``main``: read the request, run ``handler``, write the result (exit 1 on error)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write(f"usage: python -m {module} REQUEST.json RESULT.json\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = handler(json.loads(Path(args[0]).read_text()))
    except QuantbotError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    Path(args[1]).write_text(json.dumps(result))
    return 0
