"""``quantbot demo [WORDS]``: the main job on the built-in model, offline."""

from __future__ import annotations

import click

from bot.cli.options import WORDS_HELP, job_options, run_quantize
from bot.pipeline import SourceOptions
from runners.demo_model import DEMO_REPO_ID, build_demo_model


@click.command("demo", epilog=WORDS_HELP)
@job_options
def command(**options: object) -> None:
    """Run the whole job on quantbot's built-in model, with no network.

    The model (pydocs-llama-mini, a small Llama trained offline on Python's documentation) is
    made on first use and cached; then it goes through the same steps as `quantbot quantize`.
    """
    model_dir = build_demo_model()
    click.echo(f"demo model: {model_dir}")
    run_quantize(str(model_dir), source_options=SourceOptions(repo_id=DEMO_REPO_ID),
                 **options)  # type: ignore[arg-type]
