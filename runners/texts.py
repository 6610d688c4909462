"""English prose from Python's own docs: what the demo model trains and is measured on, what
GPTQ/AWQ calibrate on, and the prose of real models' evaluation mix (:mod:`runners.evaluation_mix`).

The corpus is made offline from what every CPython ships: the prose paragraphs of the language
reference (``pydoc_data.topics``) and of the standard library's docstrings (read with ``ast``,
nothing imported). Code, grammar and doctest blocks are dropped. It is built once from
CPython 3.11 and shipped gzipped in ``runners/data/`` so that every machine measures on the same
bytes whatever its Python; ``python -m runners.texts`` rebuilds it.

Each paragraph goes to one split by the SHA-256 of its text, so the splits never share a
paragraph, even a duplicated one: ``evaluation`` (10 %), ``calibration`` (10 %), ``train`` (80 %).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import re
import sys
import sysconfig
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

Split = Literal["train", "calibration", "evaluation"]
CORPUS_FILE = "python-docs.txt.gz"
CORPUS_NAME = "Python 3.11 documentation prose (language reference + stdlib docstrings)"
_BUCKETS: dict[Split, set[int]] = {"evaluation": {0}, "calibration": {1},
                                   "train": set(range(2, 10))}


@dataclass(frozen=True)
class TextSet:
    """One split of the corpus, with what a card needs to name it."""

    name: str
    split: Split
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text, encoding="utf-8")
        return path


def _prose(block: str, min_chars: int) -> str | None:
    """A paragraph of running prose as one line, or None for code, grammar and headings."""
    lines = block.strip("\n").split("\n")
    if any(line.startswith((" ", "\t", ">>>")) for line in lines):
        return None
    if len(lines) >= 2 and re.fullmatch(r"[*=\-~^]+", lines[-1].strip()):
        return None
    text = " ".join(line.strip() for line in lines).strip()
    if len(text) < min_chars or not text[0].isupper() or not text.endswith((".", ":")):
        return None
    return text


def build_corpus() -> list[str]:
    """Prose paragraphs from this Python's docs, in a fixed order (used to make the data file)."""
    import pydoc_data.topics as topics

    paragraphs: list[str] = []
    for key in sorted(topics.topics):
        paragraphs += filter(None, (_prose(b, 40) for b in re.split(r"\n\s*\n", topics.topics[key])))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo"}
    for path in sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py")):
        if skip & set(path.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    paragraphs += filter(None, (_prose(b, 80) for b in re.split(r"\n\s*\n", doc)))
    return list(dict.fromkeys(paragraphs))


@cache
def corpus() -> tuple[str, ...]:
    """The shipped corpus, one paragraph per line."""
    data = resources.files("runners") / "data" / CORPUS_FILE
    with gzip.open(data.open("rb"), "rt", encoding="utf-8") as fh:
        return tuple(line.rstrip("\n") for line in fh if line.strip())


def _bucket(paragraph: str) -> int:
    return int.from_bytes(hashlib.sha256(paragraph.encode()).digest()[:8], "big") % 10


@cache
def text_set(split: Split) -> TextSet:
    """The paragraphs of one split, joined by blank lines, in corpus order."""
    chosen = [p for p in corpus() if _bucket(p) in _BUCKETS[split]]
    return TextSet(name=CORPUS_NAME, split=split, text="\n\n".join(chosen) + "\n")


def main() -> None:
    """Rebuild ``runners/data/python-docs.txt.gz`` from the running Python."""
    out = Path(__file__).parent / "data" / CORPUS_FILE
    out.parent.mkdir(exist_ok=True)
    paragraphs = build_corpus()
    with gzip.GzipFile(out, "wb", mtime=0) as fh:
        fh.write(("\n".join(paragraphs) + "\n").encode())
    sys.stderr.write(f"wrote {len(paragraphs)} paragraphs to {out}\n")


if __name__ == "__main__":
    main()
