"""Where quantbot's mixed texts come from, and the code that reads them: the one place for each
source, its licence, its pinned version and the language list, shared by the importance-matrix
calibration mix (:mod:`runners.calibration_mix`) and the evaluation mix
(:mod:`runners.evaluation_mix`).

Everything is built offline from pinned bytes: CPython 3.11's own documentation and standard
library (the running Python, checked to be 3.11) and Django's wheel from the package index
(version and sha256 pinned, fetched by pip at build time only; nothing is fetched when the
shipped mixes are read). The two mixes are kept apart by content: :func:`content_hashes` gives
the SHA-256 of every line of a text, and the evaluation mix leaves out any sample with a line
the calibration mix holds (a test checks the shipped files).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import logging
import re
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from runners.errors import QuantbotError

log = logging.getLogger(__name__)

#: The CPython whose documentation and standard library the mixes are made from.
PYTHON = (3, 11)
PSF = "PSF-2.0"
DJANGO_VERSION = "5.2.17"
DJANGO_WHEEL = f"django-{DJANGO_VERSION}-py3-none-any.whl"
#: sha256 of the wheel on the package index (pip refuses any other bytes).
DJANGO_SHA256 = "f04fb3b36ee119e1af4fa1d397d5fd6cf12700f49321e84d4f4c642c5b1973db"
DJANGO_LICENCE = "BSD-3-Clause"
#: The languages of both mixes (Django locale codes).
LANGUAGES = ("de", "fr", "es", "it", "pt_BR", "nl", "pl", "ru", "uk", "cs", "tr", "ar", "fa",
             "hi", "ja", "ko", "zh_Hans", "vi", "id", "sv")
#: The licence texts shipped beside the mixes (``runners/data/licences/``), by licence id: the
#: CPython licence of the Python that built them, and Django's.
LICENCE_FILES = {PSF: "PSF-2.0-CPython.txt", DJANGO_LICENCE: "BSD-3-Clause-Django.txt"}
_DJANGO_LICENSE = f"django-{DJANGO_VERSION}.dist-info/licenses/LICENSE"
#: Lines shorter than this are too common to say two texts share content ("return result").
MIN_UNIT_CHARS = 40


@dataclass(frozen=True)
class Source:
    """One source of a mix: what it is and under which licence it ships."""

    what: str
    licence: str

    def record(self) -> list[str]:
        """As the shipped files record it."""
        return [self.what, self.licence]


PYTHON_DOCS = f"Python {PYTHON[0]}.{PYTHON[1]} documentation"
STDLIB = f"CPython {PYTHON[0]}.{PYTHON[1]} standard library source"
DJANGO_CATALOGUES = f"Django {DJANGO_VERSION} locale catalogues"


def require_python() -> None:
    """Refuse to build from another Python than :data:`PYTHON` (other docs, other stdlib)."""
    if sys.version_info[:2] != PYTHON:
        raise SystemExit(f"build the mixes with Python {PYTHON[0]}.{PYTHON[1]} (this is "
                         f"{sys.version_info[0]}.{sys.version_info[1]}): its docs and stdlib "
                         "are the source")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def content_hashes(text: str) -> set[str]:
    """SHA-256 of every line of ``text`` (whitespace collapsed) of :data:`MIN_UNIT_CHARS` or
    more: two texts with no hash in common share no paragraph, message or line of code."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return {sha256(line) for line in lines if len(line) >= MIN_UNIT_CHARS}


def read_shipped(name: str) -> dict[str, Any]:
    """A gzipped JSON file of ``runners/data``."""
    data = resources.files("runners") / "data" / name
    with gzip.open(data.open("rb"), "rt", encoding="utf-8") as fh:
        loaded: dict[str, Any] = json.load(fh)
    return loaded


def write_shipped(name: str, data: dict[str, Any]) -> Path:
    """Write ``runners/data/<name>`` byte for byte the same for the same data."""
    out = Path(__file__).parent / "data" / name
    with gzip.GzipFile(out, "wb", mtime=0) as fh:
        fh.write(json.dumps(data, ensure_ascii=False, sort_keys=True).encode())
    return out


def django_package(dest: Path) -> Path:
    """The ``django`` folder of the pinned wheel, unpacked (locale catalogues only) in ``dest``;
    pip fetches the wheel with its hash checked (build time only)."""
    wheel = dest / DJANGO_WHEEL
    if not wheel.is_file():
        requirement = dest / "requirement.txt"
        requirement.write_text(f"django=={DJANGO_VERSION} --hash=sha256:{DJANGO_SHA256}\n")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
             "--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", str(dest),
             "-r", str(requirement)], capture_output=True, text=True, check=False)
        if done.returncode != 0 or not wheel.is_file():
            raise QuantbotError(f"pip could not fetch django=={DJANGO_VERSION}: "
                                f"{done.stderr.strip()[-300:]}", "make the package index "
                                "reachable, or pass --po-root with an unpacked django")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(dest, [n for n in zf.namelist()
                             if n.endswith("/django.po") or n == _DJANGO_LICENSE])
    return dest / "django"


def rebuild(name: str, build: Callable[[Path], dict[str, Any]], description: str,
            argv: list[str] | None = None) -> tuple[dict[str, Any], Path]:
    """Rebuild the shipped mix ``runners/data/<name>`` with ``build(django_folder)`` and the
    licence texts beside it: the one command line both mixes share (Python 3.11; pip fetches
    the pinned Django wheel unless ``--po-root`` names an unpacked ``django`` package)."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--po-root", type=Path)
    args = parser.parse_args(argv)
    require_python()
    with tempfile.TemporaryDirectory() as tmp:
        django = args.po_root or django_package(Path(tmp))
        mix = build(django)
        write_licences(django)
    return mix, write_shipped(name, mix)


def write_licences(django: Path) -> None:
    """Ship the licence texts of the mixes' sources (:data:`LICENCE_FILES`): Django's from beside
    the ``django`` package (wheel layout), CPython's from the building Python."""
    folder = Path(__file__).parent / "data" / "licences"
    folder.mkdir(exist_ok=True)
    texts = {PSF: _stdlib() / "LICENSE.txt", DJANGO_LICENCE: django.parent / _DJANGO_LICENSE}
    for licence, name in LICENCE_FILES.items():
        (folder / name).write_bytes(texts[licence].read_bytes())


def po_messages(po: Path, whole: bool = False) -> list[str]:
    """Translated messages of a gettext catalogue, in file order, that read as text: longer than
    25 characters, no format placeholders or markup.

    ``whole=False`` reads only messages written on one ``msgstr "..."`` line (the calibration
    mix's reading); ``True`` also joins messages continued over several lines.
    """
    text = po.read_text(encoding="utf-8")
    if whole:
        raw = (msgstr for msgid, msgstr, fuzzy in _po_entries(text) if msgid and not fuzzy)
    else:
        raw = (m.group(1) for m in re.finditer(r'^msgstr "(.+)"$', text, re.MULTILINE))
    found = []
    for escaped in raw:
        message = escaped.encode().decode("unicode_escape").encode("latin-1").decode("utf-8")
        if whole:
            message = " ".join(message.split())
        if len(message) > 25 and "%" not in message and "{" not in message \
                and not (whole and "<" in message):
            found.append(message)
    return found


def _po_entries(text: str) -> Iterator[tuple[str, str, bool]]:
    """``(msgid, msgstr, fuzzy)`` of each singular entry of a catalogue, strings still escaped
    and continuation lines joined (plural entries have no ``msgstr`` line and are skipped)."""
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            m = re.match(r'^(msgid|msgstr|msgctxt|msgid_plural|msgstr\[\d+\]) "(.*)"$', line)
            if m:
                current = m.group(1)
                fields[current] = m.group(2)
            elif current and re.match(r'^".*"$', line):
                fields[current] += line[1:-1]
            else:
                current = None
        if "msgid" in fields and "msgstr" in fields:
            yield fields["msgid"], fields["msgstr"], "#, fuzzy" in block or ", fuzzy" in block


def catalogues(django: Path, language: str) -> list[Path]:
    """Django's catalogues of one language: the core's, then each contrib app's, sorted."""
    core = django / "conf" / "locale" / language / "LC_MESSAGES" / "django.po"
    apps = sorted(django.glob(f"contrib/*/locale/{language}/LC_MESSAGES/django.po"))
    return [p for p in (core, *apps) if p.is_file()]


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _without_docstring(node: ast.FunctionDef) -> bool:
    """Drop ``node``'s docstring in place; False when nothing else is left."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        node.body = body[1:]
    return bool(node.body)


def unparsed_functions(module: str) -> list[str]:
    """The module-level functions of a stdlib module as ``ast.unparse`` writes them, docstrings
    removed (a function of a docstring alone becomes ``pass``): no documentation sentence."""
    tree = ast.parse((_stdlib() / f"{module}.py").read_text(encoding="utf-8"))
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            if not _without_docstring(node):
                node.body = [ast.Pass()]
            out.append(ast.unparse(node))
    return out


def source_functions(module: str) -> list[str]:
    """Every function and method of a stdlib module as written (comments kept, dedented), its
    docstring lines removed; functions that are only a docstring are left out."""
    source = (_stdlib() / f"{module}.py").read_text(encoding="utf-8")
    lines = source.splitlines()
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.end_lineno is None:
            continue
        doc = node.body[0] if node.body and isinstance(node.body[0], ast.Expr) \
            and isinstance(node.body[0].value, ast.Constant) \
            and isinstance(node.body[0].value.value, str) else None
        skip = range(doc.lineno - 1, doc.end_lineno or doc.lineno) if doc else range(0)
        if doc is not None and len(node.body) == 1:
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        kept = [line for i, line in enumerate(lines[first:node.end_lineno], first) if i not in skip]
        out.append((first, textwrap.dedent("\n".join(kept)).strip("\n")))
    return [text for _, text in sorted(out)]


def first_sentence(paragraph: str) -> str:
    """Up to the first full stop or colon followed by a space (the whole paragraph if none)."""
    return re.split(r"(?<=[.:])\s", paragraph, maxsplit=1)[0]


def interleave(groups: Iterable[list[str]]) -> list[str]:
    """One item of each group in turn, until every group is used up (pure)."""
    lists = [list(g) for g in groups]
    out = []
    for i in range(max((len(g) for g in lists), default=0)):
        out += [g[i] for g in lists if i < len(g)]
    return out
