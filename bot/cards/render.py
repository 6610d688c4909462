"""Rendering Jinja templates from the ``templates`` package (cards, issue and comment texts)."""

from __future__ import annotations

from dataclasses import asdict
from functools import cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from bot.cards.data import CardData, build_card_data
from runners.results import QuantRun

README = "README.md"


@cache
def environment() -> Environment:
    """The Jinja environment over ``templates/`` (undefined names are errors, not blanks)."""
    return Environment(loader=PackageLoader("templates", ""), undefined=StrictUndefined,
                       keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                       autoescape=False)


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)


def render_card(card: CardData) -> str:
    """The README.md of one repository; the method picks ``card_<method>.md.j2``."""
    return render(f"card_{card.method}.md.j2", card=card, **asdict(card))


def write_card(run: QuantRun, repo_id: str, folder: Path) -> Path:
    """Render the card for ``run`` into ``folder/README.md``."""
    path = Path(folder) / README
    path.write_text(render_card(build_card_data(run, repo_id)), encoding="utf-8")
    return path
