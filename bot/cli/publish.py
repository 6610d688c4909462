"""``quantbot publish DIR``: publish repository folders to the local-folder hub or the Hub."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cards.render import write_card
from bot.config import load_config
from bot.publish.base import Publisher, PublishResult
from bot.publish.local import LocalHub
from runners.errors import QuantbotError
from runners.results import RUN_FILE, load_run


def repo_folders(folder: Path) -> list[Path]:
    """``folder`` itself when it holds a README.md, else its sub-folders that do
    (``OUT/<owner>/`` holding ``<name>-GGUF/``, ``<name>-GPTQ/``, …)."""
    if (folder / "README.md").is_file():
        return [folder]
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "README.md").is_file())
    if not subs:
        raise QuantbotError(f"{folder} holds no repository folder (no README.md)",
                            "pass OUT/<owner>/<name>-GGUF as made by `quantbot quantize`")
    return subs


def _echo(result: PublishResult) -> None:
    click.echo(f"{result.repo_id} -> {result.location}")
    click.echo(f"  uploaded {len(result.uploaded)}: {', '.join(result.uploaded) or '-'}")
    if result.skipped:
        click.echo(f"  skipped {len(result.skipped)} (already there, unchanged): "
                   f"{', '.join(result.skipped)}")
    if result.deleted:
        click.echo(f"  deleted {len(result.deleted)} (no longer in the folder): "
                   f"{', '.join(result.deleted)}")


@click.command("publish")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "target", required=True, metavar="hub|PATH",
              help="`hub` for the Hugging Face Hub, or a folder used as a local hub.")
@click.option("--repo-id", help="OWNER/NAME (default: <owner>/<folder name>; on the Hub the owner "
                                "is hub.namespace).")
@click.option("--private", is_flag=True, help="Create missing Hub repos as private.")
@click.option("--collection", is_flag=True, help="Also add each repo to a per-model collection.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="quantbot.toml or pyproject.toml.")
def command(folder: Path, target: str, repo_id: str | None, private: bool, collection: bool,
            config_path: str | None) -> None:
    """Publish FOLDER (a repo folder made by `quantbot quantize`, or its owner folder).

    On the Hub each repository gets exactly one commit holding every new or changed file;
    a rerun uploads only what is missing or changed. The token comes from HF_TOKEN or
    `hf auth login` and is never printed.
    """
    folders = repo_folders(folder)
    if repo_id and len(folders) > 1:
        raise click.UsageError("--repo-id needs FOLDER to be one repository folder")
    publisher: Publisher
    if target == "hub":
        from bot.publish.hub import HubPublisher

        cfg = load_config(config_path)
        publisher = HubPublisher(private=private or cfg.hub.private, collection=collection,
                                 max_file_bytes=cfg.hub.max_file_bytes, retries=cfg.hub.retries,
                                 retry_wait_s=cfg.hub.retry_wait_s)
        namespace: str | None = cfg.hub.namespace
    else:
        if private or collection:
            raise click.UsageError("--private and --collection apply to --to hub only")
        publisher = LocalHub(Path(target))
        namespace = None  # keep the owner of OUT/<owner>/<name>-GGUF
    for f in folders:
        f = f.resolve()
        rid = repo_id or f"{namespace or f.parent.name}/{f.name}"
        if repo_id and (f / RUN_FILE).is_file():
            write_card(load_run(f), rid, f)  # the card names the repository it is published as
        _echo(publisher.publish(f, rid))
