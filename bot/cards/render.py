"""Rendering a model card: card data (pure) through the one template environment."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from bot.cards.data import CardData, build_card_data
from bot.templating import render
from runners.results import QuantRun

README = "README.md"


def render_card(card: CardData) -> str:
    """The README.md of one repository, from the method's own card template."""
    return render(card.template, card=card, **asdict(card))


def write_card(run: QuantRun, repo_id: str, folder: Path) -> Path:
    """Render the card for ``run`` into ``folder/README.md``."""
    path = Path(folder) / README
    path.write_text(render_card(build_card_data(run, repo_id)), encoding="utf-8")
    return path
