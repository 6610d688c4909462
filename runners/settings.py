"""How a method runs on a runner: the knobs that are not part of what users ask (pure).

What to make is a method's spec (:mod:`runners.spec`); how to make and measure it here (where the
work goes, evaluation windows, parallelism, device, calibration size, file splitting) is this one
dataclass, shared by every method, so the command line defines each knob once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runners.errors import QuantbotError

#: The Hub rejects files over 50 GB.
HUB_MAX_FILE_BYTES = 50 * 10**9
#: Where GGUF files are split with llama-gguf-split: below the Hub's limit, with room for the
#: tool's rounding to whole megabytes and the split header.
SPLIT_BYTES = 48 * 10**9


@dataclass(frozen=True)
class RunSettings:
    """Where and how one method runs. Defaults are the measured-card defaults."""

    work_dir: Path
    ctx: int = 512  # evaluation window, tokens
    chunks: int = 32  # evaluation windows at most
    #: Measure each file on 4, 8, 16 … windows until its KLD is settled (runners.adaptive);
    #: False: every file on all ``chunks`` windows.
    adaptive: bool = True
    jobs: int = 0  # GGUF tools in parallel; 0: from cores and memory
    threads: int = 0  # threads per tool; 0: cores / jobs
    split_bytes: int = SPLIT_BYTES
    device: str = "auto"  # transformers-family methods: auto, cuda or cpu
    dtype: str = "auto"
    calib_samples: int = 128
    calib_len: int = 512
    batch_size: int = 1
    check_tokens: int = 16
    #: The importance-matrix calibration text, already in the model's chat format
    #: (:mod:`runners.calibration_mix`); None: the calibration split of the docs corpus.
    calibration_file: Path | None = None
    #: The evaluation text, by domain, already in the model's chat format (a
    #: :class:`runners.evaluation_mix.EvaluationText` file); None: the docs' evaluation split.
    evaluation_file: Path | None = None
    #: Answer agreement (:mod:`runners.answers`): how many of the shipped prompts (0: none) and
    #: how many new tokens each answer may take.
    answers: int = 64
    answer_tokens: int = 48
    #: Those prompts rendered for this model (a :class:`runners.answers.PromptSet` file); None:
    #: answer agreement is not measured.
    answer_prompts_file: Path | None = None

    def __post_init__(self) -> None:
        if self.ctx < 8 or self.chunks < 1:
            raise QuantbotError(f"bad evaluation window {self.chunks} x {self.ctx}",
                                "use --ctx 8 or more and at least one chunk")
        if self.answers < 0 or self.answer_tokens < 1:
            raise QuantbotError(f"bad answer set: {self.answers} prompts x {self.answer_tokens} "
                                "tokens", "use --answers 0 (none) or more, --answer-tokens 1 or more")
        if not 10**6 <= self.split_bytes <= HUB_MAX_FILE_BYTES:
            raise QuantbotError(f"split size {self.split_bytes} bytes is outside 1 MB … 50 GB",
                                "pass --split-size between 1M and 50G (the Hub's per-file limit)")
