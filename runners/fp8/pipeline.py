"""FP8 dynamic with compressed-tensors: the transformers-family pipeline with FP8 as quantizer."""

from __future__ import annotations

from pathlib import Path

from runners.fp8.quantize import verify_folder
from runners.fp8.spec import Fp8Spec
from runners.hfmodel.pipeline import Quantizer, run_variants
from runners.results import QuantRun
from runners.settings import RunSettings
from runners.source import SourceModel

#: Scales from the weights alone (absolute maximum per output channel): no calibration data.
QUANTIZER = Quantizer(module="runners.fp8.quantize", verify=verify_folder, calibrated=False)
TOOLS = {"loader": "transformers AutoModelForCausalLM (+ compressed-tensors)"}


def run(source: SourceModel, spec: Fp8Spec, settings: RunSettings, repo_dir: Path) -> QuantRun:
    """Make, check and measure the FP8 variant into ``repo_dir``."""
    return run_variants(source, "fp8", [spec.variant()], QUANTIZER, settings, repo_dir, TOOLS)
