"""Rendering a model card: card data (pure) through the one template environment."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from bot.cards import CARD_FILE
from bot.cards.data import CardData, build_card_data
from bot.cards.plot import draw_quality_plot
from bot.cards.release import Release, build_release, plot_points
from bot.templating import render
from runners.results import QuantRun

README = CARD_FILE


def render_card(card: CardData) -> str:
    """The README.md of one repository, from the method's own card template."""
    return render(card.template, card=card,
                  **{**asdict(card), "memory": card.memory, "release": card.release,
                     "domains": card.domains})


def write_card(run: QuantRun, repo_id: str, folder: Path, release: Release | None = None) -> Path:
    """Render the card for ``run`` into ``folder/README.md``; with a release of several formats,
    or a GGUF run with searched mixes, also its quality plot (``release.plot_file``) beside it."""
    path = Path(folder) / README
    path.write_text(render_card(build_card_data(run, repo_id, release)), encoding="utf-8")
    if release is None or release.formats < 2:
        if not run.mix_search:
            return path
        release = build_release([(repo_id, run)])  # one format: the plot shows stock and mixes
    draw_quality_plot(plot_points(release), f"{release.model}: quality against size",
                      Path(folder) / release.plot_file)
    return path
