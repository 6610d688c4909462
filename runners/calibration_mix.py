"""The importance-matrix calibration text: prose, code, chat and several languages.

An importance matrix weights each weight by how much it matters on the calibration text, so a
text that looks like what users run (chat turns in the model's own template, code, other
languages) makes better i-quants than English prose alone, as the best GGUF publishers found.
The mix ships with quantbot (``runners/data/calibration-mix.json.gz``), built offline by
``python -m runners.calibration_mix`` (sources, licences, pins and languages in
:mod:`runners.mix_sources`) from:

* **prose**: the calibration split of the Python documentation corpus (:mod:`runners.texts`;
  CPython 3.11, PSF License 2.0);
* **code**: function bodies of CPython 3.11's standard library with their docstrings removed
  (PSF License 2.0), so no sentence of the evaluation split (docs and docstrings) can enter;
* **chat**: question/answer turns made from calibration-split paragraphs, rendered at use time
  through the model's own chat template;
* **languages**: the translated messages of Django's locale catalogues (BSD-3-Clause), in the
  languages listed in :data:`LANGUAGES`.

No evaluation paragraph ever enters the mix: prose and chat come from the calibration split only
(by construction) and a test checks that no evaluation paragraph is in the mix.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from runners.mix_sources import (
    DJANGO_CATALOGUES,
    DJANGO_LICENCE,
    LANGUAGES,
    PSF,
    PYTHON_DOCS,
    STDLIB,
    Source,
    first_sentence,
    po_messages,
    read_shipped,
    rebuild,
    unparsed_functions,
)
from runners.mix_sources import sha256 as sha256
from runners.texts import text_set

MIX_FILE = "calibration-mix.json.gz"
MIX_NAME = "quantbot calibration mix (Python docs prose, stdlib code, chat turns, 20 languages)"
CODE_MODULES = ("textwrap", "json/decoder", "json/encoder", "csv", "difflib", "heapq", "bisect",
                "fractions", "statistics", "shlex", "string", "calendar", "ipaddress", "base64")
SOURCES = {
    "prose": Source(f"{PYTHON_DOCS} prose, calibration split", PSF),
    "code": Source(f"{STDLIB}, docstrings removed", PSF),
    "chat": Source(f"{PYTHON_DOCS}, calibration split, as question and answer", PSF),
    "languages": Source(f"{DJANGO_CATALOGUES} (django/conf/locale)", DJANGO_LICENCE),
}


@dataclass(frozen=True)
class Mix:
    """The shipped mix: plain samples and chat conversations, with their sources."""

    plain: list[dict[str, str]]  # {"kind", "text"}
    chats: list[list[dict[str, str]]]  # conversations of {"role", "content"}

    def text(self, rendered_chats: list[str]) -> str:
        """The calibration text: every plain sample, then the chats as the model sees them."""
        return "\n\n".join([*(s["text"] for s in self.plain), *rendered_chats]) + "\n"


@cache
def calibration_mix() -> Mix:
    loaded = read_shipped(MIX_FILE)
    return Mix(plain=loaded["plain"], chats=loaded["chats"])


def _code_samples(max_lines: int = 40, per_module: int = 8) -> list[str]:
    samples = []
    for name in CODE_MODULES:
        fitting = [f for f in unparsed_functions(name) if 4 <= f.count("\n") + 1 <= max_lines]
        samples += fitting[:per_module]
    return samples


def build_mix(po_root: Path, chats: int = 60, prose: int = 120) -> dict[str, Any]:
    """The mix from the calibration split, the stdlib and Django's catalogues (deterministic)."""
    evaluation = [p for p in text_set("evaluation").text.split("\n\n") if p.strip()]
    # The splits never share a paragraph; a few calibration paragraphs still quote a whole
    # evaluation one inside a longer text: leave those out too.
    paragraphs = [p for p in text_set("calibration").text.split("\n\n")
                  if p.strip() and not any(e in p for e in evaluation)]
    plain = [{"kind": "prose", "text": p} for p in paragraphs[:prose]]
    plain += [{"kind": "code", "text": c} for c in _code_samples()]
    for lang in LANGUAGES:
        po = po_root / "conf" / "locale" / lang / "LC_MESSAGES" / "django.po"
        messages = po_messages(po)[:20]
        if not messages:
            raise SystemExit(f"no messages in {po}: pass --po-root pointing at the django package")
        plain.append({"kind": "languages", "text": "\n".join(messages)})
    conversations = []
    for paragraph in paragraphs[prose:prose + chats]:
        first = first_sentence(paragraph)
        conversations.append([
            {"role": "user", "content": f"Explain this from Python's documentation: {first}"},
            {"role": "assistant", "content": paragraph}])
    return {"name": MIX_NAME, "sources": {k: s.record() for k, s in SOURCES.items()},
            "plain": plain, "chats": conversations}


def main(argv: list[str] | None = None) -> None:
    """Rebuild ``runners/data/calibration-mix.json.gz`` (Python 3.11; pip fetches the pinned
    Django wheel unless ``--po-root`` names an unpacked ``django`` package)."""
    mix, out = rebuild(MIX_FILE, build_mix, main.__doc__ or "", argv)
    sys.stderr.write(f"wrote {len(mix['plain'])} samples and {len(mix['chats'])} chats to {out}\n")


if __name__ == "__main__":
    main()
