"""The evaluation text of real models: English prose, Python code, chat turns in the model's own
template and 20 languages, laid out so every window measures one domain.

Users chat, write code and use many languages, and low-bit files and importance matrices hurt
those first, so a real model is measured on four domains (:data:`DOMAINS`), each with its own
KL divergence. The mix ships with quantbot (``runners/data/evaluation-mix.json.gz``), built
offline by ``python -m runners.evaluation_mix`` from the sources of :mod:`runners.mix_sources`
(the same as the calibration mix's, with their licences and pins). No sample of it shares a line
with the calibration mix (:func:`runners.mix_sources.content_hashes`; a test checks).

At use time the chats are rendered through the model's chat template (in the bounded sandbox,
by the bot) and each domain becomes one text (:class:`EvaluationText`). Both evaluators cut
each domain's text into windows on its own and take them in turn, prose, code, chat, languages,
prose … (:func:`window_order`), so each window holds one domain and every prefix of 4, 8, 16 …
windows (what adaptive measurement uses) covers the domains evenly.

The built-in fast demo model keeps the Python-docs text (:func:`docs_text`), one domain.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from runners.calibration_mix import calibration_mix
from runners.mix_sources import (
    DJANGO_CATALOGUES,
    DJANGO_LICENCE,
    DJANGO_SHA256,
    LANGUAGES,
    PSF,
    PYTHON,
    PYTHON_DOCS,
    STDLIB,
    Source,
    catalogues,
    content_hashes,
    first_sentence,
    interleave,
    po_messages,
    read_shipped,
    rebuild,
    source_functions,
)
from runners.texts import CORPUS_NAME, text_set

MIX_FILE = "evaluation-mix.json.gz"
MIX_NAME = ("quantbot evaluation mix: English prose, Python code, chat turns in the model's "
            f"chat template, {len(LANGUAGES)} languages")


@dataclass(frozen=True)
class Domain:
    """One kind of text the evaluation measures on its own."""

    key: str
    title: str  # what a card calls it
    source: Source


DOMAINS: tuple[Domain, ...] = (
    Domain("prose", "English prose", Source(f"{PYTHON_DOCS} prose, evaluation split", PSF)),
    Domain("code", "Python code", Source(
        f"{STDLIB}: functions of modules the calibration mix does not use, docstrings removed",
        PSF)),
    Domain("chat", "Chat", Source(
        f"{PYTHON_DOCS} paragraphs (train split) and standard-library functions as "
        "conversations, rendered through the model's chat template", PSF)),
    Domain("languages", f"{len(LANGUAGES)} languages", Source(
        f"{DJANGO_CATALOGUES} (contrib apps, then core), messages interleaved by language",
        DJANGO_LICENCE)),
)
DOMAIN_KEYS = tuple(d.key for d in DOMAINS)
#: Standard-library modules of the code domain and of the chats' code answers (none of
#: :data:`runners.calibration_mix.CODE_MODULES`).
CODE_MODULES = ("argparse", "ast", "configparser", "dataclasses", "functools", "inspect",
                "pathlib", "pprint", "random", "shutil", "tarfile", "tokenize", "zipfile",
                "urllib/parse", "email/utils", "gettext", "glob", "copy", "enum", "typing")
CHAT_CODE_MODULES = ("contextlib", "operator", "posixpath", "locale", "sched", "queue", "weakref",
                     "quopri", "colorsys", "secrets", "graphlib", "tempfile")
#: Characters of each built domain (about 20-30 k tokens each for a typical tokenizer).
DOMAIN_CHARS = 90_000
_ASK_PROSE = ("I'm reading Python's documentation and it says: \"{first}\" What else should I "
              "know?", "Can you explain this part of the Python docs? \"{first}\"",
              "What comes next after this in Python's documentation: \"{first}\"")
_ASK_CODE = ("Show me a function from the standard library's `{module}` module.",
             "How is `{name}` written in CPython's `{module}`?",
             "Could you give me an example of real code from `{module}`?")


@dataclass(frozen=True)
class EvalMix:
    """The shipped mix: samples of each plain domain and the chat conversations."""

    prose: list[str]
    code: list[str]
    chats: list[list[dict[str, str]]]  # conversations of {"role", "content"}
    languages: list[dict[str, str]]  # {"language", "text"}: blocks, interleaved by language

    def text(self, rendered_chats: list[str]) -> EvaluationText:
        """The evaluation text of a model, given its renderings of :attr:`chats`."""
        if len(rendered_chats) != len(self.chats):
            raise ValueError(f"{len(rendered_chats)} renderings of {len(self.chats)} chats")
        parts = {"prose": self.prose, "code": self.code, "chat": rendered_chats,
                 "languages": [b["text"] for b in self.languages]}
        return EvaluationText(MIX_NAME, tuple(
            DomainText(key, "\n\n".join(parts[key]) + "\n") for key in DOMAIN_KEYS))


@cache
def evaluation_mix() -> EvalMix:
    loaded = read_shipped(MIX_FILE)
    return EvalMix(prose=loaded["prose"], code=loaded["code"], chats=loaded["chats"],
                   languages=loaded["languages"])


@dataclass(frozen=True)
class DomainText:
    """One domain's text, measured in windows of its own."""

    domain: str
    text: str


@dataclass(frozen=True)
class EvaluationText:
    """The text a run measures on, by domain, with what a card needs to name it."""

    name: str
    domains: tuple[DomainText, ...]

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "domains": [[d.domain, d.text]
                                                          for d in self.domains]},
                          ensure_ascii=False, sort_keys=True)

    @property
    def sha256(self) -> str:
        """SHA-256 of the file :meth:`write` writes (``sha256sum`` of it gives the same)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> EvaluationText:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["name"], tuple(DomainText(k, t) for k, t in data["domains"]))


def docs_text() -> EvaluationText:
    """The fast demo model's evaluation text: the docs corpus's evaluation split, one domain."""
    split = text_set("evaluation")
    return EvaluationText(f"{CORPUS_NAME}, evaluation split", (DomainText("prose", split.text),))


def window_order(available: Sequence[int], max_chunks: int) -> list[tuple[int, int]]:
    """``(domain, window)`` of each evaluation window in turn: the domains' first windows, then
    their second ones …, up to ``max_chunks``, stopping where a domain has no window left so
    every prefix stays even (pure)."""
    order: list[tuple[int, int]] = []
    window = 0
    while len(order) < max_chunks:
        for domain, count in enumerate(available):
            if window >= count or len(order) == max_chunks:
                return order
            order.append((domain, window))
        window += 1
    return order


def windows_wanted(n_domains: int, max_chunks: int) -> list[int]:
    """Windows each domain gives to :func:`window_order` of ``max_chunks`` (pure)."""
    return [len(range(d, max_chunks, n_domains)) for d in range(n_domains)]


# --- building the shipped file (python -m runners.evaluation_mix) ---


def _clean(samples: list[str], taken: set[str]) -> list[str]:
    """The samples sharing no line with ``taken`` (hashes), each added to it as it is kept."""
    kept = []
    for sample in samples:
        hashes = content_hashes(sample)
        if hashes & taken:
            continue
        taken |= hashes
        kept.append(sample)
    return kept


def _up_to(samples: list[str], chars: int) -> list[str]:
    out, total = [], 0
    for sample in samples:
        if total >= chars:
            break
        out.append(sample)
        total += len(sample) + 2
    return out


def _functions(modules: Sequence[str], max_lines: int = 60) -> list[tuple[str, str]]:
    """``(module, function)`` of every module, taken in turn so any prefix spans them."""
    per_module = []
    for module in modules:
        fitting = [f for f in source_functions(module) if 4 <= f.count("\n") + 1 <= max_lines]
        per_module.append([(module, f) for f in fitting])
    return interleave(per_module)  # type: ignore[arg-type]


def _function_name(code: str) -> str:
    line = next(x for x in code.splitlines() if x.lstrip().startswith(("def ", "async def ")))
    return line.split("def ", 1)[1].split("(", 1)[0]


def _calibration_hashes() -> set[str]:
    mix = calibration_mix()
    return content_hashes(mix.text(["\n".join(t["content"] for t in c) for c in mix.chats]))


def _language_blocks(django: Path, taken: set[str], per_language: int,
                     block_chars: int = 400) -> list[dict[str, str]]:
    by_language = []
    for language in LANGUAGES:
        messages = list(dict.fromkeys(m for po in catalogues(django, language)
                                      for m in po_messages(po, whole=True)))
        messages = _up_to(_clean(messages, taken), per_language)
        if not messages:
            raise SystemExit(f"no {language} messages under {django}")
        blocks, block = [], []
        for message in messages:
            block.append(message)
            if sum(len(m) + 1 for m in block) >= block_chars:
                blocks.append({"language": language, "text": "\n".join(block)})
                block = []
        if block:
            blocks.append({"language": language, "text": "\n".join(block)})
        by_language.append(blocks)
    return interleave(by_language)  # type: ignore[arg-type]


def _conversations(taken: set[str], chars: int) -> list[list[dict[str, str]]]:
    paragraphs = _clean([p for p in text_set("train").text.split("\n\n") if len(p) > 120], taken)
    functions = [(m, f) for m, f in _functions(CHAT_CODE_MODULES)
                 if not content_hashes(f) & taken]
    chats, total = [], 0
    for i, (paragraph, (module, code)) in enumerate(zip(paragraphs, functions, strict=False)):
        if total >= chars:
            break
        first = first_sentence(paragraph)
        rest = paragraph[len(first):].strip()
        if len(rest) < 60:
            continue
        taken |= content_hashes(paragraph) | content_hashes(code)
        name = _function_name(code)
        chat = [
            {"role": "user", "content": _ASK_PROSE[i % len(_ASK_PROSE)].format(first=first)},
            {"role": "assistant", "content": rest},
            {"role": "user", "content": _ASK_CODE[i % len(_ASK_CODE)].format(module=module,
                                                                              name=name)},
            {"role": "assistant", "content": f"Here is `{name}` from `{module}`:\n\n"
                                             f"```python\n{code}\n```"}]
        chats.append(chat)
        total += sum(len(t["content"]) for t in chat)
    return chats


def build_mix(django: Path, chars: int = DOMAIN_CHARS) -> dict[str, Any]:
    """The mix from the docs' evaluation and train splits, the stdlib and Django's catalogues,
    none of it sharing a line with the calibration mix (deterministic)."""
    taken = _calibration_hashes()
    prose = _clean([p for p in text_set("evaluation").text.split("\n\n") if p.strip()], taken)
    code = _up_to(_clean([f for _, f in _functions(CODE_MODULES)], taken), chars)
    chats = _conversations(taken, chars)
    languages = _language_blocks(django, taken, chars // len(LANGUAGES))
    return {"name": MIX_NAME,
            "sources": {d.key: d.source.record() for d in DOMAINS},
            "built_from": {"python": f"{PYTHON[0]}.{PYTHON[1]}",
                           "django": f"{DJANGO_CATALOGUES}, wheel sha256 {DJANGO_SHA256}"},
            "prose": prose, "code": code, "chats": chats, "languages": languages}


def main(argv: list[str] | None = None) -> None:
    """Rebuild ``runners/data/evaluation-mix.json.gz`` (Python 3.11; pip fetches the pinned
    Django wheel unless ``--po-root`` names an unpacked ``django`` package)."""
    mix, out = rebuild(MIX_FILE, build_mix, main.__doc__ or "", argv)
    sizes = {k: sum(len(s) for s in mix[k]) for k in ("prose", "code")}
    sys.stderr.write(f"wrote {out}: {sizes}, {len(mix['chats'])} chats, "
                     f"{len(mix['languages'])} language blocks\n")


if __name__ == "__main__":
    main()
