"""The ``quantbot`` command line: one click group that drives everything, locally and in CI."""

from __future__ import annotations

import logging
import sys

import click

from runners.errors import QuantbotError


class Group(click.Group):
    """Turns a :class:`QuantbotError` into a one-line error and exit status 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except QuantbotError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Debug logging (the default logs INFO).")
@click.version_option(package_name="quantbot")
def main(verbose: int) -> None:
    """quantbot: quantize Hub models to GGUF, GPTQ and AWQ, measure them, publish them."""
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


#: Every verb lives in its own module under ``bot/cli/`` exposing ``command``.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "doctor",
    "support",
    "quantize",
    "watch",
    "publish",
    "command",
    "run_job",
)


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        main.add_command(importlib.import_module(f"bot.cli.{name}").command)


_register()

if __name__ == "__main__":
    main()
