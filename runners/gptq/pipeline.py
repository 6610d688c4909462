"""GPTQ and AWQ with GPTQModel: the transformers-family pipeline with GPTQModel as quantizer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from runners.errors import QuantbotError
from runners.gptq.groups import AUTO_ORDER, model_widths, resolve
from runners.gptq.quantize import prepare_env, verify_folder
from runners.gptq.spec import AwqSpec, GptqSpec
from runners.gptq.types import AUTO_GROUP
from runners.hfmodel.pipeline import Quantizer, run_variants
from runners.results import QuantRun
from runners.settings import RunSettings
from runners.source import SourceModel

QUANTIZER = Quantizer(module="runners.gptq.quantize", verify=verify_folder, env=prepare_env())
TOOLS = {"loader": "transformers AutoModelForCausalLM (+ gptqmodel kernels, optimum)"}


def run(source: SourceModel, spec: GptqSpec | AwqSpec, settings: RunSettings,
        repo_dir: Path) -> QuantRun:
    """Make, check and measure every variant of ``spec`` into ``repo_dir``."""
    missing = [m for m in ("gptqmodel", "optimum") if importlib.util.find_spec(m) is None]
    if missing:
        raise QuantbotError(f"{spec.LABEL} needs {' and '.join(missing)}",
                            "install quantbot's gpu extra: pip install -e '.[gpu]'")
    method = spec.LABEL.lower()
    widths = model_widths(source.path)
    chosen = resolve(spec, widths)
    tools = dict(TOOLS)
    if AUTO_GROUP in spec.group_size:
        tools["group_size"] = (f"auto: {', '.join(map(str, chosen.group_size))}, the largest of "
                               f"{', '.join(map(str, AUTO_ORDER))} dividing every quantized "
                               f"layer's input width ({', '.join(map(str, sorted(widths)))})")
    return run_variants(source, method, list(chosen.variants()), QUANTIZER, settings, repo_dir,
                        tools)
