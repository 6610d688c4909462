"""NF4 with bitsandbytes: the transformers-family pipeline with bitsandbytes as quantizer."""

from __future__ import annotations

from pathlib import Path

from runners.hfmodel.pipeline import Quantizer, run_variants
from runners.nf4.quantize import verify_folder
from runners.nf4.spec import Nf4Spec
from runners.results import QuantRun
from runners.settings import RunSettings
from runners.source import SourceModel

#: Round-to-nearest per block: no calibration data.
QUANTIZER = Quantizer(module="runners.nf4.quantize", verify=verify_folder, calibrated=False)
TOOLS = {"loader": "transformers AutoModelForCausalLM (+ bitsandbytes)"}


def run(source: SourceModel, spec: Nf4Spec, settings: RunSettings, repo_dir: Path) -> QuantRun:
    """Make, check and measure the NF4 variant into ``repo_dir``."""
    return run_variants(source, "nf4", [spec.variant()], QUANTIZER, settings, repo_dir, TOOLS)
