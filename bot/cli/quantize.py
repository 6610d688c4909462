"""``quantbot quantize SOURCE [WORDS]``: quantize a local model folder or a Hub model."""

from __future__ import annotations

import click

from bot.cli.options import WORDS_HELP, job_options, run_quantize
from bot.pipeline import SourceOptions


@click.command("quantize", epilog=WORDS_HELP)
@click.argument("source")
@job_options
@click.option("--repo-id", default=None,
              help="The source's Hub id, for the card, when SOURCE is a local folder.")
@click.option("--revision", default=None, help="Hub revision of SOURCE.")
@click.option("--allow-remote-code", is_flag=True,
              help="Accept a model whose config needs trust_remote_code (review it first).")
@click.option("--allow-pickle", is_flag=True,
              help="Accept a model that ships only pickle (*.bin/*.pt) weights.")
def command(source: str, repo_id: str | None, revision: str | None, allow_remote_code: bool,
            allow_pickle: bool, **options: object) -> None:
    """Quantize SOURCE (model folder or OWNER/NAME on the Hub), measure, check and publish.

    Each method gives one repository folder, OUT/<owner>/<name>-GGUF (-GPTQ, -AWQ, -bnb-4bit),
    holding the files, quantbot.json (every measurement) and README.md (the model card).
    """
    run_quantize(source, source_options=SourceOptions(
        revision=revision, repo_id=repo_id, allow_remote_code=allow_remote_code,
        allow_pickle=allow_pickle), **options)  # type: ignore[arg-type]
