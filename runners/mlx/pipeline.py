"""MLX with mlx-lm: the transformers-family pipeline with mlx-lm as quantizer and as runtime.

The unquantized baseline is transformers' (scored once per model and shared with GPTQ, AWQ, NF4
and FP8, so every format is on one scale); each variant is loaded, measured and answers the
prompts in mlx-lm, and its answers are compared with the unquantized model answering in mlx-lm.
"""

from __future__ import annotations

from pathlib import Path

from runners.hfmodel.pipeline import Quantizer, Runtime, run_variants
from runners.mlx.quantize import verify_folder
from runners.mlx.spec import MlxSpec
from runners.results import QuantRun
from runners.settings import RunSettings
from runners.source import SourceModel

MLX = Runtime("mlx-lm", "runners.mlx.check", "reference-mlx")
#: Round-to-nearest per group: no calibration data.
QUANTIZER = Quantizer(module="runners.mlx.quantize", verify=verify_folder, calibrated=False,
                      runtime=MLX)
TOOLS = {"loader": "mlx_lm.load",
         "measured": "mlx-lm's own forward pass (where it runs on a CPU, with the weights "
                     "dequantized by mx.dequantize), against transformers' log-probabilities of "
                     "the unquantized model"}


def run(source: SourceModel, spec: MlxSpec, settings: RunSettings, repo_dir: Path) -> QuantRun:
    """Make, check and measure every MLX variant into ``repo_dir``."""
    return run_variants(source, "mlx", spec.variants(), QUANTIZER, settings, repo_dir, TOOLS)
