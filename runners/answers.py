"""Answer agreement: does a quantized file still answer like the model it came from?

KL divergence says how far the next-token distributions moved; users notice something else:
whether the file says the same thing. So each file answers a fixed set of chat prompts
(``runners/data/answer-prompts.json``: short facts, small coding tasks, 20 languages, tool-call
turns; written for quantbot, Apache-2.0) greedily, up to a fixed number of new tokens, in the
runtime its users run it in, and so does the unquantized reference in the same runtime. Per file:

* **identical**: the share of prompts whose answer is token for token the reference's, with its
  95 % Wilson interval;
* **prefix**: the mean share of identical leading tokens (common prefix length over the longer
  answer: 1 when identical, 0 when the first token differs), with its 95 % interval. It is the
  graded figure: exact matches alone are too coarse to tell low-bit files apart.

Prompts are rendered through the model's own chat template by the caller (in the bounded
sandbox, :func:`bot.cards.prompt.render_conversations`) and handed to the runtimes as a
:class:`PromptSet` file; this module is pure apart from reading and writing that file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from runners.stats import Z95

PROMPTS_FILE = "answer-prompts.json"
#: New tokens each answer may take. Long enough to say a sentence, short enough that a small
#: runner answers 64 prompts per file in seconds to minutes.
DEFAULT_TOKENS = 48


@dataclass(frozen=True)
class Prompt:
    """One chat prompt of the shipped set."""

    id: str
    kind: str  # fact, code, language, tool_call
    language: str
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class PromptLibrary:
    """The shipped prompts with their source and licence."""

    name: str
    source: str
    license: str
    prompts: list[Prompt]


@cache
def prompt_library() -> PromptLibrary:
    data = json.loads((resources.files("runners") / "data" / PROMPTS_FILE).read_text("utf-8"))
    return PromptLibrary(name=data["name"], source=data["source"], license=data["license"],
                         prompts=[Prompt(**p) for p in data["prompts"]])


def pick_prompts(prompts: list[Prompt], count: int) -> list[Prompt]:
    """``count`` prompts spread evenly over the list (so every kind stays in a smaller set)."""
    if count >= len(prompts):
        return list(prompts)
    return [prompts[i * len(prompts) // count] for i in range(count)]


@dataclass(frozen=True)
class PromptSet:
    """The prompts as one model sees them: rendered texts, and how they were rendered."""

    ids: list[str]
    texts: list[str]
    rendering: str  # "chat template" or why plain text was used
    max_new_tokens: int = DEFAULT_TOKENS

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> PromptSet:
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))


def plain_text(messages: list[dict[str, str]]) -> str:
    """A conversation as plain text, for a model without a (usable) chat template."""
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


def folded(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation with a system turn folded into the first user turn, for templates that
    refuse a system role (Gemma's raise)."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system and rest:
        rest[0]["content"] = "\n\n".join([*system, rest[0]["content"]])
    return rest


def interval(values: list[float]) -> tuple[float, float, float]:
    """Mean of ``values`` and its 95 % normal interval, clipped to [0, 1] (pure)."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0, 1.0
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = Z95 * sd / math.sqrt(n)
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion: sound at 0/n and n/n, unlike the normal one."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def prefix_share(reference: list[int], candidate: list[int]) -> float:
    """Identical leading tokens over the longer answer's length (1.0 for identical answers)."""
    longest = max(len(reference), len(candidate))
    if longest == 0:
        return 1.0
    same = 0
    for a, b in zip(reference, candidate, strict=False):
        if a != b:
            break
        same += 1
    return same / longest


@dataclass(frozen=True)
class Answers:
    """How one file's answers compare with the reference's on the same prompts (pure data)."""

    prompts: int
    identical: int
    identical_low: float
    identical_high: float
    prefix_mean: float
    prefix_low: float
    prefix_high: float
    max_new_tokens: int
    reference: str  # what answered first: "BF16 GGUF in llama.cpp", "bf16 model in transformers"
    #: Per prompt: ``{"id", "identical", "prefix", "text"}`` (the answer, shortened).
    per_prompt: list[dict[str, Any]] = field(default_factory=list)

    @property
    def identical_share(self) -> float:
        return self.identical / self.prompts if self.prompts else 0.0

    def clearly_above(self, other: Answers) -> bool:
        """This file's prefix agreement is higher than ``other``'s beyond both intervals."""
        return self.prefix_low > other.prefix_high


#: Characters of each answer kept in quantbot.json (the card shows none of them).
KEEP_CHARS = 160


def compare(ids: list[str], reference: list[list[int]], candidate: list[list[int]],
            texts: list[str], max_new_tokens: int, reference_name: str) -> Answers:
    """Agreement of ``candidate``'s answers (token ids per prompt) with ``reference``'s."""
    if not (len(ids) == len(reference) == len(candidate) == len(texts)) or not ids:
        raise ValueError(f"answers for {len(ids)} prompts: {len(reference)} reference, "
                         f"{len(candidate)} candidate, {len(texts)} texts")
    shares = [prefix_share(r, c) for r, c in zip(reference, candidate, strict=True)]
    same = [r == c for r, c in zip(reference, candidate, strict=True)]
    mean, low, high = interval(shares)
    i_low, i_high = wilson(sum(same), len(same))
    return Answers(
        prompts=len(ids), identical=sum(same), identical_low=round(i_low, 4),
        identical_high=round(i_high, 4), prefix_mean=round(mean, 4), prefix_low=round(low, 4),
        prefix_high=round(high, 4), max_new_tokens=max_new_tokens, reference=reference_name,
        per_prompt=[{"id": i, "identical": s, "prefix": round(p, 4), "text": t[:KEEP_CHARS]}
                    for i, s, p, t in zip(ids, same, shares, texts, strict=True)])


def strip_stop(tokens: list[int], stop_ids: set[int]) -> list[int]:
    """An answer's tokens up to (not including) its first end-of-generation token."""
    for index, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:index]
    return tokens
