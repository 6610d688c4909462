"""The importance-matrix calibration text: prose, code, chat and several languages.

An importance matrix weights each weight by how much it matters on the calibration text, so a
text that looks like what users run (chat turns in the model's own template, code, other
languages) makes better i-quants than English prose alone, as the best GGUF publishers found.
The mix ships with quantbot (``runners/data/calibration-mix.json.gz``), built offline by
``python -m runners.calibration_mix --po-root DIR`` from:

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

import ast
import gzip
import hashlib
import json
import re
import sys
import sysconfig
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from runners.texts import text_set

MIX_FILE = "calibration-mix.json.gz"
MIX_NAME = "quantbot calibration mix (Python docs prose, stdlib code, chat turns, 20 languages)"
LANGUAGES = ("de", "fr", "es", "it", "pt_BR", "nl", "pl", "ru", "uk", "cs", "tr", "ar", "fa",
             "hi", "ja", "ko", "zh_Hans", "vi", "id", "sv")
CODE_MODULES = ("textwrap", "json/decoder", "json/encoder", "csv", "difflib", "heapq", "bisect",
                "fractions", "statistics", "shlex", "string", "calendar", "ipaddress", "base64")
SOURCES = {
    "prose": ("Python 3.11 documentation prose, calibration split", "PSF-2.0"),
    "code": ("CPython 3.11 standard library source, docstrings removed", "PSF-2.0"),
    "chat": ("Python 3.11 documentation, calibration split, as question and answer", "PSF-2.0"),
    "languages": ("Django locale catalogues (django/conf/locale)", "BSD-3-Clause"),
}


@dataclass(frozen=True)
class Mix:
    """The shipped mix: plain samples and chat conversations, with their sources."""

    plain: list[dict[str, str]]  # {"kind", "text"}
    chats: list[list[dict[str, str]]]  # conversations of {"role", "content"}

    def text(self, rendered_chats: list[str]) -> str:
        """The calibration text: every plain sample, then the chats as the model sees them."""
        return "\n\n".join([*(s["text"] for s in self.plain), *rendered_chats]) + "\n"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def calibration_mix() -> Mix:
    data = resources.files("runners") / "data" / MIX_FILE
    with gzip.open(data.open("rb"), "rt", encoding="utf-8") as fh:
        loaded: dict[str, Any] = json.load(fh)
    return Mix(plain=loaded["plain"], chats=loaded["chats"])


def _code_samples(max_lines: int = 40, per_module: int = 8) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    samples = []
    for name in CODE_MODULES:
        tree = ast.parse((stdlib / f"{name}.py").read_text(encoding="utf-8"))
        taken = 0
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or taken >= per_module:
                continue
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
            source = ast.unparse(node)
            if 4 <= source.count("\n") + 1 <= max_lines:
                samples.append(source)
                taken += 1
    return samples


def _po_messages(po: Path, limit: int) -> list[str]:
    text = po.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r'^msgstr "(.+)"$', text, re.MULTILINE):
        message = match.group(1).encode().decode("unicode_escape").encode("latin-1").decode("utf-8")
        if len(message) > 25 and "%" not in message and "{" not in message:
            found.append(message)
    return found[:limit]


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
        messages = _po_messages(po, 20)
        if not messages:
            raise SystemExit(f"no messages in {po}: pass --po-root pointing at the django package")
        plain.append({"kind": "languages", "text": "\n".join(messages)})
    conversations = []
    for paragraph in paragraphs[prose:prose + chats]:
        first = re.split(r"(?<=[.:])\s", paragraph, maxsplit=1)[0]
        conversations.append([
            {"role": "user", "content": f"Explain this from Python's documentation: {first}"},
            {"role": "assistant", "content": paragraph}])
    return {"name": MIX_NAME, "sources": SOURCES, "plain": plain, "chats": conversations}


def main(argv: list[str] | None = None) -> None:
    """``python -m runners.calibration_mix --po-root .../site-packages/django``"""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--po-root", type=Path, required=True)
    args = parser.parse_args(argv)
    mix = build_mix(args.po_root)
    out = Path(__file__).parent / "data" / MIX_FILE
    with gzip.GzipFile(out, "wb", mtime=0) as fh:
        fh.write(json.dumps(mix, ensure_ascii=False, sort_keys=True).encode())
    sys.stderr.write(f"wrote {len(mix['plain'])} samples and {len(mix['chats'])} chats to {out}\n")


if __name__ == "__main__":
    main()
