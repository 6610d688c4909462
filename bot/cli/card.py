"""``quantbot card FOLDER...``: render cards again from ``quantbot.json``, no requantization."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cards.render import write_card
from bot.pipeline import write_release_cards
from runners.errors import QuantbotError
from runners.results import RUN_FILE, load_run


@click.command("card")
@click.argument("folders", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
def command(folders: tuple[Path, ...]) -> None:
    """Render README.md (and, for several formats of one release, the quality plot) of each
    repository FOLDER (OUT/<owner>/<repo>) from its quantbot.json.

    The measurements are saved before any card is rendered, so a card that failed to render is
    made again here without quantizing anything.
    """
    made = []
    for folder in folders:
        if not (folder / RUN_FILE).is_file():
            raise QuantbotError(f"{folder} has no {RUN_FILE}",
                                "pass repository folders made by `quantbot quantize`")
        made.append((f"{folder.resolve().parent.name}/{folder.resolve().name}", folder))
    if len(made) > 1:
        write_release_cards(made)
    else:
        repo_id, folder = made[0]
        write_card(load_run(folder), repo_id, folder)
    for repo_id, folder in made:
        click.echo(f"{repo_id}: {folder / 'README.md'}")
